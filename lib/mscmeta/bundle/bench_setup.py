"""Time ``make reproduce`` from a fresh clone: ``python -m mscmeta.bundle.bench_setup`` (``make bench``).

Copies the working tree as a clone of it would be (the files git tracks or would track, so
no ``.venv/`` and no outputs) into temporary folders and times there the one command a user
runs, ``make reproduce`` (set-up included: the venv made from ``requirements.lock`` -- uv
bootstrapped by pip, ``uv pip sync``, the editable package, the kernel -- then the six
stages and the HTML). Set-up and stages overlap (the kernel's registration runs beside the
data check), so only the whole command is timed:

* ``fresh clone, cold uv cache``: uv and pip caches empty, so every package is downloaded
  from the registry (target < 60 s on 2 cores);
* ``fresh clone, warm uv cache``: a second clone on the same machine (what CI sees);
* ``set-up alone, warm uv cache``: ``make venv kernel`` in that clone after removing its venv;
* with ``--pip``: a fresh clone's ``make reproduce INSTALLER=pip`` (pip installs the lock
  with ``--require-hashes``); minutes, so only when asked.

The warm ``make reproduce``, its floor and the no-op rerun are :mod:`mscmeta.bundle.bench_pipeline`'s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mscmeta.bundle.paths import PROJECT_ROOT

TARGET_FRESH_S = 60.0
#: What a clone never has (for a tree that is not a git checkout).
_NOT_CLONED = {".venv", ".git", "__pycache__", ".pytest_cache", ".hypothesis", ".ipynb_checkpoints"}


def clone_tree(dest: Path, root: Path = PROJECT_ROOT) -> Path:
    """Copy what a clone of *root*'s working tree would hold (tracked and not ignored) to *dest*."""
    proc = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                          capture_output=True)
    if proc.returncode == 0:
        for name in proc.stdout.decode().split("\0"):
            src = root / name
            if name and src.is_file():  # skips files deleted but not yet committed
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / name)
    else:
        shutil.copytree(root, dest, dirs_exist_ok=True, ignore=lambda d, names: [
            n for n in names if n in _NOT_CLONED or n.endswith(".egg-info") or (Path(d).name == "outputs" and n != "README.md")])
    return dest


def _base_python() -> str:
    """The interpreter this venv was made from (what a fresh clone's make would use)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "VIRTUAL_ENV"}}
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    env.update(extra)
    return env


def _make(tree: Path, env: dict[str, str], *targets: str) -> float:
    cmd = ["make", "--no-print-directory", "-C", str(tree), *targets, f"PYTHON={_base_python()}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed


def _installer(tree: Path) -> str:
    stamp = tree / ".venv" / ".installed"
    return stamp.read_text().strip() if stamp.exists() else "?"


def _verdict(seconds: float) -> str:
    return f"target < {TARGET_FRESH_S:.0f} s: {'met' if seconds < TARGET_FRESH_S else 'NOT met'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mscmeta.bundle.bench_setup", description="Time make reproduce from a fresh clone.")
    parser.add_argument("--pip", action="store_true", help="also time the pip fallback (INSTALLER=pip; minutes)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mscmeta-bench-setup-") as tmp:
        tmp = Path(tmp)
        caches = _env(UV_CACHE_DIR=str(tmp / "uv-cache"), PIP_CACHE_DIR=str(tmp / "pip-cache"))
        cold = _make(clone_tree(tmp / "clone1"), caches, "reproduce")
        second = clone_tree(tmp / "clone2")
        warm = _make(second, caches, "reproduce")
        how = _installer(second)
        shutil.rmtree(second / ".venv")
        setup = _make(second, caches, "venv", "kernel")
        pip_total = None
        if args.pip:
            third = clone_tree(tmp / "clone3")
            pip_total = _make(third, caches, "reproduce", "INSTALLER=pip")
            pip_how = _installer(third)
    load = f"; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs" if hasattr(os, "getloadavg") else ""
    print(f"fresh clone, make reproduce, cold uv cache: {cold:7.2f} s  ({_verdict(cold)}{load})")
    print(f"fresh clone, make reproduce, warm uv cache: {warm:7.2f} s  ({_verdict(warm)}; {how})")
    print(f"set-up alone (make venv kernel), warm cache: {setup:6.2f} s")
    if pip_total is not None:
        print(f"fresh clone, make reproduce INSTALLER=pip:  {pip_total:7.2f} s  ({pip_how})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
