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
from pathlib import Path

#: Modules that run every stage (the runner and what it imports).
RUNNER_MODULES = ("mscmeta.bundle.pipeline",)
PACKAGE = "mscmeta"


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


def imported_modules(source: str, module: str = "", is_package: bool = False) -> set[str]:
    """Every ``mscmeta`` module named by the import statements of *source* (any depth)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
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
        found = imported_modules(path.read_text(encoding="utf-8"), module, path.name == "__init__.py")
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print the Makefile rule of a notebook stage's package files.")
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--target", required=True, help="the executed notebook the rule makes")
    parser.add_argument("--lib", type=Path, default=Path("lib"), help="folder holding the mscmeta package")
    parser.add_argument("--rule-file", help="the file the rule is written to (made to depend on the same files)")
    args = parser.parse_args(argv)
    sys.stdout.write(make_rule(args.notebook, args.lib, args.target, args.rule_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
