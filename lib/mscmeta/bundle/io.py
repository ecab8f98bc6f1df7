"""Atomic, deterministic writing of tables and figures.

Every output of the bundle goes through this module so that

* a failing run never leaves a half-written file (write to a temporary file in the
  same folder, then :func:`os.replace`, which is atomic on POSIX);
* two runs give byte-identical files: CSV with sorted columns as given, fixed float
  format and ``\\n`` line endings; SVG/PNG without timestamps and with a fixed SVG
  hash salt (see :func:`save_figure`).
"""

from __future__ import annotations

import errno
import math
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # tables are DataFrames; the atomic writers (the runner's) need no pandas
    import pandas as pd

#: Float format of every CSV table the bundle writes (enough digits to re-check a
#: result against metafor to 1e-6 on the log scale, and stable across runs).
FLOAT_FORMAT = "%.10g"

#: Metadata that matplotlib would otherwise fill with a date or version string.
PNG_METADATA: dict[str, str | None] = {"Software": None}
SVG_METADATA: dict[str, str | None] = {"Date": None, "Creator": None}
#: Salt for the ids matplotlib writes into SVG files (``svg.hashsalt``).
SVG_HASH_SALT = "mscmeta"


class OutputWriteError(OSError):
    """A table or figure cannot be written; the message names the file and why (one line)."""


#: What to tell the user for the usual reasons a write fails.
_WRITE_HINTS = {
    errno.ENOSPC: "the disk is full",
    errno.EFBIG: "the file size limit was reached (disk quota or `ulimit -f`)",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the folder is on a read-only file system",
    errno.EACCES: "permission denied (is the outputs folder read-only?)",
    errno.EPERM: "operation not permitted (is the outputs folder read-only?)",
}


def _write_error(path: Path, exc: OSError) -> OutputWriteError:
    why = _WRITE_HINTS.get(exc.errno, exc.strerror or str(exc))
    return OutputWriteError(exc.errno, f"cannot write {path}: {why}")


def _atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file next to *path*, then rename it to *path*.

    Raises
    ------
    OutputWriteError
        If the folder or the file cannot be written (full disk, size limit, read-only
        folder): one line naming *path*; the temporary file is removed.
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OutputWriteError:
        raise
    except OSError as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise _write_error(path, exc) from None
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write *text* (UTF-8, ``\\n`` line endings) to *path* atomically."""
    return _atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8", newline="\n"))


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write *data* to *path* atomically."""
    return _atomic_write(path, lambda tmp: tmp.write_bytes(data))


def table_to_csv(df: pd.DataFrame) -> str:
    """Render *df* as the bundle's canonical CSV text (no index, fixed float format)."""
    return df.to_csv(index=False, float_format=FLOAT_FORMAT, lineterminator="\n")


def table_to_markdown(df: pd.DataFrame, digits: int = 3) -> str:
    """Render *df* as a GitHub-flavoured Markdown table (floats rounded to *digits*).

    Written without the optional ``tabulate`` dependency so the output is stable.
    """

    def fmt(value: object) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return ""
        if isinstance(value, float):
            return f"{value:.{digits}f}"
        return str(value).replace("|", "\\|").replace("\n", " ")

    header = "| " + " | ".join(str(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([header, rule, *rows]) + "\n"


def write_table(
    df: pd.DataFrame,
    path: str | os.PathLike,
    markdown: bool = True,
    sort_by: str | Iterable[str] | None = None,
    digits: int = 3,
) -> Path:
    """Write a tidy table as CSV (and a readable Markdown twin) atomically.

    Parameters
    ----------
    df : DataFrame
        The table. Its index is not written; keep identifiers in columns.
    path : path-like
        Target ``.csv`` path. The Markdown rendering goes next to it as ``.md``.
    markdown : bool
        Also write ``<stem>.md``.
    sort_by : str or list of str, optional
        Sort rows (stable) before writing, for deterministic output.
    digits : int
        Decimals of floats in the Markdown rendering (the CSV keeps full precision).

    Returns
    -------
    Path
        The CSV path.
    """
    path = Path(path)
    if sort_by is not None:
        keys = [sort_by] if isinstance(sort_by, str) else list(sort_by)
        df = df.sort_values(keys, kind="mergesort").reset_index(drop=True)
    write_text(path, table_to_csv(df))
    if markdown:
        write_text(path.with_suffix(".md"), table_to_markdown(df, digits=digits))
    return path


def save_figure(fig, path_stem: str | os.PathLike, dpi: int = 200, close: bool = False) -> list[Path]:
    """Save *fig* as ``<stem>.png`` and ``<stem>.svg``, deterministically and atomically.

    PNG metadata (``Software``) and SVG metadata (``Date``, ``Creator``) are dropped and
    the SVG hash salt is fixed, so two runs give byte-identical files.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path_stem : path-like
        Target path without suffix, e.g. ``outputs/figures/forest_mortality``.
    dpi : int
        Resolution of the PNG.
    close : bool
        Close the figure after saving (batch runs); leave it open for display in notebooks.
    """
    import matplotlib as mpl  # deferred on purpose: stages that write only tables need not load matplotlib
    import matplotlib.pyplot as plt

    stem = Path(path_stem)
    written = []
    with mpl.rc_context({"svg.hashsalt": SVG_HASH_SALT, "svg.fonttype": "path"}):
        written.append(
            _atomic_write(
                stem.with_suffix(".png"),
                lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, metadata=PNG_METADATA),
            )
        )
        written.append(
            _atomic_write(
                stem.with_suffix(".svg"),
                lambda tmp: fig.savefig(tmp, format="svg", metadata=SVG_METADATA),
            )
        )
    if close:
        plt.close(fig)
    return written


#: A folder holding this is an outputs folder that ``make reproduce`` manages (its stages'
#: manifests, :mod:`mscmeta.bundle.publish`).
BATCH_MARKER = ".manifests"


class BatchOutputsError(RuntimeError):
    """A notebook run outside ``make reproduce`` tried to write into the batch outputs folder."""


def output_dirs(out_dir: str | Path) -> dict[str, Path]:
    """Create and return the standard output folders under *out_dir*.

    Returns a dict with keys ``tables`` and ``figures``.

    Raises
    ------
    BatchOutputsError
        If *out_dir* is the outputs folder ``make reproduce`` manages. The batch runner
        gives every stage a private staging folder and publishes it; a notebook run by
        hand (JupyterLab) writes to ``outputs/lab`` instead, its default, so the batch
        outputs stay those of the parameters ``make`` recorded and ``make`` stays
        truthful about what is up to date.
    """
    out = Path(out_dir)
    if (out / BATCH_MARKER).is_dir():
        raise BatchOutputsError(
            f"out_dir {out_dir} is the outputs folder that make reproduce manages; a notebook run by hand writes "
            "to outputs/lab (the notebooks' default out_dir, '../outputs/lab'), or run `make reproduce` with the "
            "parameters you want"
        )
    dirs = {"tables": out / "tables", "figures": out / "figures"}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    return dirs
