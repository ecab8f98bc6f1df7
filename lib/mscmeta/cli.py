"""Command line: ``python -m mscmeta pool FILE.csv ...`` pools any 2x2 table CSV with the engine.

Usage::

    python -m mscmeta pool FILE.csv [--measure OR|RR|RD|PETO|AS] [--method MH|IV|Peto|GLMM|BAYES]
        [--model fixed|random] [--tau2 DL|REML|PM|SJ|HE|ML|EB] [--hksj]
        [--zero-cell revman|none] [--keep-double-zero] [--add 0.5] [--to only0|if0all|all|none]
        [--correction constant|treatment-arm] [--glmm UM.FS|UM.RS|CM.EL|CM.AL]
        [--tau-prior halfnormal:0.5|halfcauchy:0.5|turner-mortality[:COMPARISON]] [--mu-prior normal:MEAN:SD]
        [--subgroup-column COL [--tau2-common]] [--level 0.95] [--json]
        [--forest out.svg|out.png] [--labels "Treatment,Control"]

``FILE.csv`` needs the columns ``study, events_t, n_t, events_c, n_c`` (treatment arm
``_t``, control arm ``_c``; names matched case-insensitively). Without ``--json`` a
readable table is printed; with ``--json`` one JSON object with the keys of
:meth:`mscmeta.engine.results.MetaResult.to_dict` (``null`` where not applicable; estimate,
CI and prediction interval on the ratio scale for OR/RR/Peto). ``--method GLMM``
(binomial-normal GLMMs, metafor ``rma.glmm``) and ``--method BAYES`` (Bayesian random
effects, bayesmeta approach) give the same keys plus their own (``glmm_model``, ``Q_LRT``;
``prob_below_1``, ``prob_below_0_8``, ``tau``, ...); ``--subgroup-column`` gives
``{"overall": ..., "subgroups": {...}, "Q_between", ...}``. ``--forest`` also draws the
RevMan forest plot (:func:`mscmeta.plots.forest.forest_plot`) of an MH, IV or Peto analysis
with the arms named by ``--labels`` (default "Treatment,Control").

The file is read as the bundle reads its data sheets (:mod:`mscmeta.engine.csvtext`) and
checked by the same rules (:mod:`mscmeta.engine.validation`): comma-separated UTF-8 (a
semicolon or tab file, or bytes that are not UTF-8, are named with their line), one header
with no column twice, counts written as plain digits 0-9 within a plausible range, study
labels on one line. Bad input (unreadable file, missing columns, impossible counts, unknown
option values, too few studies for the method, an option that does not apply to the method)
ends with exit status 2 and one line on stderr. Option values are case-insensitive.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mscmeta.engine.bayes import meta_bayes
from mscmeta.engine.binary import meta_binary
from mscmeta.engine.csvtext import load_csv_text
from mscmeta.engine.glmm import meta_glmm
from mscmeta.engine.options import (
    ADD_TO,
    CORRECTIONS,
    GLMM_MODELS,
    MODEL_METHODS,
    TURNER_COMPARISONS,
    BinaryOptions,
)
from mscmeta.engine.results import MetaResult
from mscmeta.engine.subgroups import SubgroupResult, subgroup_analysis
from mscmeta.engine.validation import BINARY_COLUMNS, DataError
from mscmeta.plots.forest import forest_plot

USAGE_ERROR = 2
#: Arm labels of the forest plot when ``--labels`` is not given.
DEFAULT_ARM_LABELS = ("Treatment", "Control")
#: Figure formats ``--forest`` writes.
FOREST_FORMATS = (".svg", ".png")


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(USAGE_ERROR)


def _add_pooling_options(pool: argparse.ArgumentParser) -> None:
    pool.add_argument("--measure", default="OR", help="effect measure: OR, RR, RD or PETO (Peto odds ratio; implies --method Peto), "
                      "or AS (arcsine difference, pooled by inverse variance) (default OR)")
    pool.add_argument("--method", default="MH", help="pooling method: MH, IV or Peto, or a model: GLMM (binomial-normal "
                      "GLMM, metafor rma.glmm; OR only) or BAYES (Bayesian random effects, bayesmeta approach; "
                      "OR or RR) (default MH)")
    pool.add_argument("--model", default=None, help="fixed or random (default fixed; GLMM and BAYES are random)")
    pool.add_argument("--tau2", default=None, help="tau^2 estimator for --model random: DL, REML, PM, SJ, HE, ML, EB "
                      "(default DL; not for GLMM, which uses ML, or BAYES)")
    pool.add_argument("--hksj", action="store_true", help="Hartung-Knapp-Sidik-Jonkman CI (random effects; "
                      "not for GLMM or BAYES)")
    pool.add_argument("--zero-cell", default=None, dest="zero_cell",
                      help="zero-cell convention: revman (0.5 to zero-cell studies, also inside MH; RevMan 5; "
                           "default) or none (metafor rma.mh: nothing added inside MH/Peto); not for GLMM")
    pool.add_argument("--keep-double-zero", action="store_true", dest="keep_double_zero",
                      help="keep studies with no events in both arms (0.5 added, metafor escalc default); not for GLMM")


def _add_model_options(pool: argparse.ArgumentParser) -> None:
    pool.add_argument("--add", default=None, help="continuity correction added to the cells (metafor add; "
                      "default 0.5); with --zero-cell revman also inside the MH/Peto estimator, with none only "
                      "the study estimates; not for GLMM or AS")
    pool.add_argument("--to", default=None, help=f"which studies get it (metafor to): {', '.join(ADD_TO)} "
                      "(default only0); not for GLMM or AS")
    pool.add_argument("--correction", default=None, help=f"how it is split between the arms: {', '.join(CORRECTIONS)} "
                      "(treatment-arm: Sweeting et al. 2004, in proportion to the arm sizes); not for GLMM or AS")
    pool.add_argument("--glmm", default=None, help=f"GLMM model for --method GLMM: {', '.join(GLMM_MODELS)} "
                      "(default UM.FS; metafor rma.glmm)")
    pool.add_argument("--tau-prior", default=None, dest="tau_prior",
                      help="prior on tau for --method BAYES: halfnormal:SCALE, halfcauchy:SCALE or "
                           f"turner-mortality[:COMPARISON] (Turner et al. 2015; COMPARISON one of "
                           f"{', '.join(TURNER_COMPARISONS)}) (default halfnormal:0.5)")
    pool.add_argument("--mu-prior", default=None, dest="mu_prior",
                      help="prior on the mean log effect for --method BAYES: normal:MEAN:SD (default flat)")
    pool.add_argument("--subgroup-column", default=None, dest="subgroup_column",
                      help="pool each subgroup of this column and test for subgroup differences (MH, IV, Peto)")
    pool.add_argument("--tau2-common", action="store_true", dest="tau2_common",
                      help="with --subgroup-column and --model random: one tau^2 for all subgroups and metafor's "
                           "test (mods = ~ factor) instead of RevMan's separate tau^2 per subgroup")


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m mscmeta`` argument parser."""
    parser = _Parser(prog="python -m mscmeta", description="Meta-analysis of 2x2 counts from a CSV file.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    pool = sub.add_parser(
        "pool",
        help="pool the studies of a CSV file (columns study, events_t, n_t, events_c, n_c)",
        description="Pool the studies of FILE.csv (columns study, events_t, n_t, events_c, n_c; any case).",
    )
    pool.add_argument("file", metavar="FILE.csv", help="CSV file (comma-separated, UTF-8), one row per study")
    _add_pooling_options(pool)
    _add_model_options(pool)
    pool.add_argument("--level", default="0.95",
                      help="confidence level: a fraction in (0, 1) such as 0.95, or a percentage such as 95 (default 0.95)")
    pool.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    pool.add_argument("--forest", metavar="OUT.svg|OUT.png",
                      help="also draw the RevMan forest plot into this file (MH, IV or Peto; not with --subgroup-column)")
    pool.add_argument("--labels", default=",".join(DEFAULT_ARM_LABELS), metavar='"TREATMENT,CONTROL"',
                      help="names of the two arms in the forest plot (default %(default)s)")
    return parser


# --------------------------------------------------------------------------- reading


def read_counts(path: str) -> pd.DataFrame:
    """The 2x2 table of *path*: every cell as text, columns named canonically.

    Header names are matched to :data:`~mscmeta.engine.validation.BINARY_COLUMNS` without
    regard to case or surrounding spaces; other columns are kept as they are.

    Raises
    ------
    DataError
        One line naming the file (and line, column) for any file-level problem
        (:func:`mscmeta.engine.csvtext.load_csv_text`) or a column given twice.
    """
    text = load_csv_text(path, name=path)
    names = []
    seen: dict[str, str] = {}
    for name in text.header:
        key = name.strip().lower()
        canonical = key if key in BINARY_COLUMNS else name
        if canonical in seen:
            raise DataError(f"{path}, line {text.header_line}: column {canonical!r} appears twice in the header "
                            f"(as {seen[canonical]!r} and {name!r})")
        seen[canonical] = name
        names.append(canonical)
    data = pd.DataFrame(text.rows, columns=names, dtype=object)
    return data.apply(lambda col: col.str.strip())


# --------------------------------------------------------------------------- validation


def check_cli_level(text: str) -> float:
    """``--level`` as a fraction: a fraction in (0, 1) or a percentage in [50, 100).

    A value between 1 and 50 is refused rather than read as a percentage: ``--level 1.5``
    is a typo far more often than a request for a 1.5% interval.

    Raises
    ------
    DataError
        Naming the option and the value.
    """
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise DataError(f"--level must be a number such as 0.95 or 95, got {text!r}") from None
    if math.isfinite(value) and 0 < value < 1:
        return value
    if math.isfinite(value) and 50 <= value < 100:
        return value / 100
    raise DataError(
        f"--level {text} is not a confidence level: give a fraction in (0, 1) such as 0.95, or a percentage "
        "from 50 to below 100 such as 95"
    )


def check_arm_labels(text: str) -> tuple[str, str]:
    """``--labels "Treatment,Control"`` as two non-empty one-line names."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 2 or not all(parts) or any(not p.isprintable() for p in parts):
        raise DataError(f'--labels must name the two arms as "Treatment,Control" (two names, one comma), got {text!r}')
    return parts[0], parts[1]


def check_forest_path(path: str) -> Path:
    """``--forest`` target: a ``.svg`` or ``.png`` file in an existing folder."""
    target = Path(path)
    if target.suffix.lower() not in FOREST_FORMATS:
        raise DataError(f"--forest {path}: the file name must end in {' or '.join(FOREST_FORMATS)}")
    if not target.parent.is_dir():
        raise DataError(f"--forest {path}: the folder {target.parent} does not exist")
    return target


def has_zero_cell(data: pd.DataFrame) -> bool:
    """True if some study has an arm with no events or only events (where a zero-cell rule applies)."""
    ev_t, n_t = data["events_t"].astype(int), data["n_t"].astype(int)
    ev_c, n_c = data["events_c"].astype(int), data["n_c"].astype(int)
    return bool(((ev_t == 0) | (ev_t == n_t) | (ev_c == 0) | (ev_c == n_c)).any())


# --------------------------------------------------------------------------- output


def summary_text(result: MetaResult, zero_cells: bool) -> str:
    """The readable summary; the zero-cell convention is mentioned only when a study has a zero cell."""
    text = result.summary_text()
    if zero_cells or not result.notes:
        return text
    drop = {f"Zero cells: {result.zero_cell}", f"Note: {result.notes[0]}"}
    return "\n".join(line for line in text.splitlines() if line not in drop)


def save_forest(result: MetaResult, target: Path, arm_labels: tuple[str, str]) -> Path:
    """Draw the RevMan forest plot of *result* into *target* (SVG or PNG), atomically.

    The file carries no date or software version, so two runs give the same bytes.
    """
    import matplotlib  # deferred on purpose: only --forest needs a plotting backend

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # deferred on purpose (see above)

    fig = forest_plot(result, arm_labels=arm_labels, favours=arm_labels)
    fmt = target.suffix.lower().lstrip(".")
    metadata = {"Software": None} if fmt == "png" else {"Date": None, "Creator": None}
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        with matplotlib.rc_context({"svg.hashsalt": "mscmeta"}):
            fig.savefig(tmp, format=fmt, dpi=200, metadata=metadata)
        os.replace(tmp, target)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise DataError(f"--forest {target}: cannot write the figure ({err.strerror})") from None
    finally:
        plt.close(fig)
    return target


#: Options that do not apply to each model method (option flag -> attribute).
_NOT_FOR = {
    "GLMM": {"--model": "model", "--tau2": "tau2", "--hksj": "hksj", "--zero-cell": "zero_cell",
             "--keep-double-zero": "keep_double_zero", "--add": "add", "--to": "to", "--correction": "correction",
             "--tau-prior": "tau_prior", "--mu-prior": "mu_prior", "--subgroup-column": "subgroup_column", "--forest": "forest"},
    "BAYES": {"--model": "model", "--tau2": "tau2", "--hksj": "hksj", "--glmm": "glmm",
              "--subgroup-column": "subgroup_column", "--forest": "forest"},
    "other": {"--glmm": "glmm", "--tau-prior": "tau_prior", "--mu-prior": "mu_prior"},
}
_WHY = {"GLMM": "the GLMMs are random-effects models fitted by ML to the counts, without continuity corrections",
        "BAYES": "the Bayesian model is a random-effects model with its own prior on tau",
        "other": "--glmm belongs to --method GLMM, --tau-prior and --mu-prior to --method BAYES"}


def _check_applicable(args: argparse.Namespace, method: str) -> None:
    """Refuse options that do not apply to *method*, naming them."""
    kind = method if method in MODEL_METHODS else "other"
    given = [flag for flag, attr in _NOT_FOR[kind].items() if getattr(args, attr) not in (None, False)]
    if kind != "other" and args.model is not None and str(args.model).strip().lower() in ("random", "re"):
        given = [g for g in given if g != "--model"]
    if given:
        raise ValueError(f"{', '.join(given)} does not apply to --method {args.method} ({_WHY[kind]})")
    if args.tau2_common and args.subgroup_column is None:
        raise ValueError("--tau2-common applies to a subgroup analysis; give --subgroup-column")
    if args.forest and args.subgroup_column is not None:
        raise ValueError("--forest draws one pooled analysis; it does not apply with --subgroup-column")


def _options(args: argparse.Namespace, method: str) -> BinaryOptions:
    return BinaryOptions(
        measure=args.measure, method=method, model=args.model or "fixed", tau2_method=args.tau2,
        hksj=args.hksj, zero_cell=args.zero_cell or "revman", keep_double_zero=args.keep_double_zero,
        level=args.level, add=args.add, to=args.to, correction=args.correction or "constant",
    )


def _mu_prior(text: str | None) -> tuple[str, float, float] | None:
    if text is None:
        return None
    parts = str(text).split(":")
    if len(parts) != 3 or parts[0].strip().lower() != "normal":
        raise ValueError(f"--mu-prior must be normal:MEAN:SD (e.g. normal:0:4), got {text!r}")
    try:
        return "normal", float(parts[1]), float(parts[2])
    except ValueError:
        raise ValueError(f"--mu-prior must be normal:MEAN:SD with numbers, got {text!r}") from None


def _model_fit(args: argparse.Namespace, data: pd.DataFrame, method: str):
    if method == "GLMM":
        if str(args.measure).strip().upper() != "OR":
            raise ValueError(f"--method GLMM pools odds ratios (metafor rma.glmm, measure OR); got --measure {args.measure}")
        return meta_glmm(data, model=args.glmm or GLMM_MODELS[0], level=args.level, source=args.file)
    options = BinaryOptions(zero_cell=args.zero_cell or "revman", keep_double_zero=args.keep_double_zero,
                            add=args.add, to=args.to, correction=args.correction or "constant")
    return meta_bayes(data, measure=str(args.measure).strip().upper(), tau_prior=args.tau_prior or "halfnormal:0.5",
                      mu_prior=_mu_prior(args.mu_prior), level=args.level, source=args.file, options=options)


def _subgroup_text(sg: SubgroupResult) -> str:
    rows = [sg.overall.summary_text(), "", f"Subgroups by '{sg.by}':"]
    for name, res in sg.subgroups.items():
        if res is None:
            rows.append(f"  {name}: {sg.notes.get(name) or 'not estimable'}")
        else:
            lo, hi = res.conf_int()
            est = res.to_dict()["estimate"]
            rows.append(f"  {name} (k = {res.k}): {est:.4f} [{lo:.4f}, {hi:.4f}]" + (f"; tau2 = {res.tau2:.4f}"
                                                                                   if res.model == "random" else ""))
    rows.append(f"Test for subgroup differences ({sg.test_name()}): Q = {sg.Q_between:.4f}, df = {sg.df_between}, "
                f"p = {sg.p_between:.4g}")
    return "\n".join(rows)


def _subgroup_json(sg: SubgroupResult) -> dict:
    def num(x: float) -> float | None:
        return None if x != x else float(x)

    return {"overall": sg.overall.to_dict(), "by": sg.by,
            "subgroups": {name: None if res is None else res.to_dict() for name, res in sg.subgroups.items()},
            "Q_between": num(sg.Q_between), "df_between": int(sg.df_between), "p_between": num(sg.p_between),
            "between_test": sg.test_name(), "tau2_common": sg.tau2_common}


def run_pool(args: argparse.Namespace) -> str:
    """Run ``pool`` and return the text to print."""
    args.level = check_cli_level(args.level)
    arms = check_arm_labels(args.labels)
    method = str(args.method).strip()
    method = method.upper() if method.upper() in MODEL_METHODS else method
    _check_applicable(args, method)
    target = check_forest_path(args.forest) if args.forest else None
    data = read_counts(args.file)
    if method in MODEL_METHODS:
        model_fit = _model_fit(args, data, method)
        return json.dumps(model_fit.to_dict(), allow_nan=False) if args.json else str(model_fit)
    if args.subgroup_column is not None:
        sg = subgroup_analysis(data, args.subgroup_column, source=args.file, options=_options(args, method),
                               tau2_common=args.tau2_common)
        return json.dumps(_subgroup_json(sg), allow_nan=False) if args.json else _subgroup_text(sg)
    result = meta_binary(data, source=args.file, options=_options(args, method))
    if target is not None:
        save_forest(result, target, arms)
    if args.json:
        return json.dumps(result.to_dict(), allow_nan=False)
    return summary_text(result, has_zero_cell(data))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (0 success, 2 bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "pool":
            text = run_pool(args)
    except ValueError as err:  # DataError is a ValueError
        message = " ".join(str(err).split())
        sys.stderr.write(f"python -m mscmeta: error: {message}\n")
        return USAGE_ERROR
    sys.stdout.write(text + "\n")
    return 0
