"""Command line: pool a CSV of 2x2 counts without writing any code.

Usage::

    python -m mscmeta pool FILE.csv [--measure OR|RR|RD] [--method MH|IV|Peto]
        [--model fixed|random] [--tau2 DL|REML|PM|SJ|HE|ML|EB] [--hksj]
        [--zero-cell revman|none] [--keep-double-zero] [--level 0.95] [--json]

``FILE.csv`` needs the columns ``study, events_t, n_t, events_c, n_c`` (treatment arm
``_t``, control arm ``_c``). Without ``--json`` a readable table is printed; with ``--json``
one JSON object with the keys of :meth:`mscmeta.engine.results.MetaResult.to_dict` (``null`` where
not applicable; estimate, CI and prediction interval on the ratio scale for OR/RR/Peto).

Bad input (unreadable file, missing columns, impossible counts, unknown option values,
too few studies for the method) ends with exit status 2 and one line on stderr.
Option values are case-insensitive.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from mscmeta.engine.binary import meta_binary

USAGE_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose errors are one line on stderr and exit status 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(USAGE_ERROR)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m mscmeta`` argument parser."""
    parser = _Parser(prog="python -m mscmeta", description="Meta-analysis of 2x2 counts from a CSV file.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    pool = sub.add_parser(
        "pool",
        help="pool the studies of a CSV file (columns study, events_t, n_t, events_c, n_c)",
        description="Pool the studies of FILE.csv (columns study, events_t, n_t, events_c, n_c).",
    )
    pool.add_argument("file", metavar="FILE.csv", help="CSV file, one row per study")
    pool.add_argument("--measure", default="OR", help="effect measure: OR, RR or RD (default OR)")
    pool.add_argument("--method", default="MH", help="pooling method: MH, IV or Peto (default MH)")
    pool.add_argument("--model", default="fixed", help="fixed or random (default fixed)")
    pool.add_argument("--tau2", default="DL", help="tau^2 estimator for --model random: DL, REML, PM, SJ, HE, ML, EB (default DL)")
    pool.add_argument("--hksj", action="store_true", help="Hartung-Knapp-Sidik-Jonkman CI (random effects)")
    pool.add_argument("--zero-cell", default="revman", dest="zero_cell",
                      help="zero-cell convention: revman (0.5 to zero-cell studies, RevMan 5) or none (metafor rma.mh)")
    pool.add_argument("--keep-double-zero", action="store_true", dest="keep_double_zero",
                      help="keep studies with no events in both arms (0.5 added, metafor escalc default)")
    pool.add_argument("--level", default="0.95", help="confidence level, 0.95 or 95 (default 0.95)")
    pool.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    return parser


def _read_csv(path: str) -> pd.DataFrame:
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{path}: no such file")
    try:
        return pd.read_csv(file, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        detail = " ".join(str(err).split())
        raise ValueError(f"{path}: cannot read as CSV ({detail})") from None


def run_pool(args: argparse.Namespace) -> str:
    """Run ``pool`` and return the text to print."""
    data = _read_csv(args.file)
    data = data.apply(lambda col: col.str.strip())
    result = meta_binary(
        data,
        measure=args.measure,
        method=args.method,
        model=args.model,
        tau2_method=args.tau2,
        hksj=args.hksj,
        zero_cell=args.zero_cell,
        keep_double_zero=args.keep_double_zero,
        level=args.level,
        source=args.file,
    )
    if args.json:
        return json.dumps(result.to_dict(), allow_nan=False)
    return result.summary_text()


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
