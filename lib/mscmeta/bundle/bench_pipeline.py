"""Time the pipeline: ``python -m mscmeta.bundle.bench_pipeline`` (``make bench``).

Prints, in one run:

* ``reproduce``: wall time of ``make reproduce`` from clean outputs (warm venv), into a
  temporary outputs folder so the real ``outputs/`` is untouched;
* ``floor``: papermill executing as many empty notebooks (a parameters cell only) on the
  same kernel through the same stage runner, plus the same HTML rendering;
* their ratio (target <= 1.5);
* ``no-op``: a second ``make reproduce`` with nothing changed (target < 2 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mscmeta.bundle.paths import PROJECT_ROOT


def _timed(cmd: list[str]) -> float:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    start = time.perf_counter()
    subprocess.run(cmd, cwd=PROJECT_ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def _empty_notebooks(folder: Path, stems: list[str]) -> list[Path]:
    import nbformat  # deferred on purpose: only the benchmark needs it

    paths = []
    for stem in stems:
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "mscmeta", "display_name": "Python (mscmeta)", "language": "python"}
        params = nbformat.v4.new_code_cell('out_dir = "../outputs"  # outputs root')
        params.metadata["tags"] = ["parameters"]
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {stem}"), params]
        path = folder / f"{stem}.ipynb"
        nbformat.write(nb, path)
        paths.append(path)
    return paths


def main() -> int:
    stems = sorted(p.stem for p in (PROJECT_ROOT / "notebooks").glob("*.ipynb"))
    with tempfile.TemporaryDirectory(prefix="mscmeta-bench-") as tmp:
        tmp = Path(tmp)
        out = tmp / "outputs"
        make = ["make", "--no-print-directory", "reproduce", f"OUT={out}"]
        reproduce = _timed(make)
        noop = _timed(make)
        floor_out = tmp / "floor"
        floor = 0.0
        for nb in _empty_notebooks(tmp, stems):
            floor += _timed([sys.executable, "-m", "mscmeta.bundle.pipeline", "run", str(nb), "--out", str(floor_out)])
        floor += _timed([sys.executable, "-m", "mscmeta.bundle.report", "--out", str(floor_out)])
    print(f"make reproduce from clean (warm venv): {reproduce:7.2f} s  ({len(stems)} notebooks + HTML)")
    print(f"floor (empty notebooks + same HTML):   {floor:7.2f} s")
    print(f"ratio reproduce / floor:               {reproduce / floor:7.2f}   (target <= 1.5)")
    print(f"no-op make reproduce:                  {noop:7.2f} s  (target < 2 s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
