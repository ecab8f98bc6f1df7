"""The set-up benchmark times a tree like a fresh clone: what git would clone, nothing built."""

from __future__ import annotations

from conftest import ROOT
from mscmeta.bundle.bench_setup import clone_tree


def test_clone_tree_copies_what_a_clone_has_and_nothing_built(tmp_path):
    tree = clone_tree(tmp_path / "clone", ROOT)
    for name in ("Makefile", "requirements.in", "requirements.lock", "pyproject.toml", "lib/mscmeta/__init__.py",
                 "notebooks/03-pool.ipynb", "outputs/README.md"):
        assert (tree / name).is_file(), name
    for name in (".venv", ".git", "lib/mscmeta.egg-info", "outputs/notebooks", "outputs/.params"):
        assert not (tree / name).exists(), name
    assert (tree / "Makefile").read_bytes() == (ROOT / "Makefile").read_bytes()
