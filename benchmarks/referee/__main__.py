"""Run the referee's sampling process: python -m referee --out FILE ... (see sampler.py)."""

import sys

from referee.sampler import main

sys.exit(main())
