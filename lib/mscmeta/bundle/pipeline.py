"""Run one notebook stage of the bundle with papermill, all or nothing.

``python -m mscmeta.bundle.pipeline run notebooks/03-pool.ipynb --out outputs -p measure=RR``

1. The parameters are checked first: every one must be declared by the notebook, each
   value is read as the type of its default (``scenario=1`` stays the text ``"1"``), and
   the values of the engine's options (``measure``, ``model``, ``zero_cell``,
   ``tau2_method``) must be in its vocabulary -- one line naming the parameter otherwise,
   before any kernel starts.
2. The stage takes the outputs folder's lock (:mod:`mscmeta.bundle.outlock`; unless the
   ``make reproduce`` that started it holds it) and checks that it can write there.
3. The notebook is executed with papermill on the project kernel, with ``out_dir``
   pointing at a private staging folder (``<out>/.staging/<stage>.<random>``),
   ``tables_in`` at ``<out>/tables`` (what upstream stages wrote) and ``data_dir`` at the
   raw data. The kernel's own chatter on stderr is held back; it is shown only if the
   stage fails.
4. A kernel that dies before running the first cell is started once more
   (:data:`STARTUP_RETRIES`; kernels starting at once can collide). If a cell fails, or
   the kernel dies again or while running a cell, the staging folder is discarded, the executed
   notebook is kept at ``<out>/failed/<stage>.ipynb`` for inspection, and the error names
   the notebook and the cell; the previous outputs stay exactly as they were. A full disk
   or a read-only folder gives one line naming the file.
5. If every cell succeeds, the executed notebook is made deterministic
   (:mod:`mscmeta.bundle.nbclean`: no timings, no absolute paths) and the stage's outputs
   are published as a unit with a manifest (:mod:`mscmeta.bundle.publish`): files the
   stage no longer produces are removed, no temporary file is ever published, and the
   executed notebook -- the Makefile's target -- is moved into place last.

The kernel runs with ``PYTHONHASHSEED=0`` and ``SOURCE_DATE_EPOCH=0`` so the outputs
are byte-identical between runs. Under ``make reproduce`` it is forked from the run's
kernel server, which has imported the libraries already (:mod:`mscmeta.bundle.forkserver`);
elsewhere it starts the usual way. One line is printed when the stage starts and one when
it ends, with its time.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from mscmeta.bundle import forkserver, nbclean
from mscmeta.bundle.lean_imports import skip_iri_grammar
from mscmeta.bundle.outlock import OutputsLockError, outputs_lock
from mscmeta.bundle.paths import DATA_RAW, OUTPUTS, PROJECT_ROOT
from mscmeta.bundle.publish import PUBLISHED_DIRS, PublishError, publish
from mscmeta.engine.options import normalise_measure, normalise_model, normalise_tau2_method, normalise_zero_cell
from mscmeta.engine.errors import DataError

#: Kernel the Makefile registers inside the virtual environment (``make kernel``).
KERNEL_NAME = "mscmeta"
#: Environment the kernel inherits, for deterministic outputs.
DETERMINISTIC_ENV = forkserver.KERNEL_ENV
#: Parameters whose values are the engine's option vocabulary, checked before a kernel starts.
OPTION_PARAMETERS: dict[str, Callable[[object], str]] = {
    "measure": normalise_measure,
    "model": normalise_model,
    "zero_cell": normalise_zero_cell,
    "tau2_method": normalise_tau2_method,
}
#: Lines of kernel chatter that are never shown (they say nothing about the stage).
KERNEL_NOISE = ("Kernel is running over TCP without encryption", "KeyboardInterrupt caught in kernel",
                "To connect another client to this kernel", "--existing kernel-")

__all__ = ["PUBLISHED_DIRS", "StageError", "parse_value", "parse_assignments", "split_assignments",
           "typed_parameters", "declared_parameters", "run_stage", "main"]


class StageError(RuntimeError):
    """A notebook stage failed; the message names the notebook and the cell (or the file)."""


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


def split_assignments(items: list[str]) -> dict[str, str]:
    """Turn ``["measure=RR", "scenario=a b"]`` into ``{"measure": "RR", "scenario": "a b"}`` (values as text)."""
    params: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise StageError(f"parameter {item!r} is not of the form name=value")
        params[key] = value
    return params


def parse_assignments(items: list[str]) -> dict[str, object]:
    """Turn ``["measure=RR", "k=3"]`` into ``{"measure": "RR", "k": 3}`` (types from the values' form)."""
    return {k: parse_value(v) for k, v in split_assignments(items).items()}


def _cast(stage: str, name: str, text: str, type_name: str) -> object:
    """*text* as the type of the declared default (papermill's inferred type name)."""
    if type_name == "str":
        return text
    if type_name == "bool":
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        raise StageError(f"stage {stage}: parameter {name}={text!r} must be true or false")
    casts: dict[str, Callable[[str], object]] = {"int": int, "float": float}
    if type_name in casts:
        try:
            return casts[type_name](text)
        except ValueError:
            kind = "a whole number" if type_name == "int" else "a number"
            raise StageError(f"stage {stage}: parameter {name}={text!r} must be {kind}") from None
    return parse_value(text)


def typed_parameters(stage: str, given: Mapping[str, str], declared: Mapping[str, dict]) -> dict[str, object]:
    """Command-line values (text) as the types the notebook declares, with the engine's
    option values checked (see the module docstring)."""
    out = {}
    for name, text in given.items():
        type_name = (declared.get(name) or {}).get("inferred_type_name", "None")
        out[name] = _cast(stage, name, text, type_name)
        if name in OPTION_PARAMETERS:
            try:
                OPTION_PARAMETERS[name](out[name])
            except DataError as err:
                raise StageError(f"stage {stage}: parameter {name}: {err}") from None
    return out


def declared_parameters(notebook: Path) -> dict[str, dict]:
    """The parameters a notebook declares in its ``parameters`` cell (papermill's inspection)."""
    skip_iri_grammar()
    import papermill  # deferred on purpose: heavy (jupyter, nbclient); argument parsing does not need it

    return dict(papermill.inspect_notebook(str(notebook)))


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[0] if lines else ""


def _describe_failure(notebook: Path, exc: Exception) -> str:
    cell_index = getattr(exc, "cell_index", None)
    exec_count = getattr(exc, "exec_count", None)
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    first_line = _first_line(getattr(exc, "source", "") or "")
    where = f"cell {cell_index}" if cell_index is not None else "before any cell ran"
    if exec_count is not None:
        where += f" (In [{exec_count}])"
    return (
        f"stage {notebook} failed in {where}: {ename}: {evalue}"
        + (f"\n  cell starts with: {first_line}" if first_line else "")
    )


@contextlib.contextmanager
def _stderr_held(keep: list[str]) -> Iterator[None]:
    """Send this process's stderr (file descriptor 2, inherited by the kernel) to a temporary
    file for the block; its lines that are not :data:`KERNEL_NOISE` are appended to *keep*."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode("utf-8", errors="replace")
            keep += [ln for ln in text.splitlines() if ln.strip() and not any(n in ln for n in KERNEL_NOISE)]


def _check_writable(out: Path) -> None:
    """Fail early, naming the folder, if the outputs cannot be written (before a kernel starts)."""
    for sub in (".staging", *PUBLISHED_DIRS, "notebooks"):
        folder = out / sub
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = tempfile.NamedTemporaryFile(dir=folder, prefix=".probe.", delete=True)
            probe.close()
        except OSError as exc:
            raise StageError(f"cannot write to {folder}: {exc.strerror} (is the outputs folder read-only?)") from None


def _oserror_message(stage: str, exc: OSError, staging: Path, out: Path) -> str:
    """One line for a write that failed in the runner (the executed notebook, a published file)."""
    where = str(exc.filename or f"its executed notebook or outputs in {out}").replace(str(staging), str(out))
    text = str(exc.strerror or exc).replace(str(staging), str(out))
    return f"stage {stage} could not write {where}: {text}"


def _keep_failed(executed: Path, out: Path, stage: str, replacements: Mapping[str, str]) -> Path | None:
    failed = out / "failed" / f"{stage}.ipynb"
    try:
        if not executed.exists():
            return None
        nbclean.deterministic_notebook(executed, replacements)
        failed.parent.mkdir(parents=True, exist_ok=True)
        os.replace(executed, failed)
        return failed
    except OSError:
        return None  # no room for the copy: the message still names the cell


#: The papermill engine the stages run on (:func:`_register_engine`).
ENGINE_NAME = "mscmeta-final-save"


@functools.cache
def _register_engine() -> None:
    """Register papermill's nbclient engine with one change: the executed notebook is written
    once, when execution ends, instead of at the start and the end of every cell (42 writes
    of a notebook of up to 3 MB, each validated against its schema: ~1.5 s of a stage).
    Execution still ends in ``notebook_complete``, which papermill calls in a ``finally``, so
    a failed cell or a dead kernel still leaves the notebook, with the running cell marked,
    for the runner's message (:func:`mscmeta.bundle.nbclean.running_cell`)."""
    from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines  # deferred on purpose

    class FinalSaveManager(NotebookExecutionManager):
        final = False

        def save(self, **kwargs):
            if self.final:
                super().save(**kwargs)

        def notebook_complete(self, **kwargs):
            self.final = True
            super().notebook_complete(**kwargs)

    class FinalSaveEngine(NBClientEngine):
        @classmethod
        def execute_notebook(cls, nb, kernel_name, output_path=None, progress_bar=True, log_output=False,
                             autosave_cell_every=30, **kwargs):
            # papermill 2.x Engine.execute_notebook, with the manager above
            nb_man = FinalSaveManager(nb, output_path=output_path, progress_bar=progress_bar, log_output=log_output,
                                      autosave_cell_every=autosave_cell_every)
            nb_man.notebook_start()
            try:
                cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, **kwargs)
            finally:
                nb_man.cleanup_pbar()
                nb_man.notebook_complete()
            return nb_man.nb

    papermill_engines.register(ENGINE_NAME, FinalSaveEngine)


def _execute(notebook: Path, executed: Path, parameters: dict, kernel: str, progress: bool) -> None:
    skip_iri_grammar()
    import papermill  # deferred on purpose (see declared_parameters)

    _register_engine()

    saved_env = {k: os.environ.get(k) for k in DETERMINISTIC_ENV}
    os.environ.update(DETERMINISTIC_ENV)
    # Under make reproduce the kernel is a fork of the run's server (mscmeta.bundle.forkserver).
    forked = {"kernel_manager_class": forkserver.kernel_manager_class()} if forkserver.ensure_server() else {}
    try:
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters=parameters,
            kernel_name=kernel,
            cwd=str(notebook.parent),
            progress_bar=progress,
            engine_name=ENGINE_NAME,
            request_save_on_cell_execute=True,  # hands the engine the path of its one final save
            **forked,
        )
    finally:
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


#: How many times a stage is started again when its kernel dies before running its first
#: cell. A kernel can fail to start when several start at once (jupyter_client chooses free
#: TCP ports that the kernel binds only later, with no coordination between processes); a
#: kernel that dies while running a cell is reported at once.
STARTUP_RETRIES = 1


def _kernel_died(exc: BaseException) -> bool:
    """True if *exc* says the kernel died (nbclient's DeadKernelError, or jupyter_client's
    "Kernel died before replying to kernel_info")."""
    return "DeadKernel" in type(exc).__name__ or "died" in str(exc).lower()


def _died_before_first_cell(exc: BaseException, executed: Path) -> bool:
    """True if the kernel died (or never came up) before any cell of *executed* started."""
    return _kernel_died(exc) and nbclean.running_cell(executed) is None


def _execute_retrying(notebook: Path, executed: Path, parameters: dict, kernel: str, progress: bool,
                      chatter: list[str]) -> None:
    """:func:`_execute`, started once more (:data:`STARTUP_RETRIES`) if the kernel dies before
    its first cell; *chatter* then holds the kernel's words from the last attempt only."""
    for attempt in range(STARTUP_RETRIES + 1):
        try:
            with _stderr_held(chatter):
                _execute(notebook, executed, parameters, kernel, progress)
            return
        except OSError:
            raise
        except Exception as exc:  # noqa: BLE001 -- re-raised unless it is a start-up death
            if attempt == STARTUP_RETRIES or not _died_before_first_cell(exc, executed):
                raise
            chatter.clear()


def _failure(notebook: Path, exc: BaseException, executed: Path, chatter: list[str]) -> str:
    """One message for a stage that did not finish: the cell, the exception, the kernel's last words."""
    from papermill.exceptions import PapermillExecutionError  # deferred on purpose (see declared_parameters)

    if isinstance(exc, PapermillExecutionError):
        return _describe_failure(notebook, exc)
    cell = nbclean.running_cell(executed)
    died = _kernel_died(exc)
    what = "the kernel died" if died else f"{type(exc).__name__}: {exc}"
    where = f" in cell {cell[0]}" + (f"\n  cell starts with: {cell[1]}" if cell[1] else "") if cell else ""
    last = f"\n  the kernel said: {chatter[-1]}" if died and chatter else ""
    return f"stage {notebook} failed: {what}{where}{last}"


def _prepare(notebook: Path, out: Path, data_dir: Path, given: Mapping[str, object], lenient: bool
             ) -> tuple[dict, dict[str, object]]:
    declared = declared_parameters(notebook)
    unknown = sorted(set(given) - set(declared))
    if unknown and not lenient:
        raise StageError(
            f"stage {notebook.name}: unknown parameter(s) {', '.join(unknown)}; "
            f"it declares {', '.join(sorted(declared))}"
        )
    standard = {"data_dir": str(data_dir), "tables_in": str(out / "tables")}
    parameters = {k: v for k, v in standard.items() if k in declared}
    parameters.update({k: v for k, v in given.items() if k in declared})
    return declared, parameters


def _run_locked(notebook: Path, out: Path, data_dir: Path, parameters: dict, kernel: str, progress: bool) -> Path:
    stage = notebook.stem
    _check_writable(out)
    for stale in (out / ".staging").glob(f"{stage}.*"):  # left by a run killed with SIGKILL; we hold the lock
        shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{stage}.", dir=out / ".staging"))
    executed = staging / f"{stage}.ipynb"
    replacements = nbclean.display_paths(PROJECT_ROOT, out, staging, data_dir)
    chatter: list[str] = []
    try:
        try:
            _execute_retrying(notebook, executed, {**parameters, "out_dir": str(staging)}, kernel, progress, chatter)
        except OSError as exc:
            raise StageError(_oserror_message(stage, exc, staging, out)) from None
        except Exception as exc:  # a failing cell, a dead kernel, a missing kernel...
            message = _failure(notebook, exc, executed, chatter).replace(str(staging), str(out))
            failed = _keep_failed(executed, out, stage, replacements)
            raise StageError(message + (f"\n  executed notebook kept at {failed}" if failed else "")) from None
        try:
            nbclean.deterministic_notebook(executed, replacements)
            target = publish(stage, staging, out, executed, nbclean.rename_paths(parameters, replacements))
        except OSError as exc:
            raise StageError(_oserror_message(stage, exc, staging, out)) from None
        except PublishError as exc:
            raise StageError(str(exc)) from None
        (out / "failed" / f"{stage}.ipynb").unlink(missing_ok=True)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
    progress : bool
        Show papermill's progress bar.

    Returns
    -------
    Path
        The executed notebook in ``<out>/notebooks``.

    Raises
    ------
    StageError
        One message naming the stage and the cell, the parameter or the file.
    """
    notebook = Path(notebook).resolve()
    out = Path(os.path.abspath(out))
    data_dir = Path(os.path.abspath(data_dir))
    declared, parameters = _prepare(notebook, out, data_dir, dict(params or {}), lenient)
    try:
        with outputs_lock(out, what=f"stage {notebook.stem}"):
            return _run_locked(notebook, out, data_dir, parameters, kernel, progress)
    except OutputsLockError as exc:
        raise StageError(str(exc)) from None


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
    stage = Path(args.notebook).stem
    start = time.monotonic()
    print(f"[{stage}] started", flush=True)
    try:
        if not Path(args.notebook).is_file():
            raise StageError(f"stage {args.notebook}: no such notebook")
        given = split_assignments(args.params)
        params = typed_parameters(stage, given, declared_parameters(Path(args.notebook)))
        run_stage(args.notebook, out=args.out, data_dir=args.data_dir, params=params, kernel=args.kernel,
                  lenient=args.lenient)
    except StageError as exc:
        sys.stderr.write(f"[{stage}] error: {exc}\n")
        sys.stderr.flush()
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"[{stage}] interrupted; its earlier outputs are unchanged\n")
        return 130
    print(f"[{stage}] done in {time.monotonic() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
