"""Hostile-input tests: the hostile server is importable; Hypothesis stays out of the tree."""

import os
import sys
import tempfile

from hypothesis.configuration import set_hypothesis_home_dir

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Hypothesis caches (e.g. its Unicode tables) under a home folder: keep it out of the repository.
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), 'shadowhound-hypothesis'))
