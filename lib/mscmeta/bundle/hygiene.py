"""Notebook hygiene: source notebooks are committed without outputs and keep the
bundle's conventions (papermill ``parameters`` cell with literal, commented defaults;
narrative first; thin code).

``python -m mscmeta.bundle.hygiene check notebooks/*.ipynb`` lists every problem;
``python -m mscmeta.bundle.hygiene strip notebooks/*.ipynb`` removes outputs in place.
"""

from __future__ import annotations

import ast
import io
import json
import sys
import tokenize
from pathlib import Path

from mscmeta.bundle.io import write_text

#: Upper bound on lines of code per notebook: logic belongs in lib/mscmeta.
MAX_CODE_LINES = 120
#: Parameters that must be present (as paths) in every notebook that writes outputs.
REQUIRED_PARAMETERS = ("out_dir",)


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def parameter_problems(source: str) -> list[str]:
    """Problems of a ``parameters`` cell: every statement must assign a literal and carry a comment."""
    problems = []
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [f"parameters cell does not parse: {exc}"]
    commented = {
        tok.start[0]
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.COMMENT
    }
    names = []
    for node in tree.body:
        if isinstance(node, ast.AnnAssign):
            target, value = node.target, node.value
        elif isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        else:
            problems.append(f"line {node.lineno}: parameters cell may only assign literals")
            continue
        name = getattr(target, "id", "?")
        names.append(name)
        try:
            ast.literal_eval(value)
        except ValueError:
            problems.append(f"parameter {name}: default is not a literal")
        if node.lineno not in commented and node.end_lineno not in commented:
            problems.append(f"parameter {name}: no comment documenting it")
    for required in REQUIRED_PARAMETERS:
        if required not in names:
            problems.append(f"parameters cell has no {required}")
    return problems


def check_notebook(path: str | Path) -> list[str]:
    """Return the list of hygiene problems of one source notebook (empty if clean)."""
    path = Path(path)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return [f"{path}: not a readable notebook ({exc})"]
    cells = nb.get("cells", [])
    problems = []
    if not cells or cells[0].get("cell_type") != "markdown":
        problems.append("the first cell must be markdown (the narrative comes first)")
    code = [c for c in cells if c.get("cell_type") == "code"]
    for i, cell in enumerate(code):
        if cell.get("outputs"):
            problems.append(f"code cell {i} has outputs (run: make strip)")
        if cell.get("execution_count") is not None:
            problems.append(f"code cell {i} has an execution count (run: make strip)")
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1:
        problems.append(f"{len(tagged)} cells tagged 'parameters' (exactly one expected)")
    else:
        problems.extend(parameter_problems(_source(tagged[0])))
    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != "mscmeta":
        problems.append(f"kernelspec is {kernel!r}, expected 'mscmeta'")
    lines = sum(len(_source(c).splitlines()) for c in code)
    if lines > MAX_CODE_LINES:
        problems.append(f"{lines} lines of code (> {MAX_CODE_LINES}): move logic into lib/mscmeta")
    return [f"{path}: {p}" for p in problems]


def strip_notebook(path: str | Path) -> bool:
    """Remove outputs, execution counts and volatile metadata in place; return True if changed."""
    import nbformat  # deferred on purpose: heavy, and the check command does not need it

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    before = nbformat.writes(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in ("execution", "papermill", "collapsed", "scrolled"):
            cell.metadata.pop(key, None)
    for key in ("papermill", "widgets"):
        nb.metadata.pop(key, None)
    after = nbformat.writes(nb)
    if after != before:
        write_text(path, after + "\n" if not after.endswith("\n") else after)
        return True
    return False


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in {"check", "strip"}:
        print("usage: python -m mscmeta.bundle.hygiene check|strip NOTEBOOK...", file=sys.stderr)
        return 2
    command, paths = args[0], args[1:]
    if command == "strip":
        for p in paths:
            if strip_notebook(p):
                print(f"stripped {p}")
        return 0
    problems = [msg for p in paths for msg in check_notebook(p)]
    print("\n".join(problems) if problems else "all notebooks clean")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
