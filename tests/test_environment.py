"""The pip pins (requirements.txt) and the conda environment (environment.yml) agree."""

from __future__ import annotations

import re

from conftest import ROOT


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip().lstrip("-").strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s]+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def requirements_pins() -> dict[str, str]:
    return _pins((ROOT / "requirements.txt").read_text().splitlines())


def environment_pins() -> dict[str, str]:
    text = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(text) if line.strip() == "- pip:")
    return _pins(text[start + 1 :])


def test_every_requirement_is_pinned_exactly():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert "==" in line, f"requirements.txt: {line!r} is not pinned with =="


def test_environment_yml_lists_the_same_pins_as_requirements():
    req, env = requirements_pins(), environment_pins()
    assert req, "no pins found in requirements.txt"
    assert env == req, f"only in requirements.txt: {set(req.items()) - set(env.items())}; only in environment.yml: {set(env.items()) - set(req.items())}"


def test_core_packages_are_pinned():
    for name in ("jupyterlab", "pandas", "numpy", "scipy", "seaborn", "matplotlib", "papermill", "nbconvert", "ipykernel"):
        assert name in requirements_pins(), f"{name} is not pinned in requirements.txt"


def test_installed_versions_match_the_pins():
    from importlib.metadata import PackageNotFoundError, version

    for name, pinned in requirements_pins().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            raise AssertionError(f"{name}=={pinned} is pinned but not installed (run make venv)") from None
        assert installed == pinned, f"{name}: installed {installed}, pinned {pinned}"


def test_gitignore_does_not_ignore_lib():
    import subprocess

    proc = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "lib/mscmeta/__init__.py"])
    assert proc.returncode == 1, "lib/mscmeta is git-ignored: the package would never be committed"
