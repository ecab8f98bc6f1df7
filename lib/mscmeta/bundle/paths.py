"""Where things live. Notebooks take their paths as papermill parameters; this module
gives the defaults for code that runs outside a notebook (tests, CLI, pipeline)."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]
DATA_RAW = PROJECT_ROOT / "data" / "raw"
OUTPUTS = PROJECT_ROOT / "outputs"
NOTEBOOKS = PROJECT_ROOT / "notebooks"


def output_dirs(out_dir: str | Path) -> dict[str, Path]:
    """Create and return the standard output folders under *out_dir*.

    Returns a dict with keys ``tables`` and ``figures``.
    """
    out = Path(out_dir)
    dirs = {"tables": out / "tables", "figures": out / "figures"}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    return dirs
