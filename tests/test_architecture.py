"""The package's shape (lib/README.md): four wings with one-way imports, no import circles,
no hidden imports of other mscmeta modules inside functions, thin notebooks that call one
review module each, one place for the option vocabulary, and functions short enough to read."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from mscmeta.bundle import stagedeps

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib"
PACKAGE = LIB / "mscmeta"
WINGS = ("engine", "plots", "review", "bundle")
#: What each wing may import (besides itself). The top-level modules (the public API and
#: the command line) may use the engine and the plots.
ALLOWED = {
    "engine": set(),
    "plots": {"engine"},
    "bundle": {"engine"},
    "review": {"engine", "plots", "bundle"},
    "top": {"engine", "plots"},
}
#: Longest function body (lines, docstring excluded) a reader should meet.
MAX_FUNCTION_LINES = 80


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(LIB).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _wing(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in WINGS else "top"


def _module_level_imports(path: Path, module: str) -> set[str]:
    """mscmeta modules imported at module level (not inside functions or classes)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    src = "\n".join(ast.unparse(n) for n in nodes)
    found = stagedeps.imported_modules(src, module, path.name == "__init__.py")
    known = _modules()
    return {m for m in found if m in known}


def _all_imports(path: Path, module: str) -> set[str]:
    found = stagedeps.imported_modules(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")
    known = _modules()
    return {m for m in found if m in known}


def test_every_module_is_in_a_wing_or_is_the_package_facade():
    top = sorted(m for m in _modules() if _wing(m) == "top")
    assert top == ["mscmeta", "mscmeta.__main__", "mscmeta.cli"], top


@pytest.mark.parametrize("module", sorted(_modules()))
def test_imports_go_one_way_between_wings(module):
    path = _modules()[module]
    wing = _wing(module)
    bad = sorted(m for m in _all_imports(path, module) if _wing(m) not in ALLOWED[wing] | {wing} and _wing(m) != "top"
                 or (_wing(m) == "top" and m != "mscmeta" and wing != "top"))
    assert not bad, f"{module} ({wing}) imports {bad}; allowed wings: {sorted(ALLOWED[wing] | {wing})}"


def test_the_engine_imports_nothing_but_the_engine():
    for module, path in _modules().items():
        if _wing(module) == "engine":
            others = {_wing(m) for m in _all_imports(path, module)} - {"engine"}
            assert not others, f"{module} imports from {others}"


def test_the_bundle_never_imports_the_review():
    for module, path in _modules().items():
        if _wing(module) == "bundle":
            assert not any(_wing(m) == "review" for m in _all_imports(path, module)), module


def test_no_import_circle():
    graph = {m: _module_level_imports(p, m) - {m} for m, p in _modules().items()}
    # a package's __init__ may re-export its submodules; the circle rule is about modules
    graph = {m: {d for d in deps if not (m == "mscmeta" or d in ("mscmeta",))} for m, deps in graph.items()}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if dep.startswith(node + "."):
                continue  # a package importing its own submodule
            if state.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def _function_body_imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = path.read_text(encoding="utf-8").splitlines()
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(func):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    yield node, lines[node.lineno - 1]


def test_no_function_body_imports_of_mscmeta_and_deferred_imports_say_why():
    problems = []
    for module, path in _modules().items():
        for node, line in _function_body_imports(path):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            if any(n == "mscmeta" or n.startswith("mscmeta.") or (isinstance(node, ast.ImportFrom) and node.level)
                   for n in names):
                problems.append(f"{module}:{node.lineno}: imports {names} inside a function")
            elif "deferred on purpose" not in line and not any(
                    "deferred on purpose" in ln for ln in _same_block(path, node)):
                problems.append(f"{module}:{node.lineno}: deferred import without a comment saying why")
    assert not problems, "\n".join(problems)


def _same_block(path: Path, node: ast.AST) -> list[str]:
    """The import lines of the block *node* belongs to (a comment on its first line covers it)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    i = node.lineno - 1
    block = []
    while i >= 0 and re.match(r"^\s+(import|from)\s", lines[i]):
        block.append(lines[i])
        i -= 1
    return block


NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
STAGE_MODULES = {
    "01-extract": "mscmeta.review.extract",
    "02-quality-assess": "mscmeta.review.quality",
    "03-pool": "mscmeta.review.pool",
    "04-subgroup": "mscmeta.review.subgroup",
    "05-secondary-outcomes": "mscmeta.review.secondary",
    "06-update-and-certainty": "mscmeta.review.update",
}


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_calls_its_review_module_and_bundle_io_only(notebook):
    imported = stagedeps.notebook_imports(notebook)
    direct = {m for m in imported if m in _modules()} - {"mscmeta", "mscmeta.review", "mscmeta.bundle"}
    review = sorted(m for m in direct if m.startswith("mscmeta.review."))
    assert review == [STAGE_MODULES[notebook.stem]], review
    assert direct - set(review) <= {"mscmeta.bundle.io"}, direct


def test_notebooks_define_no_functions_or_classes():
    for notebook in NOTEBOOKS:
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        tree = ast.parse(code)
        defs = [n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))
                and hasattr(n, "name")]
        assert not defs, f"{notebook.name} defines {defs}: library work belongs in mscmeta.review"


VOCABULARY = {
    "tau2 estimators": ("DL", "REML", "PM", "SJ", "HE", "ML", "EB"),
    "measures": ("OR", "RR", "RD", "PETO"),
    "methods": ("MH", "IV", "Peto"),
    "zero-cell conventions": ("revman", "none", "escalc"),
}


@pytest.mark.parametrize("what", sorted(VOCABULARY))
def test_the_option_vocabulary_is_declared_in_one_place(what):
    values = VOCABULARY[what]
    places = []
    for module, path in _modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Tuple) and all(isinstance(e, ast.Constant) for e in node.elts):
                if len(node.elts) >= 3 and set(values) <= {e.value for e in node.elts}:
                    places.append(f"{module}:{node.lineno}")
    assert places == [p for p in places if p.startswith("mscmeta.engine.options:")] and len(places) == 1, places


def _function_lengths():
    for module, path in _modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if ast.get_docstring(node):
                    doc = node.body[0]
                    n -= doc.end_lineno - doc.lineno + 1
                yield module, node.name, n


def test_functions_are_short_enough_to_read_at_once():
    long = [f"{m}.{name}: {n} lines" for m, name, n in _function_lengths() if n > MAX_FUNCTION_LINES]
    assert not long, "split these functions: " + "; ".join(long)


def test_no_two_public_functions_share_a_name_across_wings():
    seen: dict[str, str] = {}
    clashes = []
    for module, path in _modules().items():
        if module.endswith(("__init__", "__main__")) or module in ("mscmeta", "mscmeta.review.pool"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and node.name != "main":
                if node.name in seen and seen[node.name] != module:
                    clashes.append(f"{node.name}: {seen[node.name]} and {module}")
                seen.setdefault(node.name, module)
    assert not clashes, clashes


def test_stage_dependencies_follow_the_imports():
    deps = {p.stem: {str(f.relative_to(LIB)) for f in stagedeps.stage_dependencies(p, LIB)} for p in NOTEBOOKS}
    engine = {str(f.relative_to(LIB)) for f in (PACKAGE / "engine").glob("*.py")}
    for stage, files in deps.items():
        assert engine <= files, f"{stage} misses engine modules"  # mscmeta/__init__ imports the whole engine
        assert "mscmeta/bundle/pipeline.py" in files, stage
    assert "mscmeta/plots/funnel.py" in deps["03-pool"]
    assert not any("funnel" in f for s, files in deps.items() if s != "03-pool" for f in files)
    assert "mscmeta/plots/prisma.py" in deps["01-extract"] and "mscmeta/plots/forest.py" not in deps["01-extract"]
    assert "mscmeta/review/scorecard.py" in deps["03-pool"] and "mscmeta/review/scorecard.py" not in deps["04-subgroup"]


def test_stagedeps_rule_names_make_variables_not_paths(tmp_path):
    notebook = NOTEBOOKS[0]
    rule = stagedeps.make_rule(notebook, LIB, "$(NB_OUT)/x.ipynb", "$(DEPS_DIR)/x.mk")
    head, _, files = rule.partition(": ")
    assert head == "$(NB_OUT)/x.ipynb $(DEPS_DIR)/x.mk"
    assert all(f.startswith(str(LIB)) for f in files.split())
