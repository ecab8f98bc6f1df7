"""Reproduction scorecard: every published quantity of Yao et al. 2022 next to ours.

The published values live only in ``data/raw/published_results.csv`` (columns
``quantity, subgroup, measure, estimate, ci_low, ci_high, p_value, ...``); nothing here
types a result. For each published row :func:`scorecard` computes our value with the
same definition, compares them with :func:`status` and writes an explanation generated
from the data (which studies are in our set, which counts are derived or rest on a later
review, which convention was used).

Status rule (:func:`status`), applied to every value the paper reports for a quantity
(estimate and both confidence limits, or the P value, or the count):

``match``
    Ours rounds to the published value at the published number of decimals, i.e.
    ``|ours - published| <= 0.5 * 10**-d`` with ``d`` the decimals printed in the source
    (0.6149 against a published 0.61 is a match; 0.616 is not).
``close``
    Not a match, but every value is near: ratio measures within
    :data:`CLOSE_LOG` on the natural-log scale (``|log ours - log published| <= 0.10``,
    about ±10 %); P values within :data:`CLOSE_P` absolute and on the same side of 0.05;
    counts within :data:`CLOSE_COUNT` relative difference (10 %).
``differs``
    Anything else.
``not computed``
    We have no value (e.g. the subgroup is empty or not estimable in our data).

:func:`what_would_it_take` then asks which plausible changes to the included set move
the pooled odds ratio toward the published one: dropping each included study, adding
each candidate study with mortality counts, swapping each study's counts for an
alternative reading in ``mortality.csv``, each inclusion scenario, and a greedy
combination of single changes. These are findings about the data, not analyses to
adopt.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mscmeta.engine.options import BinaryOptions
from mscmeta.engine.results import MetaResult
from mscmeta.review.display import fmt_estimate
from mscmeta.review.extract import study_set_comparison
from mscmeta.review.inputs import StageInputs
from mscmeta.review.mortality import ARM_COLUMNS, describe_options, display_value, labels_of, try_pool
from mscmeta.review.scenarios import analysis_mortality, scenario_studies, scenarios
from mscmeta.review.sheets import RawData, study_labels
from mscmeta.review.subgroup import SUBGROUP_FACTORS, run_subgroups
from mscmeta.review.tables import QUANTITY_NAMES

#: "close" for ratio measures: |log(ours) - log(published)| <= CLOSE_LOG for estimate and CI limits.
CLOSE_LOG = 0.10
#: "close" for P values: absolute difference <= CLOSE_P and same side of 0.05.
CLOSE_P = 0.05
#: "close" for counts: relative difference <= CLOSE_COUNT.
CLOSE_COUNT = 0.10

SCORECARD_COLUMNS = (
    "quantity", "subgroup", "measure", "published_estimate", "published_ci_low", "published_ci_high",
    "published_p_value", "reproduced_estimate", "reproduced_ci_low", "reproduced_ci_high", "reproduced_p_value",
    "difference", "log_ratio", "status", "explanation",
)

COUNT_QUANTITIES = ("studies", "articles", "patients", "study_size_min", "study_size_max", "mortality_studies")


# ---------------------------------------------------------------------------
# Status rule
# ---------------------------------------------------------------------------


def rounds_to(ours: float, published: float, decimals: int | None) -> bool:
    """``ours`` rounds to ``published`` at ``decimals`` (|diff| ≤ half a unit in the last place)."""
    if decimals is None or not np.isfinite(ours) or not np.isfinite(published):
        return False
    return abs(ours - published) <= 0.5 * 10.0 ** (-decimals) + 1e-12


def status(kind: str, pairs: Sequence[tuple[float, float, int | None]]) -> str:
    """Status of one quantity from (ours, published, published decimals) pairs.

    Parameters
    ----------
    kind : {"ratio", "difference", "p", "count"}
        How "close" is judged (see the module docstring).
    pairs : sequence of (ours, published, decimals)
        One per value the source reports (estimate, CI limits; or P; or count). Pairs
        whose published value is missing are ignored.
    """
    pairs = [(o, p, d) for o, p, d in pairs if p is not None and np.isfinite(p)]
    if not pairs:
        return "not computed"
    if any(o is None or not np.isfinite(o) for o, _, _ in pairs):
        return "not computed"
    if all(rounds_to(o, p, d) for o, p, d in pairs):
        return "match"
    if kind == "ratio":
        near = all(o > 0 and p > 0 and abs(math.log(o) - math.log(p)) <= CLOSE_LOG for o, p, _ in pairs)
    elif kind == "p":
        near = all(abs(o - p) <= CLOSE_P and ((o < 0.05) == (p < 0.05)) for o, p, _ in pairs)
    elif kind == "count":
        near = all(abs(o - p) <= CLOSE_COUNT * abs(p) for o, p, _ in pairs)
    else:  # differences: within CLOSE_LOG absolute
        near = all(abs(o - p) <= CLOSE_LOG for o, p, _ in pairs)
    return "close" if near else "differs"


# ---------------------------------------------------------------------------
# Explanations
# ---------------------------------------------------------------------------


def _names(labels: Sequence[str]) -> str:
    labels = [str(x) for x in labels]
    if not labels:
        return "none"
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def _fmt_ratio(est: float, lo: float, hi: float) -> str:
    if not np.isfinite(est):
        return "not estimable"
    return fmt_estimate(est, lo, hi)


def data_quality_text(data: pd.DataFrame) -> str:
    """Which counts are derived, rest on a later review, or use a stated time point."""
    lab = labels_of(data)
    parts = []
    if "source_level" in data.columns:
        later = data.loc[data["source_level"].astype(str) == "later review", ARM_COLUMNS["study"]]
        if len(later):
            parts.append(f"counts resting on a later review only (unverified in a primary source): {_names([lab[s] for s in later])}")
    if "derived" in data.columns:
        derived = data.loc[data["derived"].astype(bool), ARM_COLUMNS["study"]]
        if len(derived):
            parts.append(f"counts derived from percentages or survivors: {_names([lab[s] for s in derived])}")
    return "; ".join(parts)


def pooled_set_text(result, data: pd.DataFrame) -> str:
    """Which studies entered a pooled estimate and which were not estimable."""
    lab = labels_of(data)
    s = result.studies
    pooled = [lab.get(str(x), str(x)) for x in s.loc[s["estimable"].astype(bool), "study"]]
    not_est = [lab.get(str(x), str(x)) for x in s.loc[~s["estimable"].astype(bool), "study"]]
    text = f"pools k = {result.k} of {len(s)} stud{'y' if len(s) == 1 else 'ies'} ({_names(pooled)})"
    if not_est:
        text += f"; not estimable (no deaths in either arm): {_names(not_est)}"
    return text


# ---------------------------------------------------------------------------
# Our values for each published quantity
# ---------------------------------------------------------------------------


@dataclass
class Reproduced:
    """Our value(s) for one published quantity and why they are what they are."""

    estimate: float = np.nan
    ci_low: float = np.nan
    ci_high: float = np.nan
    p_value: float = np.nan
    kind: str = "ratio"
    explanation: str = ""


def _subgroup_kind(subgroup: str) -> tuple[str, str] | None:
    """Map a published subgroup label to (factor, our subgroup name)."""
    s = subgroup.strip().lower()
    m = re.match(r"^(\d+)\s*(dose|doses|infusion|infusions)?$", s) or re.match(r"^(\d+)[\s_-]*(dose|doses)", s)
    if m:
        n = int(m.group(1))
        return "doses", f"{n} dose{'s' if n != 1 else ''}"
    for sev in ("severe", "critical", "mixed"):
        if s == sev or s.startswith(sev):
            return "severity_assigned", sev
    return None


class ScorecardContext:
    """Everything the scorecard needs: raw sheets, scenario, our data and analyses."""

    def __init__(self, raw: RawData, scenario: str, data: pd.DataFrame, primary: MetaResult | None, options: BinaryOptions,
                 specs_results: Mapping | None = None,
                 source: str | None = None):
        self.raw = raw
        self.scenario = scenario
        self.data = data
        self.primary = primary
        self.options = options
        self.others = dict(specs_results or {})
        self.source = source
        self._subgroups: dict[str, object] = {}

    def subgroup_result(self, factor_name: str):
        if factor_name not in self._subgroups:
            factor = next(f for f in SUBGROUP_FACTORS if f.name == factor_name)
            self._subgroups[factor_name] = run_subgroups(self.data, factor, self.options, source=self.source)
        return self._subgroups[factor_name]

    def set_size_text(self) -> str:
        """Our review set and mortality set next to the published study/patient counts."""

        cmp = study_set_comparison(self.raw, self.scenario).set_index("quantity")
        st = scenario_studies(self.raw, self.scenario)
        no_deaths = st[st["mortality_row"].isna()]
        parts = []
        for q in ("studies", "articles", "patients"):
            ours, pub = cmp.loc[q, "this_scenario"], cmp.loc[q, "published"]
            if pub is not None and not pd.isna(pub):
                parts.append(f"{int(ours)} {q} (published {int(pub)})")
        text = f"Our review set (scenario '{self.scenario}'): " + ", ".join(parts) + "."
        if len(no_deaths):
            text += " In it without comparative death counts, so not in the pooling: " + _names(
                [f"{r.label} ({r.mortality_data})" for r in no_deaths.itertuples()]) + "."
        return text

    # -- quantities --------------------------------------------------------
    def effect(self, subgroup: str) -> Reproduced:
        lab = labels_of(self.data)
        conv = describe_options(self.options)
        if subgroup.strip().lower() in ("overall", "all", "total", ""):
            r = self.primary
            if r is None:
                return Reproduced(explanation="our primary analysis is not estimable (no study with deaths)")
            est, lo, hi = (display_value(r, v) for v in (r.estimate, r.ci_low, r.ci_high))
            others = [
                f"{name}: {_fmt_ratio(*(display_value(res, v) for v in (res.estimate, res.ci_low, res.ci_high)))}"
                for name, res in self.others.items() if name != "primary" and res is not None
            ]
            expl = [f"Ours ({conv}) {pooled_set_text(r, self.data)}."]
            expl.append(self.set_size_text())
            dq = data_quality_text(self.data)
            if dq:
                expl.append(dq[0].upper() + dq[1:] + ".")
            if others:
                expl.append("Other conventions on the same studies: " + "; ".join(others) + ".")
            return Reproduced(est, lo, hi, kind="ratio" if r.is_ratio() else "difference", explanation=" ".join(expl))
        mapped = _subgroup_kind(subgroup)
        if mapped is None:
            return Reproduced(explanation=f"no rule maps the published subgroup {subgroup!r} to our data")
        factor_name, name = mapped
        factor = next(f for f in SUBGROUP_FACTORS if f.name == factor_name)
        groups = factor.derive(self.data).astype(str)
        members = self.data[groups.to_numpy() == name]
        member_labels = [lab[s] for s in members[ARM_COLUMNS["study"]].astype(str)]
        sg = self.subgroup_result(factor_name)
        res = None if sg is None else sg.subgroups.get(name)
        how = factor.how
        if res is None:
            why = "no study of ours is in it" if members.empty else f"its studies ({_names(member_labels)}) have no estimable effect"
            return Reproduced(explanation=f"Our '{name}' subgroup is not estimable: {why}. Grouping: {how}.")
        est, lo, hi = (display_value(res, v) for v in (res.estimate, res.ci_low, res.ci_high))
        expl = f"Our '{name}' subgroup {pooled_set_text(res, members)}. Grouping: {how}."
        others = sorted(set(groups) - {name})
        if factor_name == "doses":
            unknown = self.data[groups.to_numpy() == "not reported / variable"]
            if len(unknown):
                expl += f" Dose count not reported or variable (in no dose subgroup): {_names([lab[s] for s in unknown[ARM_COLUMNS['study']].astype(str)])}."
        elif "mixed" in others or "not assigned" in others:
            left = self.data[np.isin(groups.to_numpy(), ["mixed", "not assigned"])]
            if len(left):
                expl += f" Not assigned to severe or critical: {_names([lab[s] for s in left[ARM_COLUMNS['study']].astype(str)])}."
        return Reproduced(est, lo, hi, kind="ratio" if res.is_ratio() else "difference", explanation=expl)

    def heterogeneity_p(self) -> Reproduced:
        r = self.primary
        if r is None or not np.isfinite(r.Q_p):
            return Reproduced(kind="p", explanation="not computable: fewer than two studies pooled")
        return Reproduced(
            p_value=float(r.Q_p), kind="p",
            explanation=(f"Ours: Cochran's Q = {r.Q:.2f} on {int(r.Q_df)} df around the MH estimate (k = {r.k}), "
                         f"I² = {r.I2:.0f}%. Q below its df gives P near 1, typical of few sparse studies."),
        )

    def overall_p(self) -> Reproduced:
        r = self.primary
        if r is None:
            return Reproduced(kind="p", explanation="our primary analysis is not estimable")
        return Reproduced(p_value=float(r.p_value), kind="p", explanation=f"Ours: test for overall effect, z = {r.statistic:.2f}.")

    def count(self, quantity: str) -> Reproduced:

        cmp = study_set_comparison(self.raw, self.scenario).set_index("quantity")
        if quantity not in cmp.index:
            return Reproduced(kind="count", explanation=f"no rule for {quantity!r}")
        value = cmp.loc[quantity, "this_scenario"]
        st = scenario_studies(self.raw, self.scenario)
        sizes = st["n_msc"].fillna(0).astype(int) + st["n_control"].fillna(0).astype(int)
        labels = list(st["label"].astype(str))
        if quantity == "studies":
            expl = f"Our review set (scenario '{self.scenario}'): {_names(labels)}."
        elif quantity == "articles":
            multi = st[st["n_articles"] > 1]
            expl = f"Articles per study from studies.csv (n_articles); studies with more than one article: {_names([f'{r.label} ({int(r.n_articles)})' for r in multi.itertuples()])}."
        elif quantity == "patients":
            expl = "Sum of n MSC + n control over our review set: " + ", ".join(f"{lab} {int(n)}" for lab, n in zip(labels, sizes)) + "."
        elif quantity in ("study_size_min", "study_size_max"):
            i = int(np.argmin(sizes.to_numpy())) if quantity.endswith("min") else int(np.argmax(sizes.to_numpy()))
            expl = f"{'Smallest' if quantity.endswith('min') else 'Largest'} study of our review set: {labels[i]} ({int(sizes.iloc[i])} patients)."
        else:
            expl = f"Studies with comparative deaths in our mortality analysis: {_names(list(labels_of(self.data).values()))}."
        return Reproduced(estimate=float(value) if value is not None and not pd.isna(value) else np.nan, kind="count", explanation=expl)

    def reproduce(self, quantity: str, subgroup: str, measure: str) -> Reproduced:
        q = quantity.lower()
        if q in COUNT_QUANTITIES:
            return self.count(q)
        if q.startswith("records"):
            return Reproduced(kind="count", explanation=(
                "a count of the paper's literature search: this project does not rerun the search, so there is "
                "nothing to reproduce (the PRISMA numbers of stage 01 are taken from the paper)"))
        if "heterogeneity" in q or q in ("q_p", "i2_p"):
            return self.heterogeneity_p()
        if q.endswith("_p") and ("effect" in q or "overall" in q):
            return self.overall_p()
        if (measure or "").upper() in ("OR", "RR", "RD") or q.endswith(("_or", "_rr", "_rd")):
            return self.effect(subgroup)
        return Reproduced(explanation=f"no rule maps the published quantity {quantity!r} to our analyses")


def paper_overall_measure(published: pd.DataFrame) -> str:
    """The effect measure of the paper's overall mortality analysis (``""`` if not published)."""
    rows = published[(published["subgroup"].astype(str).str.lower() == "overall")
                     & published["measure"].astype(str).str.upper().isin(["OR", "RR", "RD"])]
    return str(rows.iloc[0]["measure"]).upper() if len(rows) else ""


def scorecard(published: pd.DataFrame, context: ScorecardContext) -> pd.DataFrame:
    """The reproduction scorecard (columns :data:`SCORECARD_COLUMNS`), one row per published row.

    Effect rows are compared only when the published measure equals our measure (an OR
    is not compared with our RR); otherwise the row says so. The same holds for the P
    values of the paper's overall analysis (heterogeneity, overall effect): they belong to
    its odds-ratio analysis (:func:`paper_overall_measure`) and are not compared with the
    P values of an RR or RD analysis.
    """
    rows = []
    our_measure = context.options.measure
    paper_measure = paper_overall_measure(published)
    for rec in published.itertuples(index=False):
        raw_measure = getattr(rec, "measure", "")
        measure = "" if pd.isna(raw_measure) else str(raw_measure).upper()
        rep = context.reproduce(str(rec.quantity), str(rec.subgroup), measure)
        if measure in ("OR", "RR", "RD") and measure != our_measure and rep.kind in ("ratio", "difference"):
            rep = Reproduced(explanation=f"published as {measure}; this run pools {our_measure} (set measure={measure} to compare)")
        elif rep.kind == "p" and paper_measure and paper_measure != our_measure:
            rep = Reproduced(kind="p", explanation=(
                f"the published P value belongs to the paper's {paper_measure} analysis; this run pools {our_measure} "
                f"(set measure={paper_measure} to compare)"))
        pub = {f: getattr(rec, f) for f in ("estimate", "ci_low", "ci_high", "p_value")}
        dec = {f: getattr(rec, f"{f}_decimals") for f in ("estimate", "ci_low", "ci_high", "p_value")}
        ours = {"estimate": rep.estimate, "ci_low": rep.ci_low, "ci_high": rep.ci_high, "p_value": rep.p_value}
        if rep.kind == "p":
            fields = ("p_value",)
        elif rep.kind == "count":
            fields = ("estimate",)
        else:
            fields = ("estimate", "ci_low", "ci_high")
        pairs = [(ours[f], pub[f], dec[f]) for f in fields]
        st = status(rep.kind, pairs)
        diff = (ours["estimate"] - pub["estimate"]) if rep.kind != "p" else (ours["p_value"] - pub["p_value"])
        log_ratio = (math.log(ours["estimate"] / pub["estimate"])
                     if rep.kind == "ratio" and np.isfinite(ours["estimate"]) and np.isfinite(pub["estimate"]) and ours["estimate"] > 0 and pub["estimate"] > 0
                     else np.nan)
        rows.append({
            "quantity": rec.quantity, "subgroup": rec.subgroup, "measure": measure,
            "published_estimate": pub["estimate"], "published_ci_low": pub["ci_low"], "published_ci_high": pub["ci_high"],
            "published_p_value": pub["p_value"],
            "reproduced_estimate": ours["estimate"], "reproduced_ci_low": ours["ci_low"], "reproduced_ci_high": ours["ci_high"],
            "reproduced_p_value": ours["p_value"],
            "difference": diff if np.isfinite(diff) else np.nan, "log_ratio": log_ratio, "status": st,
            "explanation": rep.explanation,
        })
    return pd.DataFrame(rows, columns=list(SCORECARD_COLUMNS))


def summary_sentence(card: pd.DataFrame) -> str:
    """How the published effect estimates compare with ours overall (direction and size)."""
    eff = card[np.isfinite(card["log_ratio"].astype(float))]
    if eff.empty:
        return ""
    lower = int((eff["log_ratio"] < 0).sum())
    ratio = float(np.exp(np.median(eff["log_ratio"].astype(float))))
    statuses = eff["status"].value_counts()
    return (
        f"Of the {len(eff)} published effect estimates we could compare, {int(statuses.get('match', 0))} match, "
        f"{int(statuses.get('close', 0))} are close and {int(statuses.get('differs', 0))} differ; ours is "
        f"{'lower (a larger apparent benefit)' if lower > len(eff) / 2 else 'higher'} in {max(lower, len(eff) - lower)} "
        f"of {len(eff)}, by a median factor of {ratio:.2f} (ours / published)."
    )


def tally_markdown(card: pd.DataFrame) -> str:
    """The summary sentence and the status tally of the scorecard (the table is shown beside it)."""
    tally = card["status"].value_counts()
    order = ("match", "close", "differs", "not computed")
    lines = [summary_sentence(card), ""] if summary_sentence(card) else []
    lines.append("Status tally: " + ", ".join(f"**{int(tally.get(s, 0))} {s}**" for s in order)
                 + f" (of {len(card)} published quantities).")
    return "\n".join(lines) + "\n"


def scorecard_markdown(card: pd.DataFrame) -> str:
    """A compact Markdown rendering of the scorecard plus a one-line tally."""
    def fmt(v, d=2):
        return "" if v is None or not np.isfinite(v) else (f"{v:.{d}f}" if not float(v).is_integer() or d == 3 else f"{int(v)}")

    def cell(est, lo, hi, p):
        if np.isfinite(est) and np.isfinite(lo) and np.isfinite(hi):
            return f"{est:.2f} [{lo:.2f}, {hi:.2f}]"
        if np.isfinite(est):
            return fmt(est)
        if np.isfinite(p):
            return f"P = {p:.3f}"
        return "—"

    tally = card["status"].value_counts()
    order = ("match", "close", "differs", "not computed")
    lines = [summary_sentence(card), ""] if summary_sentence(card) else []
    lines += [
        "Status tally: " + ", ".join(f"**{int(tally.get(s, 0))} {s}**" for s in order) + f" (of {len(card)} published quantities).",
        "",
        "| quantity | subgroup | published | ours | status |",
        "|---|---|---|---|---|",
    ]
    for r in card.itertuples(index=False):
        pub = cell(r.published_estimate, r.published_ci_low, r.published_ci_high, r.published_p_value)
        ours = cell(r.reproduced_estimate, r.reproduced_ci_low, r.reproduced_ci_high, r.reproduced_p_value)
        lines.append(f"| {r.quantity} | {r.subgroup} | {pub} | {ours} | {r.status} |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------
# What would it take?
# ---------------------------------------------------------------------------

WHAT_COLUMNS = (
    "step", "kind", "change", "studies", "k", "estimate", "ci_low", "ci_high", "Q_p", "distance", "distance_change",
    "toward_published", "status_vs_published",
)


def log_distance(est: float, lo: float, hi: float, pub: tuple[float, float, float]) -> float:
    """Root-mean-square difference of (estimate, CI limits) on the log scale from *pub*.

    Captures both the location and the width of the interval; 0 means identical.
    """
    vals = (est, lo, hi)
    if not all(np.isfinite(v) and v > 0 for v in vals):
        return np.nan
    return float(np.sqrt(np.mean([(math.log(o) - math.log(p)) ** 2 for o, p in zip(vals, pub, strict=True)])))


def candidate_rows(raw: RawData) -> pd.DataFrame:
    """Every mortality reading of every candidate study (``mortality.csv``) with its label."""
    m = raw.mortality.merge(raw.studies[["study_id", "label"]], on="study_id", how="left", validate="many_to_one")
    m["label"] = m["label"].fillna(m["study_id"])
    return m.sort_values(["study_id", "row_id"], kind="mergesort").reset_index(drop=True)


def _describe_row(r) -> str:
    return f"{int(r.events_msc)}/{int(r.n_msc)} vs {int(r.events_control)}/{int(r.n_control)}, {r.timepoint}, {r.source_level}"


def _pool_rows(rows: pd.DataFrame, options: BinaryOptions) -> MetaResult | None:
    """Pool mortality.csv rows (our column names) with the analysis options; ``None`` if not estimable."""
    d = rows[["study_id", "events_msc", "n_msc", "events_control", "n_control"]].reset_index(drop=True)
    return try_pool(d, options)


def _published_target(published: pd.DataFrame | None, measure: str) -> tuple[tuple, tuple] | str:
    """The published overall estimate and CI (with their printed decimals), or why there is none."""
    if published is None:
        return "No published_results.csv: nothing to aim at.\n"
    rows = published[(published["subgroup"].astype(str).str.lower() == "overall")
                     & (published["measure"].astype(str).str.upper() == measure)
                     & published["ci_low"].notna()]
    if rows.empty:
        return f"No published overall {measure} with a confidence interval in published_results.csv: nothing to aim at.\n"
    p = rows.iloc[0]
    target = (float(p["estimate"]), float(p["ci_low"]), float(p["ci_high"]))
    return target, (p["estimate_decimals"], p["ci_low_decimals"], p["ci_high_decimals"])


class _Search:
    """The candidate readings, the target and how to score a selection (study -> mortality row)."""

    def __init__(self, raw: RawData, options: BinaryOptions, target: tuple, decimals: tuple):
        self.cands = candidate_rows(raw)
        self.labels = study_labels(raw.studies)
        self.by_row = self.cands.set_index("row_id")
        self.options, self.target, self.decimals = options, target, decimals

    def evaluate(self, selection: Mapping[str, str]):
        rows = self.by_row.loc[sorted(selection.values())].reset_index()
        res = _pool_rows(rows, self.options)
        if res is None:
            return None, (np.nan, np.nan, np.nan), np.nan
        vals = tuple(display_value(res, v) for v in (res.estimate, res.ci_low, res.ci_high))
        return res, vals, log_distance(*vals, self.target)

    def record(self, step, kind, change, selection, res, vals, dist, base_dist) -> dict:
        pairs = [(o, t, d) for o, t, d in zip(vals, self.target, self.decimals, strict=True)]
        return {
            "step": step, "kind": kind, "change": change,
            "studies": "; ".join(f"{s}:{selection[s]}" for s in sorted(selection)),
            "k": int(res.k) if res is not None else 0, "estimate": vals[0], "ci_low": vals[1], "ci_high": vals[2],
            "Q_p": float(res.Q_p) if res is not None else np.nan, "distance": dist,
            "distance_change": dist - base_dist if np.isfinite(dist) and np.isfinite(base_dist) else np.nan,
            "toward_published": bool(np.isfinite(dist) and np.isfinite(base_dist) and dist < base_dist - 1e-12),
            "status_vs_published": status("ratio", pairs) if res is not None else "not computed",
        }

    def single_changes(self, selection: Mapping[str, str], touched: set[str]) -> list[tuple]:
        """Every drop, swap (another reading) and add (a candidate with deaths) of one study."""
        cands, lab, out = self.cands, self.labels, []
        for sid in sorted(selection):
            if sid in touched:
                continue
            out.append(("drop", f"drop {lab.get(sid, sid)}", sid, {k: v for k, v in selection.items() if k != sid}))
            for alt in cands[(cands["study_id"] == sid) & (cands["row_id"] != selection[sid])].itertuples(index=False):
                out.append(("swap", f"use {lab.get(sid, sid)} {_describe_row(alt)} ({alt.row_id})", sid, {**selection, sid: alt.row_id}))
        for sid in sorted(set(cands["study_id"]) - set(selection) - touched):
            for alt in cands[cands["study_id"] == sid].itertuples(index=False):
                out.append(("add", f"add {lab.get(sid, sid)} {_describe_row(alt)} ({alt.row_id})", sid, {**selection, sid: alt.row_id}))
        return out

    def greedy(self, start: Mapping[str, str], d0: float, max_steps: int) -> list[dict]:
        """Apply, one at a time, the single change that reduces the distance most."""
        selection, touched, dist_now, rows = dict(start), set(), d0, []
        for step in range(1, max_steps + 1):
            best = None
            for kind, change, sid, sel in self.single_changes(selection, touched):
                res, vals, dist = self.evaluate(sel)
                if np.isfinite(dist) and dist < dist_now - 1e-9 and (best is None or (dist, change) < (best[0], best[1])):
                    best = (dist, change, sid, sel, res, vals, kind)
            if best is None:
                break
            dist, change, sid, sel, res, vals, kind = best
            rows.append(self.record(step, "greedy", f"{kind}: {change}", sel, res, vals, dist, d0))
            selection, dist_now = sel, dist
            touched.add(sid)
        return rows


def what_would_it_take(
    raw: RawData, scenario: str, options: BinaryOptions, published: pd.DataFrame | None, max_steps: int = 6
) -> tuple[pd.DataFrame, str]:
    """Which plausible changes to the included set move the pooled estimate toward the published one.

    Starting from the rows of *scenario*, every single change is tried: drop an included
    study, swap an included study's counts for another reading of it in
    ``mortality.csv``, add a candidate study that has comparative death counts, and
    replace the whole set by another inclusion scenario. Each result's distance to the
    published overall estimate is :func:`log_distance`. A greedy search then applies, one
    at a time, the single change that reduces the distance most (each study changed at
    most once) until no change helps or *max_steps* is reached.

    Returns
    -------
    table : DataFrame
        Columns :data:`WHAT_COLUMNS`; step 0 = our set, ``kind`` = baseline / drop / swap /
        add / scenario / greedy.
    findings : str
        Markdown findings with numbers from the table.
    """
    measure = options.measure
    found = _published_target(published, measure)
    if isinstance(found, str):
        return pd.DataFrame(columns=list(WHAT_COLUMNS)), found
    search = _Search(raw, options, *found)
    current = {r.study_id: r.row_id for r in analysis_mortality(raw, scenario).itertuples(index=False)}
    res0, vals0, d0 = search.evaluate(current)
    rows = [search.record(0, "baseline", f"our set (scenario '{scenario}')", current, res0, vals0, d0, d0)]
    for kind, change, _sid, sel in search.single_changes(current, set()):
        rows.append(search.record(1, kind, change, sel, *search.evaluate(sel), d0))
    for sc in scenarios(raw):
        if sc != scenario:
            sel = {r.study_id: r.row_id for r in analysis_mortality(raw, sc).itertuples(index=False)}
            rows.append(search.record(1, "scenario", f"scenario '{sc}'", sel, *search.evaluate(sel), d0))
    rows += search.greedy(current, d0, max_steps)
    table = pd.DataFrame(rows, columns=list(WHAT_COLUMNS))
    return table, _findings(table, found[0], res0, vals0, d0, measure)


def _findings(table: pd.DataFrame, target, res0, vals0, d0, measure: str) -> str:
    pub = _fmt_ratio(*target)
    singles = table[(table["step"] == 1) & table["kind"].isin(["drop", "swap", "add"])]
    toward = singles[singles["toward_published"]]
    lines = [f"- Target: the published overall {measure} {pub}. Ours: {_fmt_ratio(*vals0)} (distance {d0:.3f} on the log scale, "
             "root-mean-square over the estimate and both confidence limits)."]
    if res0 is not None and all(np.isfinite(v) and v > 0 for v in vals0):
        w_ours = math.log(vals0[2]) - math.log(vals0[1])
        w_pub = math.log(target[2]) - math.log(target[1])
        lines.append(
            f"- Precision: the published CI is {w_pub:.2f} wide on the log scale, ours {w_ours:.2f}; matching it would take "
            f"about {(w_ours / w_pub) ** 2:.1f} times the statistical information of our set (information ∝ 1/SE²), "
            "i.e. more deaths in total, not only a different point estimate."
        )
    lines.append(f"- {len(toward)} of {len(singles)} single changes (drop, swap to another reading, add a candidate) move the result toward the published one.")
    if len(toward):
        best = toward.sort_values(["distance", "change"], kind="mergesort").head(3)
        for r in best.itertuples(index=False):
            lines.append(f"  - {r.change}: {_fmt_ratio(r.estimate, r.ci_low, r.ci_high)} (distance {r.distance:.3f}, {r.status_vs_published}).")
    scen = table[table["kind"] == "scenario"].sort_values("distance", kind="mergesort")
    if len(scen):
        r = scen.iloc[0]
        lines.append(f"- Closest inclusion scenario: {r.change}: {_fmt_ratio(r.estimate, r.ci_low, r.ci_high)} (distance {r.distance:.3f}, {r.status_vs_published}).")
    greedy = table[table["kind"] == "greedy"]
    if len(greedy):
        last = greedy.iloc[-1]
        steps = "; ".join(greedy["change"])
        lines.append(
            f"- Greedy combination of {len(greedy)} change(s) ({steps}) reaches {_fmt_ratio(last.estimate, last.ci_low, last.ci_high)} "
            f"(distance {last.distance:.3f}, {last.status_vs_published}); no further single change brings it closer."
        )
    else:
        lines.append("- No single change brings the result closer to the published one.")
    reached = table[table["status_vs_published"].isin(["match", "close"]) & (table["step"] >= 1)]
    if reached.empty:
        lines.append("- No set tried here reproduces the published estimate and CI even approximately (status 'close' or "
                     "better): reaching them would take studies or counts that are not among the candidates and readings "
                     "in mortality.csv.")
    lines.append("- These are findings about the data, not analyses to adopt: every change above is a reading or an "
                 "inclusion the project did not choose on its merits.")
    return "\n".join(lines) + "\n"


def explanations_markdown(card: pd.DataFrame) -> str:
    """One bullet per published quantity: status and the generated explanation."""
    lines = [f"- **{QUANTITY_NAMES.get(r.quantity, r.quantity)} ({r.subgroup})** — {r.status}. {r.explanation}"
             for r in card.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def scorecard_for(inputs: StageInputs, results: Mapping[str, MetaResult | None], options: BinaryOptions) -> pd.DataFrame:
    """The scorecard of a pooling stage (:class:`mscmeta.review.inputs.StageInputs`, its results).

    An empty scorecard (with a note row) when ``published_results.csv`` is absent.
    """
    if inputs.published is None:
        return pd.DataFrame([{"quantity": "published_results.csv", "status": "not computed",
                              "explanation": "no published values in the data folder"}], columns=list(SCORECARD_COLUMNS))
    context = ScorecardContext(inputs.raw, inputs.scenario, inputs.data, results.get("primary"), options, results,
                               source=inputs.source)
    return scorecard(inputs.published, context)


def rule_markdown() -> str:
    """The status rule in words, with the thresholds of this module."""
    return (
        "*Status rule.* **match**: ours rounds to the published value at the published number of decimals, for the "
        "estimate and both confidence limits (or the P value, or the count). **close**: otherwise within "
        f"{CLOSE_LOG:g} on the natural-log scale for every ratio (about ±{100 * (math.exp(CLOSE_LOG) - 1):.0f}%), within "
        f"{CLOSE_P:g} for a P value (and on the same side of 0.05), within {100 * CLOSE_COUNT:.0f}% for a count. "
        "**differs**: anything else. **not computed**: we have no value to compare.\n"
    )


# ---------------------------------------------------------------------------
# The headline of the front page
# ---------------------------------------------------------------------------

#: Names of the effect measures in prose.
MEASURE_NAMES = {"OR": "odds ratio", "RR": "risk ratio", "RD": "risk difference"}

HEADLINE_COLUMNS = (
    "scenario", "measure", "measure_name", "analysis", "k", "studies_in_table", "events_msc", "n_msc",
    "events_control", "n_control", "estimate", "ci_low", "ci_high", "p_value", "published_measure",
    "published_measure_name", "published_estimate", "published_ci_low", "published_ci_high", "published_source",
    "published_url", "published_caveat", "status", "verdict", "why",
)


def _published_overall(published: pd.DataFrame | None) -> pd.Series | None:
    if published is None:
        return None
    rows = published[(published["subgroup"].astype(str).str.lower() == "overall")
                     & published["measure"].astype(str).str.upper().isin(["OR", "RR", "RD"])]
    return rows.iloc[0] if len(rows) else None


def _distance_sentence(wwit: pd.DataFrame) -> str:
    """What the search over other study sets and readings found (from ``what_would_it_take.csv``)."""
    singles = wwit[(wwit["step"] == 1) & wwit["kind"].isin(["drop", "swap", "add"])]
    if singles.empty:
        return ""
    toward = int(singles["toward_published"].astype(bool).sum())
    tried = wwit[wwit["step"] >= 1]
    reached = tried[tried["status_vs_published"].isin(["match", "close"])]
    best = tried.sort_values(["distance", "change"], kind="mergesort").iloc[0]
    if best["kind"] == "greedy":
        steps = wwit[(wwit["kind"] == "greedy") & (wwit["step"] <= best["step"])]["change"]
        what = f"a combination of {len(steps)} changes ({'; '.join(steps)})"
    else:
        what = str(best["change"])
    text = (f"Of {len(singles)} single changes to our set (dropping a study, another reading of its deaths, adding a "
            f"candidate), {toward} move the result toward the published one; the closest set tried, {what}, gives "
            f"{_fmt_ratio(best['estimate'], best['ci_low'], best['ci_high'])} (status '{best['status_vs_published']}'). "
            "These are findings about the data, not analyses to adopt.")
    if reached.empty:
        text += (" No set tried reproduces the published estimate and interval even approximately: that would take "
                 "studies or counts that are not among the candidates and readings the sources give.")
    return text


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def why_they_differ(ours: pd.Series, pub: pd.Series | None, status_: str, wwit: pd.DataFrame, set_text: str) -> str:
    """One paragraph on why our primary result and the published one differ, from the run's tables."""
    if pub is None:
        return "The published overall result is not in published_results.csv, so there is nothing to compare."
    pm = str(pub["measure"]).upper()
    if ours["measure"] != pm:
        theirs, mine = MEASURE_NAMES.get(pm, pm), MEASURE_NAMES.get(ours["measure"], ours["measure"])
        return (f"The paper pooled {_article(theirs)} {theirs}; this run pools {_article(mine)} {mine}, so the two are "
                f"not compared (run with measure={pm} to compare).")
    if not np.isfinite(ours["estimate"]):
        return "Our primary analysis is not estimable in this scenario."
    lower = ours["estimate"] < pub["estimate"]
    parts = [
        f"Ours is {'lower' if lower else 'higher'} than the published estimate "
        f"({'a larger' if lower == (pm != 'RD') else 'a smaller'} apparent benefit; ratio of the two "
        f"{ours['estimate'] / pub['estimate']:.2f}), status '{status_}'." if pm != "RD" else
        f"Ours differs from the published estimate by {ours['estimate'] - pub['estimate']:.2f}, status '{status_}'.",
        "The paper's study list, per-study counts and forest plots could not be read, so its set cannot be matched "
        "study by study: we rebuilt the counts from the primary reports.",
        set_text,
        _distance_sentence(wwit),
    ]
    return " ".join(p for p in parts if p)


def headline_table(card: pd.DataFrame, pooled: pd.DataFrame, wwit: pd.DataFrame, published: pd.DataFrame | None,
                   context_text: str = "") -> pd.DataFrame:
    """``headline.csv``: the primary result beside the published one, for the front page.

    Parameters
    ----------
    card : DataFrame
        The reproduction scorecard (:func:`scorecard_for`).
    pooled : DataFrame
        ``pooled_mortality.csv`` (first row: the primary analysis).
    wwit : DataFrame
        ``what_would_it_take.csv``.
    published : DataFrame or None
        ``published_results.csv`` (the published values and their source).
    context_text : str
        A sentence on our set (e.g. :meth:`ScorecardContext.set_size_text`).
    """
    ours = pooled.iloc[0]
    pub = _published_overall(published)
    row = card[(card["subgroup"].astype(str).str.lower() == "overall")
               & card["measure"].astype(str).str.upper().isin(["OR", "RR", "RD"])]
    status_ = str(row.iloc[0]["status"]) if len(row) else "not computed"
    comparable = pub is not None and str(pub["measure"]).upper() == ours["measure"]
    verdict = ("Not compared:" if not comparable else
               {"match": "Our result reproduces the published one.", "close": "Our result is close to the published one.",
                "differs": "Our result disagrees with the published one."}.get(status_, "Not compared:"))
    source = "" if pub is None else str(pub["source"])
    out = {
        **{c: ours[c] for c in ("scenario", "measure", "k", "studies_in_table", "events_msc", "n_msc", "events_control",
                                "n_control", "estimate", "ci_low", "ci_high", "p_value")},
        "measure_name": MEASURE_NAMES.get(ours["measure"], ours["measure"]), "analysis": ours["description"],
        "published_measure": "" if pub is None else str(pub["measure"]).upper(),
        "published_measure_name": "" if pub is None else MEASURE_NAMES.get(str(pub["measure"]).upper(), ""),
        "published_estimate": np.nan if pub is None else pub["estimate"],
        "published_ci_low": np.nan if pub is None else pub["ci_low"],
        "published_ci_high": np.nan if pub is None else pub["ci_high"],
        "published_source": source, "published_url": "" if pub is None else str(pub["source_url"]),
        "published_caveat": "" if pub is None or str(pub.get("quote_status", "")) == "verbatim" else (
            "the passage giving these numbers was not located in that summary; they await confirmation against "
            "the paper's abstract and forest plots"),
        "status": status_, "verdict": verdict,
        "why": why_they_differ(ours, pub, status_, wwit, context_text),
    }
    return pd.DataFrame([out], columns=list(HEADLINE_COLUMNS))


def set_text_for(inputs: StageInputs, result: MetaResult | None, options: BinaryOptions) -> str:
    """The sentence on our review set and pooled studies used in the headline."""
    context = ScorecardContext(inputs.raw, inputs.scenario, inputs.data, result, options, source=inputs.source)
    text = context.set_size_text()
    dq = data_quality_text(inputs.data)
    return text + (f" {dq[0].upper()}{dq[1:]}." if dq else "")
