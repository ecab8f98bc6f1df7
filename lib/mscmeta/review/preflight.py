"""The check ``make reproduce`` runs once, before any stage: the data and the parameters.

``python -m mscmeta.review.preflight --data-dir data/raw -p scenario=primary -p measure=OR ...``

Every stage validates what it reads before it writes anything, but the stages run in
parallel: without this check, a stage that does not need the broken part (or the scenario
without a mortality analysis) could publish its outputs while a sibling refuses the same
data, leaving the outputs folder half old, half new. So the run starts here, and stops
here with every problem at once if there is any:

* every sheet of ``data/raw/``, with every rule of its parser, including the rules the
  stage that owns an optional sheet applies (:func:`mscmeta.review.sheets.load_raw`);
* the scenario's mortality analysis: the scenario exists and yields at least one
  estimable study (:func:`mscmeta.review.scenarios.check_mortality_scenario`);
* the parameters of the pooling stages (measure, model, zero-cell convention, τ²
  estimator; :func:`mscmeta.review.mortality.check_options`) and of stage 05 (its model).

On success it prints one line saying what was checked (the Makefile keeps it as a stamp).
"""

from __future__ import annotations

import argparse
import os
import sys

from mscmeta.engine.options import normalise_model
from mscmeta.engine.validation import DataError
from mscmeta.review.mortality import AnalysisOptionError, check_options
from mscmeta.review.scenarios import check_mortality_scenario
from mscmeta.review.sheets import load_raw

#: The parameters this check knows, with their defaults (the notebooks' defaults).
PARAMETERS = {"scenario": "primary", "measure": "OR", "model": "fixed", "zero_cell": "revman",
              "tau2_method": "REML", "secondary_model": "random"}


def preflight(data_dir: str | os.PathLike, **params: str) -> str:
    """Check the data and the parameters of a run; return a one-line summary.

    Parameters
    ----------
    data_dir : path-like
        The raw data folder.
    **params : str
        :data:`PARAMETERS` (others are refused).

    Raises
    ------
    DataError
        Invalid data (every problem, one per line), a scenario without an estimable
        mortality analysis, or an invalid parameter (named).
    """
    unknown = sorted(set(params) - set(PARAMETERS))
    if unknown:
        raise DataError(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(PARAMETERS)}")
    p = {**PARAMETERS, **params}
    try:
        check_options(p["measure"], p["model"], p["zero_cell"], p["tau2_method"])
    except AnalysisOptionError as err:
        raise DataError(str(err)) from None
    try:
        normalise_model(p["secondary_model"])
    except DataError as err:
        raise DataError(f"parameter SECONDARY_MODEL (stage 05's model): {err}") from None
    raw = load_raw(data_dir)
    data = check_mortality_scenario(raw, p["scenario"])
    return (f"checked: every sheet of {os.path.basename(os.path.abspath(data_dir))}/ is valid; scenario "
            f"{p['scenario']!r} has {len(data)} stud{'y' if len(data) == 1 else 'ies'} in its mortality analysis")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mscmeta.review.preflight", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, help="raw data folder")
    parser.add_argument("-p", "--param", dest="params", action="append", default=[], metavar="NAME=VALUE",
                        help=f"a parameter ({', '.join(PARAMETERS)}); repeatable")
    args = parser.parse_args(argv)
    params = {}
    for item in args.params:
        name, sep, value = item.partition("=")
        if not sep:
            sys.stderr.write(f"error: parameter {item!r} is not of the form name=value\n")
            return 2
        params[name] = value
    try:
        print(preflight(args.data_dir, **params))
    except DataError as err:
        sys.stderr.write(f"error: the run was stopped before any stage ran: {err}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
