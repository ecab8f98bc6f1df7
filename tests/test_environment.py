"""The environment: the direct dependencies pinned in one place (requirements.in), the same
pins in environment.yml, a complete lock with hashes (requirements.lock), and a venv that is
exactly the lock, whether uv installed it or pip did because uv could not be had."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from importlib.metadata import distributions
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import ROOT, run_make

#: Pinned in requirements.in so that the venv is exactly the lock; not in environment.yml
#: (conda brings its own pip, and uv is only the venv's installer).
INSTALLERS = {"pip", "uv"}
#: What ``python -m venv`` itself puts in besides pip (setuptools, on Python < 3.12): the
#: interpreter's, not the lock's, and not used by the bundle.
VENV_SEED = {"setuptools", "wheel"}
#: The bundle's own package, installed editable from lib/ with --no-deps.
PROJECT = "mscmeta"


def _pins(lines: list[str]) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip().lstrip("-").strip()
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s]+)", line)
        if match:
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def direct_pins() -> dict[str, str]:
    return _pins((ROOT / "requirements.in").read_text().splitlines())


def environment_pins() -> dict[str, str]:
    text = (ROOT / "environment.yml").read_text().splitlines()
    start = next(i for i, line in enumerate(text) if line.strip() == "- pip:")
    return _pins(text[start + 1 :])


@dataclass(frozen=True)
class LockEntry:
    name: str
    version: str
    marker: Marker | None
    hashes: tuple[str, ...]

    def applies(self, env: dict[str, str] | None = None) -> bool:
        return self.marker is None or self.marker.evaluate(env)


def parse_lock(text: str) -> list[LockEntry]:
    """The entries of a hashed requirements file (continuation lines joined)."""
    entries, logical = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        logical += " " + stripped.removesuffix("\\")
        if not stripped.endswith("\\"):
            hashes = tuple(re.findall(r"--hash=(\S+)", logical))
            spec = re.sub(r"--hash=\S+", "", logical).strip()
            req = Requirement(spec)
            (op_version,) = req.specifier  # exactly one specifier
            assert op_version.operator == "==", f"{spec!r} is not pinned with =="
            entries.append(LockEntry(canonicalize_name(req.name), op_version.version, req.marker, hashes))
            logical = ""
    assert not logical.strip(), "the lock ends inside an entry"
    return entries


def lock_entries(path: Path = ROOT / "requirements.lock") -> list[LockEntry]:
    return parse_lock(path.read_text())


def lock_for_here(entries: list[LockEntry], env: dict[str, str] | None = None) -> dict[str, str]:
    """name -> version of the entries whose markers hold for *env* (default: this interpreter)."""
    chosen: dict[str, str] = {}
    for entry in entries:
        if entry.applies(env):
            assert entry.name not in chosen, f"two lock entries for {entry.name} apply to {env or 'this interpreter'}"
            chosen[entry.name] = entry.version
    return chosen


def installed_in(python: str | Path) -> dict[str, str]:
    """name -> version of every distribution installed for *python*."""
    code = ("import json, importlib.metadata as m; "
            "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))")
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True).stdout
    import json

    return {canonicalize_name(name): version for name, version in json.loads(out).items()}


def compare_with_lock(installed: dict[str, str], expected: dict[str, str]) -> list[str]:
    """What differs between an installed set and the lock (besides the project and venv seeds)."""
    problems = []
    for name, version in sorted(expected.items()):
        if name not in installed:
            problems.append(f"{name}=={version} is in the lock but not installed")
        elif installed[name] != version:
            problems.append(f"{name}: installed {installed[name]}, locked {version}")
    for name, version in sorted(installed.items()):
        if name not in expected and name != PROJECT and name not in VENV_SEED:
            problems.append(f"{name}=={version} is installed but not in the lock")
    return problems


# ---- the direct pins: one source, the same in environment.yml ---------------------------

def test_every_direct_dependency_is_pinned_exactly():
    for line in (ROOT / "requirements.in").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+==\S+", line), f"requirements.in: {line!r} is not pinned with =="


def test_requirements_in_is_the_only_list_of_direct_dependencies():
    assert not (ROOT / "requirements.txt").exists(), "requirements.txt is back: requirements.in is the one list"


def test_environment_yml_lists_the_same_pins_as_requirements_in():
    req = {name: v for name, v in direct_pins().items() if name not in INSTALLERS}
    env = environment_pins()
    assert req, "no pins found in requirements.in"
    assert env == req, (f"only in requirements.in: {set(req.items()) - set(env.items())}; "
                        f"only in environment.yml: {set(env.items()) - set(req.items())}")


def test_installers_are_pinned():
    assert INSTALLERS <= set(direct_pins()), "requirements.in must pin pip and uv (the venv is exactly the lock)"


def test_core_packages_are_pinned():
    for name in ("jupyterlab", "pandas", "numpy", "scipy", "seaborn", "matplotlib", "papermill", "nbconvert", "ipykernel"):
        assert name in direct_pins(), f"{name} is not pinned in requirements.in"


def test_the_package_needs_only_direct_dependencies():
    """mscmeta is installed with --no-deps: what it declares must be pinned directly."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    missing = {Requirement(d).name for d in declared} - set(direct_pins())
    assert not missing, f"pyproject.toml declares {missing}, which requirements.in does not pin"


# ---- the lock ----------------------------------------------------------------------------

def test_lock_pins_every_direct_dependency_at_its_pin():
    """requirements.in and requirements.lock agree (a pin changed without `make lock` fails)."""
    entries = lock_entries()
    for name, version in direct_pins().items():
        found = [e for e in entries if e.name == name]
        assert found, f"{name} is in requirements.in but not in requirements.lock: run make lock"
        assert all(e.version == version and e.marker is None for e in found), (
            f"{name}: requirements.in pins {version}, the lock has {[(e.version, str(e.marker)) for e in found]}: run make lock")


def test_every_lock_entry_has_hashes():
    entries = lock_entries()
    assert len(entries) > 100
    for entry in entries:
        assert entry.hashes, f"{entry.name}=={entry.version} has no hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in entry.hashes), entry


def test_lock_was_made_by_make_lock():
    header = (ROOT / "requirements.lock").read_text().splitlines()[:2]
    assert header[1].strip("# ") == "make lock", f"requirements.lock was not written by make lock: {header}"
    recipe = (ROOT / "Makefile").read_text()
    assert re.search(r"pip compile requirements\.in --universal --python-version \$\(MIN_PYTHON\) --generate-hashes", recipe)


# Environments the universal lock must pin without ambiguity: Linux on every supported
# Python (3.11.0-3.11.4 and 3.11.5+ differ for soupsieve), and macOS and Windows.
_LINUX = {"os_name": "posix", "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
          "implementation_name": "cpython", "platform_python_implementation": "CPython"}
TARGETS = {
    f"linux-{v}": {**_LINUX, "python_version": ".".join(v.split(".")[:2]), "python_full_version": v}
    for v in ("3.11.0", "3.11.7", "3.12.8", "3.13.1", "3.14.0")
} | {
    "macos-3.12": {**_LINUX, "sys_platform": "darwin", "platform_system": "Darwin", "platform_machine": "arm64",
                   "python_version": "3.12", "python_full_version": "3.12.8"},
    "windows-3.11": {**_LINUX, "os_name": "nt", "sys_platform": "win32", "platform_system": "Windows",
                     "platform_machine": "AMD64", "python_version": "3.11", "python_full_version": "3.11.9"},
}


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_lock_pins_one_version_of_everything_for(target):
    chosen = lock_for_here(lock_entries(), TARGETS[target])  # raises on two versions of one package
    assert set(direct_pins()) <= set(chosen), f"direct dependencies missing for {target}"


# ---- the venv is exactly the lock -------------------------------------------------------

def _stamp(prefix: Path) -> str:
    path = prefix / ".installed"
    return path.read_text() if path.exists() else ""


def test_this_venv_is_exactly_the_lock():
    stamp = _stamp(Path(sys.prefix))
    if not stamp:
        pytest.skip("not running in the Makefile's venv (no .installed stamp)")
    expected = lock_for_here(lock_entries())
    if "(without uv)" in stamp:  # installed by the pip fallback
        expected.pop("uv")
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()}
    assert compare_with_lock(installed, expected) == []
    assert PROJECT in installed, "the mscmeta package is not installed (run make venv)"


def test_ci_runs_the_uv_path():
    """CI builds the venv as a fresh clone does by default: uv installs the lock."""
    if not os.environ.get("CI"):
        pytest.skip("only on CI (CI is set)")
    assert "by uv " in _stamp(Path(sys.prefix)), f"CI's venv was not installed by uv: {_stamp(Path(sys.prefix))!r}"


def test_this_venv_has_every_dependency_it_needs():
    """The lock is closed: pip finds no installed package missing a dependency."""
    proc = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_gitignore_does_not_ignore_lib():
    proc = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", "lib/mscmeta/__init__.py"])
    assert proc.returncode == 1, "lib/mscmeta is git-ignored: the package would never be committed"


# ---- both install paths, for real, in throwaway venvs ----------------------------------

def _base_python() -> str:
    return getattr(sys, "_base_executable", None) or sys.executable


def _make_venv(venv: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    return run_make("venv", f"VENV={venv}", f"PYTHON={_base_python()}", *extra, check=check, timeout=1500)


@pytest.mark.install
def test_uv_path_installs_exactly_the_lock(tmp_path):
    venv = tmp_path / "venv"
    proc = _make_venv(venv)
    assert "note:" not in proc.stdout + proc.stderr
    assert _stamp(venv).startswith("installed from requirements.lock by uv ")
    expected = lock_for_here(lock_entries())
    assert compare_with_lock(installed_in(venv / "bin" / "python"), expected) == []
    check = subprocess.run([venv / "bin" / "python", "-m", "pip", "check"], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    subprocess.run([venv / "bin" / "python", "-c", "import mscmeta.bundle.pipeline"], check=True)


#: The lock entries the pip-fallback test installs: pip itself and two small pure-Python
#: packages, taken with their real hashes from requirements.lock. The whole lock through pip
#: takes minutes (205 s measured for a fresh clone); the path under test -- uv's bootstrap
#: failing, the one-line note, pip installing a hashed lock exactly, the editable install --
#: is the same for three entries as for all of them.
PIP_FALLBACK_SAMPLE = ("pip", "packaging", "six")


def _lock_block(text: str, name: str) -> str:
    block = re.search(rf"^{re.escape(name)}==.*?(?=^\S|\Z)", text, flags=re.M | re.S)
    assert block, f"{name} is not in requirements.lock"
    return block.group(0)


@pytest.mark.install
def test_pip_fallback_installs_the_lock_with_hashes_when_uv_cannot_be_had(tmp_path):
    """uv's bootstrap fails for real (its hashes in this copy of the lock match no file), so
    the Makefile says so in one line and pip installs the rest of the lock, hashes required,
    exactly (no package more or less); then the project itself, editable. The copy of the lock
    holds uv and :data:`PIP_FALLBACK_SAMPLE` (see there why not every entry)."""
    text = (ROOT / "requirements.lock").read_text()
    broken_uv = re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, _lock_block(text, "uv"))
    lock = tmp_path / "requirements.lock"
    lock.write_text(broken_uv + "".join(_lock_block(text, name) for name in PIP_FALLBACK_SAMPLE))
    venv = tmp_path / "venv"
    proc = _make_venv(venv, f"LOCK={lock}")
    notes = [line for line in (proc.stdout + proc.stderr).splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "uv could not be installed" in notes[0] and "pip --require-hashes" in notes[0], notes
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in (venv / "uv-bootstrap.log").read_text()
    assert not (venv / "bin" / "uv").exists()
    assert "(without uv) by pip " in _stamp(venv)
    expected = lock_for_here(lock_entries(lock))
    expected.pop("uv")
    installed = installed_in(venv / "bin" / "python")
    assert compare_with_lock(installed, expected) == [] and PROJECT in installed
    tampered = tmp_path / "tampered.lock"
    tampered.write_text(lock.read_text().replace(_lock_block(text, "six"),
                        re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "1" * 64, _lock_block(text, "six"))))
    refused = _make_venv(tmp_path / "venv2", f"LOCK={tampered}", check=False)
    assert refused.returncode != 0 and "DO NOT MATCH THE HASHES" in refused.stdout + refused.stderr


def test_python_older_than_311_is_refused_up_front(tmp_path):
    old = tmp_path / "python3.10"
    old.write_text('#!/bin/sh\nif [ "$1" = -V ]; then echo "Python 3.10.12"; exit 0; fi\nexit 1\n')
    old.chmod(0o755)
    venv = tmp_path / "venv"
    proc = run_make("venv", f"VENV={venv}", f"PYTHON={old}", check=False)
    assert proc.returncode != 0
    assert "the bundle needs Python >= 3.11, and " in proc.stderr and "Python 3.10.12" in proc.stderr, proc.stderr
    assert not venv.exists(), "nothing is created before the check"
    proc = run_make("venv", f"VENV={venv}", f"PYTHON={tmp_path / 'no-such-python'}", check=False)
    assert proc.returncode != 0 and "not found; the bundle needs Python >= 3.11" in proc.stderr, proc.stderr


def test_pip_index_setting_reaches_uv():
    """uv reads no pip configuration: an index given to pip by the environment is handed on."""
    proc = run_make("-n", "lock", "VENV=/nonexistent-venv", "PIP_INDEX_URL=https://mirror.invalid/simple", check=False)
    assert "UV_DEFAULT_INDEX=https://mirror.invalid/simple" in proc.stdout, proc.stdout
    if not any(os.environ.get(v) for v in ("PIP_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX_URL")):
        assert "UV_DEFAULT_INDEX" not in run_make("-n", "lock", "VENV=/nonexistent-venv", check=False).stdout
