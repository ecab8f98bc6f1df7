"""Where things live. Notebooks take their paths as papermill parameters; this module
gives the defaults for code that runs outside a notebook (tests, CLI, pipeline)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DATA_RAW = PROJECT_ROOT / "data" / "raw"
OUTPUTS = PROJECT_ROOT / "outputs"
NOTEBOOKS = PROJECT_ROOT / "notebooks"
