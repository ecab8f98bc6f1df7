"""The runners skip jsonschema's optional IRI grammar, which nbformat never uses.

See ``mscmeta.bundle.lean_imports``: blocking ``rfc3987_syntax`` is safe only because no
schema nbformat validates notebooks against declares a ``format`` keyword, so that is
checked here on the installed nbformat rather than assumed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat

from mscmeta.bundle.lean_imports import IRI_GRAMMAR_MODULE


def _format_keywords(node: object) -> set[str]:
    if isinstance(node, dict):
        found = {node["format"]} if isinstance(node.get("format"), str) else set()
        for value in node.values():
            found |= _format_keywords(value)
        return found
    if isinstance(node, list):
        return set().union(*(_format_keywords(v) for v in node)) if node else set()
    return set()


def test_no_notebook_schema_uses_a_string_format():
    schemas = sorted(Path(nbformat.__file__).parent.rglob("*.schema.json"))
    assert len(schemas) >= 5, "nbformat ships its notebook schemas"
    for schema in schemas:
        assert _format_keywords(json.loads(schema.read_text())) == set(), schema.name


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_runner_loads_papermill_without_the_grammar_and_still_validates():
    code = (
        "import sys\n"
        "from mscmeta.bundle.lean_imports import skip_iri_grammar\n"
        "print(skip_iri_grammar())\n"
        "import papermill, nbformat\n"
        "nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('1 + 1')])\n"
        "nbformat.validate(nb)\n"
        "bad = nbformat.from_dict({'nbformat': 4, 'nbformat_minor': 5, 'metadata': {}, 'cells': [{'cell_type': 'code'}]})\n"
        "try:\n"
        "    nbformat.validate(bad)\n"
        "    print('accepted')\n"
        "except nbformat.ValidationError:\n"
        "    print('refused')\n"
        f"print(sys.modules.get({IRI_GRAMMAR_MODULE!r}) is None)\n"
    )
    assert _run(code).split() == ["True", "refused", "True"]


def test_an_already_loaded_grammar_is_left_alone():
    code = (
        "import jsonschema\n"
        "from mscmeta.bundle.lean_imports import skip_iri_grammar\n"
        "print(skip_iri_grammar())\n"
    )
    assert _run(code) == "False"


# --- the package imports nothing heavy until a name is used ------------------------------

HEAVY = ("pandas", "scipy", "matplotlib", "pandera")


def test_the_runner_and_renderer_start_without_the_numerical_stack():
    """The notebook runner (6 processes per run) and the report renderer import neither pandas nor SciPy
    nor matplotlib: the engine's public names are imported on first use (PEP 562)."""
    for module in ("mscmeta", "mscmeta.engine", "mscmeta.bundle.pipeline"):
        loaded = _run(f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
        assert loaded == "", f"importing {module} loads {loaded}"


def test_lazy_engine_names_resolve_and_match_the_typing_imports():
    """Every name in ``mscmeta.engine.__all__`` resolves (from ``mscmeta`` too), comes from the module
    ``_EXPORTS`` names, and the ``TYPE_CHECKING`` block that stagedeps reads lists the same pairs."""
    import ast

    import mscmeta
    import mscmeta.engine as engine

    tree = ast.parse(Path(engine.__file__).read_text(encoding="utf-8"))
    guarded = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    typed = {a.name: node.module for node in guarded.body for a in node.names}
    assert typed == engine._EXPORTS
    for name, module in engine._EXPORTS.items():
        value = getattr(mscmeta, name)
        assert value is getattr(engine, name) is getattr(sys.modules[module], name)
        assert name in dir(mscmeta) and name in dir(engine)
    unknown = "no_such_estimator"
    for package in (mscmeta, engine):
        try:
            getattr(package, unknown)
        except AttributeError as err:
            assert unknown in str(err)
        else:
            raise AssertionError(f"{package.__name__}.{unknown} should not exist")
    star = _run("from mscmeta import *; print(sorted(k for k in dir() if not k.startswith('_')) == "
                "sorted(__import__('mscmeta.engine', fromlist=['x']).__all__))")
    assert star == "True"
    shadow = _run("import mscmeta.engine.mh_tests, mscmeta, types; print(isinstance(mscmeta.mh_tests, types.FunctionType))")
    assert shadow == "True", "a submodule import must not replace the function of the same name"
