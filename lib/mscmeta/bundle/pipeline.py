"""Run one notebook stage of the bundle with papermill, all or nothing.

``python -m mscmeta.bundle.pipeline run notebooks/03-pool.ipynb --out outputs -p measure=RR``

1. The notebook is executed with papermill on the project kernel, with ``out_dir``
   pointing at a private staging folder (``<out>/.staging/<stage>``), ``tables_in`` at
   ``<out>/tables`` (what upstream stages wrote) and ``data_dir`` at the raw data.
2. If a cell fails, the staging folder is discarded, the failed executed notebook is
   kept at ``<out>/failed/<stage>.ipynb`` for inspection, and the error names the
   notebook and the cell; the previous outputs stay exactly as they were.
3. If every cell succeeds, the stage's tables and figures are moved into
   ``<out>/tables`` and ``<out>/figures`` (each by an atomic rename) and the executed
   notebook is moved to ``<out>/notebooks/<stage>.ipynb`` last: it is the Makefile's
   target, so an interrupted move makes ``make`` rerun the stage.

The kernel runs with ``PYTHONHASHSEED=0`` and ``SOURCE_DATE_EPOCH=0`` so the outputs
are byte-identical between runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from mscmeta.bundle.lean_imports import skip_iri_grammar
from mscmeta.bundle.paths import DATA_RAW, OUTPUTS

#: Kernel the Makefile registers inside the virtual environment (``make kernel``).
KERNEL_NAME = "mscmeta"
#: Environment the kernel inherits, for deterministic outputs.
DETERMINISTIC_ENV = {"PYTHONHASHSEED": "0", "SOURCE_DATE_EPOCH": "0"}
#: Sub-folders of a stage's out_dir that are published into the outputs tree.
PUBLISHED_DIRS = ("tables", "figures")


class StageError(RuntimeError):
    """A notebook stage failed; the message names the notebook and the cell."""


def parse_value(text: str) -> object:
    """Parse a ``key=value`` command-line value: bool, int, float, else the string itself."""
    lowered = text.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_assignments(items: list[str]) -> dict[str, object]:
    """Turn ``["measure=RR", "scenario=primary"]`` into a parameter dict."""
    params: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise StageError(f"parameter {item!r} is not of the form name=value")
        params[key] = parse_value(value)
    return params


def declared_parameters(notebook: Path) -> dict[str, dict]:
    """The parameters a notebook declares in its ``parameters`` cell (papermill's inspection)."""
    skip_iri_grammar()
    import papermill  # deferred on purpose: heavy (jupyter, nbclient); argument parsing does not need it

    return dict(papermill.inspect_notebook(str(notebook)))


def _describe_failure(notebook: Path, exc: Exception) -> str:
    cell_index = getattr(exc, "cell_index", None)
    exec_count = getattr(exc, "exec_count", None)
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    source = (getattr(exc, "source", "") or "").strip().splitlines()
    first_line = source[0] if source else ""
    where = f"cell {cell_index}" if cell_index is not None else "before any cell ran"
    if exec_count is not None:
        where += f" (In [{exec_count}])"
    return (
        f"stage {notebook} failed in {where}: {ename}: {evalue}"
        + (f"\n  cell starts with: {first_line}" if first_line else "")
    )


def run_stage(
    notebook: str | os.PathLike,
    out: str | os.PathLike = OUTPUTS,
    data_dir: str | os.PathLike = DATA_RAW,
    params: dict[str, object] | None = None,
    kernel: str = KERNEL_NAME,
    lenient: bool = False,
    progress: bool = False,
) -> Path:
    """Execute *notebook* into *out* atomically (see module docstring).

    Parameters
    ----------
    notebook : path-like
        Source notebook, e.g. ``notebooks/01-extract.ipynb``.
    out : path-like
        Root of the outputs tree (``tables/``, ``figures/``, ``notebooks/`` below it).
    data_dir : path-like
        Folder with the raw data sheets, passed as ``data_dir`` if the notebook has it.
    params : dict, optional
        Further parameters (``scenario``, ``measure``...).
    kernel : str
        Jupyter kernel name.
    lenient : bool
        Ignore parameters the notebook does not declare (default: refuse them).

    Returns
    -------
    Path
        The executed notebook in ``<out>/notebooks``.
    """
    skip_iri_grammar()
    import papermill  # deferred on purpose (see declared_parameters)
    from papermill.exceptions import PapermillExecutionError

    notebook = Path(notebook).resolve()
    out = Path(out).resolve()
    stage = notebook.stem
    declared = declared_parameters(notebook)
    given = dict(params or {})
    unknown = sorted(set(given) - set(declared))
    if unknown and not lenient:
        raise StageError(
            f"stage {notebook.name}: unknown parameter(s) {', '.join(unknown)}; "
            f"it declares {', '.join(sorted(declared))}"
        )
    staging = out / ".staging" / stage
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    standard = {"data_dir": str(Path(data_dir).resolve()), "tables_in": str(out / "tables"), "out_dir": str(staging)}
    parameters = {k: v for k, v in standard.items() if k in declared}
    parameters.update({k: v for k, v in given.items() if k in declared})
    executed = staging / f"{stage}.ipynb"
    saved_env = {k: os.environ.get(k) for k in DETERMINISTIC_ENV}
    os.environ.update(DETERMINISTIC_ENV)
    try:
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters=parameters,
            kernel_name=kernel,
            cwd=str(notebook.parent),
            progress_bar=progress,
            request_save_on_cell_execute=False,
        )
    except PapermillExecutionError as exc:
        failed = out / "failed" / f"{stage}.ipynb"
        failed.parent.mkdir(parents=True, exist_ok=True)
        if executed.exists():
            os.replace(executed, failed)
        shutil.rmtree(staging, ignore_errors=True)
        raise StageError(_describe_failure(notebook, exc) + f"\n  executed notebook kept at {failed}") from None
    except Exception as exc:  # kernel died, missing kernel, bad parameters...
        shutil.rmtree(staging, ignore_errors=True)
        raise StageError(f"stage {notebook} could not run: {type(exc).__name__}: {exc}") from None
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    _publish(staging, out)
    target = out / "notebooks" / f"{stage}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(executed, target)
    (out / "failed" / f"{stage}.ipynb").unlink(missing_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    return target


def _publish(staging: Path, out: Path) -> None:
    """Move every file under ``staging/<dir>`` to ``out/<dir>`` by atomic renames."""
    for sub in PUBLISHED_DIRS:
        src_root = staging / sub
        if not src_root.is_dir():
            continue
        for src in sorted(p for p in src_root.rglob("*") if p.is_file()):
            dest = out / sub / src.relative_to(src_root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mscmeta.bundle.pipeline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute one notebook stage into the outputs tree")
    run.add_argument("notebook", help="source notebook, e.g. notebooks/01-extract.ipynb")
    run.add_argument("-p", "--param", dest="params", action="append", default=[], metavar="NAME=VALUE", help="a notebook parameter (repeatable)")
    run.add_argument("--out", default=str(OUTPUTS), help="outputs root (default: %(default)s)")
    run.add_argument("--data-dir", default=str(DATA_RAW), help="raw data folder (default: %(default)s)")
    run.add_argument("--kernel", default=KERNEL_NAME, help="Jupyter kernel (default: %(default)s)")
    run.add_argument("--lenient", action="store_true", help="ignore parameters the notebook does not declare")
    args = parser.parse_args(argv)
    try:
        target = run_stage(
            args.notebook,
            out=args.out,
            data_dir=args.data_dir,
            params=parse_assignments(args.params),
            kernel=args.kernel,
            lenient=args.lenient,
        )
    except StageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"ran {args.notebook} -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
