"""The package files a notebook stage really depends on, for the Makefile.

A stage depends on the ``mscmeta`` modules its notebook imports, on everything those import
in turn (package ``__init__`` files included, since importing a module runs them), and on
the modules of the runner that executes it (:mod:`mscmeta.bundle.pipeline`). This module
finds that set by reading the import statements (``ast``; nothing is imported or run), so a
change to a plot reruns only the stages that draw it and a change to the engine reruns
every stage.

It uses the standard library only and runs as a plain script, before the virtual
environment exists::

    python3 lib/mscmeta/bundle/stagedeps.py notebooks/03-pool.ipynb \\
        --target outputs/notebooks/03-pool.ipynb --lib lib

prints a Makefile rule ``<target> <this rule's file>: <module files>``.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from functools import lru_cache
from pathlib import Path

#: Modules that run every stage (the runner and what it imports).
RUNNER_MODULES = ("mscmeta.bundle.pipeline",)
PACKAGE = "mscmeta"


@lru_cache(maxsize=None)
def _parsed_imports(path: Path, module: str) -> frozenset[str]:
    """The ``mscmeta`` modules *path* imports (parsed once per process, however many stages ask)."""
    return frozenset(imported_modules(path.read_text(encoding="utf-8"), module, path.name == "__init__.py"))


def _module_file(lib: Path, module: str) -> Path | None:
    """The file of *module* under *lib* (a module file or a package ``__init__.py``)."""
    base = lib.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _statements(tree: ast.AST):
    """Every statement of *tree*, at any depth (bodies of functions, classes, ``if``,
    ``try``, ``with``, ``match``...). Import statements are statements, and an expression
    cannot hold one, so expressions are not entered (a full :func:`ast.walk` visits every
    node and costs ten times as much)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.stmt):
            yield node
        todo.extend(child for child in ast.iter_child_nodes(node)
                    if isinstance(child, (ast.stmt, ast.excepthandler, ast.match_case)))


def imported_modules(source: str, module: str = "", is_package: bool = False) -> set[str]:
    """Every ``mscmeta`` module named by the import statements of *source* (any depth)."""
    found: set[str] = set()
    for node in _statements(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names if alias.name != "*"}
    return {m for m in found if m == PACKAGE or m.startswith(PACKAGE + ".")}


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def closure(lib: Path, roots: set[str]) -> set[Path]:
    """The files of *roots*, their parent packages and everything they import, transitively."""
    files: set[Path] = set()
    todo = sorted({m for root in roots for m in _with_parents(root)})
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = _module_file(lib, module)
        if path is None:  # a name imported from a module (a function, a class), not a module
            continue
        files.add(path)
        found = _parsed_imports(path, module)
        todo += sorted({m for f in found for m in _with_parents(f)} - seen)
    return files


def notebook_imports(notebook: Path) -> set[str]:
    """The ``mscmeta`` modules the code cells of *notebook* import."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return imported_modules(code)


def stage_dependencies(notebook: Path, lib: Path) -> list[Path]:
    """Sorted package files the stage of *notebook* depends on."""
    return sorted(closure(lib, notebook_imports(notebook) | set(RUNNER_MODULES)))


def make_rule(notebook: Path, lib: Path, target: str, rule_file: str | None = None) -> str:
    """A Makefile rule making *target* (and *rule_file*, if given) depend on the stage's files."""
    deps = " ".join(str(p) for p in stage_dependencies(notebook, lib))
    targets = target + (f" {rule_file}" if rule_file else "")
    return f"{targets}: {deps}\n"


def write_rules(notebooks: list[Path], lib: Path, rules_dir: Path, target: str) -> list[Path]:
    """Write ``<rules_dir>/<stage>.mk`` for every notebook, each parsed module read once.

    *target* names the executed notebook with ``{stage}`` for the stage's name, e.g.
    ``$(NB_OUT)/{stage}.ipynb``. Each file is replaced atomically.
    """
    written = []
    for notebook in notebooks:
        path = rules_dir / f"{notebook.stem}.mk"
        tmp = path.with_suffix(".mk.tmp")
        tmp.write_text(make_rule(notebook, lib, target.format(stage=notebook.stem)), encoding="utf-8")
        written.append(tmp.replace(path))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print (or write) the Makefile rules of notebook stages' package files.")
    parser.add_argument("notebooks", type=Path, nargs="+")
    parser.add_argument("--target", required=True,
                        help="the executed notebook the rule makes ({stage} stands for the stage with --rules-dir)")
    parser.add_argument("--lib", type=Path, default=Path("lib"), help="folder holding the mscmeta package")
    parser.add_argument("--rule-file", help="the file the rule is written to (made to depend on the same files)")
    parser.add_argument("--rules-dir", type=Path, help="write <stage>.mk here for every notebook instead of printing")
    args = parser.parse_args(argv)
    if args.rules_dir is not None:
        write_rules(args.notebooks, args.lib, args.rules_dir, args.target)
        return 0
    if len(args.notebooks) != 1:
        parser.error("print the rule of one notebook at a time (or use --rules-dir)")
    sys.stdout.write(make_rule(args.notebooks[0], args.lib, args.target, args.rule_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
