"""Trial sequential analysis of mortality (stage 06): is the evidence conclusive?

For each updated scenario, trials in publication order (as the cumulative meta-analysis),
the cumulative Z of RevMan's Mantel-Haenszel odds ratio (0.5 added to every cell of a
zero-cell trial) is monitored with Lan-DeMets O'Brien-Fleming boundaries computed by
recursive numerical integration (:mod:`mscmeta.engine.group_sequential`, :mod:`mscmeta.engine.tsa`).

The required information size (RIS) comes from the pooled control-arm mortality of the
analysed trials, two-sided alpha 5% (2.5% spent on each side), power 80% and 90%, and a
relative risk reduction (RRR) of 20% and of the RRR implied by Yao's published odds ratio at
that control risk (RR = OR / (1 - P_C (1 - OR)); Zhang & Yu, JAMA 1998;280:1690), and is
adjusted for heterogeneity by the diversity D^2 of the trials (Wetterslev et al. 2009).

Conventions (stated in :mod:`mscmeta.engine.tsa`): trials without deaths in either arm are
left off the information axis (RTSA); looks below 5% of the RIS, or adding less than 1%, are
not analysed; the verdict is the first boundary crossed (benefit, harm, futility), otherwise
"inconclusive" with the information fraction reached.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from mscmeta.engine.options import BinaryOptions
from mscmeta.engine.tsa import TSAResult, diversity_of_counts, trial_sequential_analysis_from_counts
from mscmeta.plots.tsa import tsa_plot
from mscmeta.review.sheets import ARM_COLUMNS
from mscmeta.review.update_cumulative import date_order
from mscmeta.review.update_inputs import UpdateInputs

POWERS: tuple[float, ...] = (0.8, 0.9)
RRR_DEFAULT = 0.20
ALPHA = 0.05


@dataclass(frozen=True)
class TsaRun:
    """One trial sequential analysis and what it was computed from."""

    scenario: str
    rrr_basis: str
    rrr: float
    power: float
    control_risk: float
    d2: float
    excluded: tuple[str, ...]
    result: TSAResult

    @property
    def heading(self) -> str:
        basis = "" if self.rrr_basis.startswith("fixed") else f" ({self.rrr_basis})"
        return f"{self.scenario}: RRR {self.rrr:.0%}{basis}, power {self.power:.0%}, D² {self.d2:.0%}"


def yao_odds_ratio(inputs: UpdateInputs) -> tuple[float, str] | None:
    """Yao's published overall odds ratio and its quote status (``published_results.csv``)."""
    pub = inputs.raw.published_results
    rows = pub[(pub["quantity"] == "mortality_or") & (pub["subgroup"] == "overall")]
    if rows.empty or not np.isfinite(rows.iloc[0]["estimate"]):
        return None
    return float(rows.iloc[0]["estimate"]), str(rows.iloc[0]["quote_status"])


def implied_rrr(odds_ratio: float, control_risk: float) -> float:
    """RRR implied by an odds ratio at a control risk: 1 - OR / (1 - P_C (1 - OR)).

    References
    ----------
    Zhang J, Yu KF. What's the relative risk? JAMA 1998;280:1690-1691.
    """
    return 1.0 - odds_ratio / (1.0 - control_risk * (1.0 - odds_ratio))


def _ordered(data: pd.DataFrame) -> tuple[pd.DataFrame, tuple[str, ...], float]:
    d = date_order(data)
    informative = (d["events_msc"] + d["events_control"]) > 0
    excluded = tuple(d.loc[~informative, "label"].astype(str))
    kept = d[informative]
    return d, excluded, float(kept["events_control"].sum() / kept["n_control"].sum())


def run_tsa(inputs: UpdateInputs, scenarios: Iterable[str], options: BinaryOptions,
            powers: Sequence[float] = POWERS) -> list[TsaRun]:
    """Every scenario x RRR (20%, Yao-implied) x power."""
    runs = []
    yao = yao_odds_ratio(inputs)
    for scenario in scenarios:
        ordered, excluded, control = _ordered(inputs.data[scenario])
        if control <= 0 or len(ordered) == len(excluded):
            continue
        columns = {**ARM_COLUMNS, "study": "label"}  # trials named by their display label
        d2 = diversity_of_counts(ordered, measure=options.measure, columns=columns)
        bases = [("fixed 20%", RRR_DEFAULT)]
        if yao is not None and 0 < implied_rrr(yao[0], control) < 1:
            bases.append((f"implied by Yao's OR {yao[0]:g}", implied_rrr(yao[0], control)))
        for basis, rrr in bases:
            for power in powers:
                result = trial_sequential_analysis_from_counts(
                    ordered, relative_risk_reduction=rrr, alpha=ALPHA, power=power, diversity=d2, options=options,
                    columns=columns, source=f"scenario {scenario}")
                runs.append(TsaRun(scenario, basis, rrr, power, control, d2, excluded, result))
    return runs


def _summary_row(run: TsaRun) -> dict:
    r = run.result
    last = int(np.flatnonzero(r.analysed)[-1]) if r.analysed.any() else None
    ci = r.adjusted_ci or (np.nan, np.nan)
    return {
        "scenario": run.scenario, "rrr_basis": run.rrr_basis, "rrr": run.rrr, "power": run.power, "alpha": r.alpha,
        "control_risk": run.control_risk, "diversity_d2": run.d2,
        "ris_unadjusted": r.ris.unadjusted if r.ris else np.nan, "ris": r.required_information_size,
        "trials": len(r.labels), "patients": float(r.cumulative_n[-1]),
        "information_fraction": r.information_fraction_reached, "z_last": float(r.z[-1]),
        "z_last_analysed": float(r.z[last]) if last is not None else np.nan,
        "boundary_last_analysed": float(r.upper[last]) if last is not None else np.nan,
        "boundary_at_ris": r.boundary_at_ris, "verdict": r.verdict.value,
        "verdict_trial": r.labels[r.verdict_look] if r.verdict_look is not None else "",
        "estimate": r.estimate, "tsa_ci_low": ci[0], "tsa_ci_high": ci[1],
        "double_zero_not_counted": "; ".join(run.excluded),
    }


def tsa_table(runs: Sequence[TsaRun]) -> pd.DataFrame:
    """``tsa.csv``: one row per scenario x RRR x power (RIS, D², information fraction, verdict,
    TSA-adjusted CI of the last pooled odds ratio)."""
    return pd.DataFrame([_summary_row(run) for run in runs])


def tsa_looks_table(runs: Sequence[TsaRun]) -> pd.DataFrame:
    """``tsa_looks.csv``: one row per analysis and trial (cumulative patients, information
    fraction, Z, monitoring and futility boundaries, alpha spent)."""
    frames = []
    for run in runs:
        frame = run.result.boundaries_frame()
        frame.insert(0, "power", run.power)
        frame.insert(0, "rrr_basis", run.rrr_basis)
        frame.insert(0, "scenario", run.scenario)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def tsa_figure(runs: Sequence[TsaRun], basis: str = "fixed 20%") -> Figure:
    """One panel per scenario and power at the RRR *basis* (default the fixed 20%)."""
    return tsa_plot([(run.heading, run.result) for run in runs if run.rrr_basis == basis])


def tsa_markdown(table: pd.DataFrame, yao: tuple[float, str] | None) -> str:
    """The verdicts in words, numbers from *table*."""
    lines = []
    for r in table.itertuples(index=False):
        what = r.verdict + (f" at {r.verdict_trial}" if r.verdict_trial else "")
        if r.verdict_trial and np.isfinite(r.boundary_last_analysed):
            inside = abs(r.z_last_analysed) < r.boundary_last_analysed
            what += (f" (at the last analysed trial Z = {r.z_last_analysed:.2f} against a boundary of "
                     f"±{r.boundary_last_analysed:.2f}: {'back inside' if inside else 'still outside'} the boundaries)")
        lines.append(
            f"- **{r.scenario}**, RRR {r.rrr:.0%}" + ("" if r.rrr_basis.startswith("fixed") else f" ({r.rrr_basis})")
            + f", power {r.power:.0%}: control mortality "
            f"{r.control_risk:.1%}, D² {r.diversity_d2:.0%}, RIS {int(r.ris):,} patients "
            f"({int(r.ris_unadjusted):,} before the D² adjustment); {int(r.patients):,} patients in {r.trials} trials "
            f"= information fraction {r.information_fraction:.2f}; **{what}**. TSA-adjusted 95% CI of the last pooled "
            f"OR {r.estimate:.2f}: {r.tsa_ci_low:.2f} to {r.tsa_ci_high:.2f}.")
    if yao is not None and yao[1] != "verbatim":
        lines.append("")
        lines.append(f"Yao's OR {yao[0]:g} comes from a news summary whose passage was not located "
                     "(`published_results.csv`); the RRR it implies is shown for comparison, not as a sourced target.")
    return "\n".join(lines) + "\n"
