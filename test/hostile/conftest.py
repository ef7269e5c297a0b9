"""Hostile-input tests: the hostile server module is importable from here."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
