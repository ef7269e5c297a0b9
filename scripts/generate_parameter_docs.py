"""Write docs/parameters.md from the node's parameter table (run after changing a parameter)."""

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from shadowhound_llm_bench.core.settings.parameter_docs import render_parameter_docs  # noqa: E402

PAGE = REPO_ROOT / "docs" / "parameters.md"

if __name__ == "__main__":
    PAGE.write_text(render_parameter_docs(), encoding="utf-8")
    print(PAGE)
