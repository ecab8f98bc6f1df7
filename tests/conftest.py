"""Shared fixtures: the project layout and one end-to-end run of the whole pipeline
(every notebook, through the Makefile, on the small fixture data set)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests draw the same examples on every run (CI must not flake on a new draw);
# a developer can explore new examples with --hypothesis-profile=explore.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", derandomize=False, deadline=None, max_examples=500)
settings.load_profile("ci")

ROOT = Path(__file__).resolve().parents[1]
FIXTURE_DATA = ROOT / "tests" / "fixtures" / "data_small"
STAGES = ("01-extract", "02-quality-assess", "03-pool", "04-subgroup", "05-secondary-outcomes",
          "06-update-and-certainty")


def run_make(*args: str, check: bool = True, timeout: int = 900, env_extra: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess:
    """Run ``make`` in the project root with the venv's Python first on PATH (and *env_extra*)."""
    env = dict(os.environ, **(env_extra or {}))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("MAKEFLAGS", None)
    proc = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), *args],
        capture_output=True, text=True, env=env, timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"make {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def reproduce_into(out: Path, raw: Path = FIXTURE_DATA, *extra: str, check: bool = True,
                   env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``make reproduce`` on the raw data folder *raw* into the outputs root *out*."""
    return run_make("reproduce", f"OUT={out}", f"RAW={raw}", *extra, check=check, env_extra=env_extra)


@pytest.fixture(scope="session")
def e2e_raw(tmp_path_factory) -> Path:
    """A private copy of the fixture data (tests may touch its files)."""
    raw = tmp_path_factory.mktemp("raw") / "data_small"
    shutil.copytree(FIXTURE_DATA, raw)
    return raw


@pytest.fixture(scope="session")
def e2e_run(tmp_path_factory, e2e_raw) -> Path:
    """One complete ``make reproduce`` on the fixture data; returns its outputs root.

    Its kernels start the usual way (``python -m ipykernel_launcher``: the kernel server is
    turned off), while the other runs of the suite fork theirs from the run's server
    (:mod:`mscmeta.bundle.forkserver`): every byte-for-byte comparison with this run also
    checks that the two ways give the same outputs."""
    out = tmp_path_factory.mktemp("run1")
    reproduce_into(out, e2e_raw, env_extra={"MSCMETA_KERNEL_SERVER": ""})
    return out
