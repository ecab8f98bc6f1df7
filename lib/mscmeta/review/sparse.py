"""Models for sparse data (notebook 03): the mortality odds ratio under every model made for
few events, the fragility index of the primary result, and their prose.

Deaths are few and several studies have none in one or both arms, so the pooled odds ratio
depends on how zero cells are handled. :func:`sparse_models` pools the same studies with

* Mantel-Haenszel with RevMan's 0.5 correction (the primary convention) and without any
  correction (metafor ``rma.mh``), and Peto's method;
* the binomial-normal GLMMs of metafor ``rma.glmm`` -- ``UM.FS`` (fixed study effects),
  ``UM.RS`` (random study effects), ``CM.AL`` (conditional model, binomial approximation) --
  and the exact conditional model ``CM.EL`` (Fisher's non-central hypergeometric
  likelihood; Stijnen, Hamza & Ozdemir 2010), none of which adds anything to zero cells;
* the Bayesian normal-normal model with two priors on the heterogeneity tau: half-normal
  (scale 0.5, weakly informative; Röver et al. 2021) and Turner et al. (2015)'s empirical
  log-normal prior for all-cause mortality, pharmacological vs control;

always on the odds-ratio scale (the GLMMs pool odds ratios), one tidy row each
(``sparse_models_mortality.csv``). :func:`fragility_table` lists the event changes that
flip the significance of the primary result (Atal et al. 2019; ``fragility_mortality.csv``).

References
----------
Stijnen T, Hamza TH, Ozdemir P (2010). Stat Med 29:3046-3067.
Jackson D, Law M, Stijnen T, Viechtbauer W, White IR (2018). Stat Med 37:1059-1085.
Röver C (2020). J Stat Softw 93(6). Röver C, et al. (2021). Res Synth Methods 12:448-474.
Turner RM, et al. (2015). Stat Med 34:984-998.
Sweeting MJ, Sutton AJ, Lambert PC (2004). Stat Med 23:1351-1375.
Atal I, Porcher R, Boutron I, Ravaud P (2019). J Clin Epidemiol 111:32-40.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from mscmeta.engine.bayes import meta_bayes
from mscmeta.engine.binary import meta_binary
from mscmeta.engine.fragility import FragilityResult, fragility_of
from mscmeta.engine.glmm import meta_glmm
from mscmeta.engine.options import BinaryOptions
from mscmeta.engine.results import MetaResult
from mscmeta.engine.validation import DataError
from mscmeta.review.mortality import ARM_COLUMNS, labels_of
from mscmeta.review.text import fmt_ci

#: Columns of ``sparse_models_mortality.csv``.
SPARSE_COLUMNS = (
    "model", "family", "group", "description", "measure", "k", "estimate", "ci_low", "ci_high", "interval",
    "p_value", "tau2", "prob_or_below_1", "prob_or_below_0_8", "fragility_index", "note",
)
#: Columns of ``fragility_mortality.csv``.
FRAGILITY_COLUMNS = (
    "analysis", "fragility_index", "direction", "step", "study_id", "label", "arm", "change", "events_before",
    "events_after", "estimate", "ci_low", "ci_high", "note",
)

#: Model names of the two MH rows; the fragility index goes on the row of the analysis it is computed for.
MH_REVMAN, MH_NONE = "MH, RevMan 0.5 correction", "MH, no correction"

_TAU_PRIORS = (("half-normal(0.5)", "halfnormal:0.5", "weakly informative half-normal prior on τ, scale 0.5"),
               ("Turner mortality", "turner-mortality",
                "Turner et al. (2015) log-normal prior for all-cause mortality, pharmacological vs control"))
_GLMMS = (("UM.FS", "GLMM", "unconditional model, fixed study effects (metafor rma.glmm default)"),
          ("UM.RS", "GLMM", "unconditional model, random study effects (Laplace)"),
          ("CM.AL", "GLMM", "conditional model, binomial approximation to the likelihood"),
          ("CM.EL", "exact conditional", "conditional model, exact (non-central hypergeometric) likelihood"))


def _row(model: str, family: str, description: str, fit: Callable[[], object]) -> dict:
    """One table row from a fit of any family; "not estimable" with the reason when it fails."""
    row = {"model": model, "family": family, "group": "comparator", "description": description, "measure": "OR"}
    try:
        res = fit()
    except DataError as err:
        return {**row, "k": 0, "note": f"not estimable: {' '.join(str(err).split())}"}
    d = res.to_dict()
    row.update(k=d["k"], estimate=d["estimate"], ci_low=d["ci_low"], ci_high=d["ci_high"],
               interval="95% CI" if family != "Bayesian" else "95% CrI (central)", p_value=d["p_value"],
               tau2=d["tau2"] if d["model"] == "random" else np.nan, note="")
    if family == "Bayesian":
        row.update(prob_or_below_1=d["prob_below_1"], prob_or_below_0_8=d["prob_below_0_8"])
    return row


def _mh_options(options: BinaryOptions, zero_cell: str) -> BinaryOptions:
    return BinaryOptions(measure="OR", method="MH", model="fixed", zero_cell=zero_cell, level=options.level)


def sparse_models(data: pd.DataFrame, options: BinaryOptions, source: str | None = None,
                  fragility: FragilityResult | None = None, fragility_analysis: str = MH_REVMAN) -> pd.DataFrame:
    """``sparse_models_mortality.csv``: the pooled OR under each model for sparse data.

    Rows: MH with RevMan's correction (the primary convention; ``group="primary"``), MH
    without correction, Peto, the four GLMMs (CM.EL labelled "exact conditional") and the
    Bayesian model with two priors on tau. ``estimate``/``ci_*`` on the OR scale (95%
    confidence or central credible interval), ``tau2`` the between-study variance (ML for
    the GLMMs, posterior median for the Bayesian rows), ``prob_or_below_*`` the posterior
    probabilities of OR < 1 and OR < 0.8, ``fragility_index`` (of *fragility*) on the row named
    *fragility_analysis* (the name :func:`primary_fragility` returns; no row when it names
    another measure).
    """
    cols = ARM_COLUMNS
    mh = [(MH_REVMAN, "Mantel-Haenszel", "Mantel-Haenszel fixed effect, 0.5 added to the cells of "
           "zero-cell studies, also inside MH (RevMan 5)", _mh_options(options, "revman")),
          (MH_NONE, "Mantel-Haenszel", "Mantel-Haenszel fixed effect without continuity correction "
           "(metafor rma.mh)", _mh_options(options, "none")),
          ("Peto", "Peto", "Peto's one-step odds ratio (no correction)", _mh_options(options, "revman").replace(
              method="Peto"))]
    rows = [_row(name, fam, desc, lambda o=o: meta_binary(data, columns=cols, source=source, options=o))
            for name, fam, desc, o in mh]
    rows += [_row(f"GLMM {m}" if fam == "GLMM" else f"exact conditional ({m})", fam, desc,
                  lambda m=m: meta_glmm(data, model=m, columns=cols, source=source)) for m, fam, desc in _GLMMS]
    rows += [_row(f"Bayesian, {name}", "Bayesian", desc,
                  lambda p=prior: meta_bayes(data, tau_prior=p, columns=cols, source=source))
             for name, prior, desc in _TAU_PRIORS]
    rows[0]["group"] = "primary"
    for row in rows:
        if fragility is not None and row["model"] == fragility_analysis:
            row["fragility_index"] = np.nan if fragility.fragility_index is None else fragility.fragility_index
    out = pd.DataFrame(rows)
    for c in SPARSE_COLUMNS:
        if c not in out.columns:
            out[c] = np.nan
    out["note"] = out["note"].fillna("")
    return out.loc[:, list(SPARSE_COLUMNS)]


def primary_fragility(data: pd.DataFrame, primary: MetaResult | None, source: str | None = None
                      ) -> tuple[str, FragilityResult | None, str]:
    """The fragility index of the primary result when it is a fixed-effect MH OR/RR under the
    RevMan or metafor convention, else of the MH OR with RevMan's convention (said in the note).

    Returns the analysis's name (for an odds ratio the model name of its row in
    :func:`sparse_models`), the result (``None`` when it cannot be computed) and a note.
    """
    note = ""
    target = primary
    if primary is None or primary.method != "MH" or primary.model != "fixed" or primary.measure not in ("OR", "RR") \
            or primary.zero_cell not in ("revman", "none"):
        target = meta_binary(data, columns=ARM_COLUMNS, source=source)
        note = "computed for the Mantel-Haenszel OR (RevMan convention), not the primary analysis's model"
    name = MH_REVMAN if target.zero_cell == "revman" else MH_NONE
    if target.measure != "OR":
        name = f"{name} ({target.measure})"
    try:
        return name, fragility_of(target), note
    except DataError as err:
        return name, None, f"not computable: {' '.join(str(err).split())}"


def fragility_table(data: pd.DataFrame, name: str, res: FragilityResult | None, note: str = "") -> pd.DataFrame:
    """``fragility_mortality.csv``: one row per event-status change (ratio scale after each step)."""
    if res is None or not res.modifications:
        fi = np.nan if res is None or res.fragility_index is None else res.fragility_index
        row = {"analysis": name, "fragility_index": fi, "direction": "" if res is None else res.direction,
               "note": note or "significance cannot be altered"}
        return pd.DataFrame([row]).reindex(columns=list(FRAGILITY_COLUMNS))
    labels = labels_of(data)
    rows = [{"analysis": name, "fragility_index": res.fragility_index, "direction": res.direction, "step": m.step,
             "study_id": m.study, "label": labels.get(m.study, m.study), "arm": "MSC" if m.arm == "treatment" else "control",
             "change": m.change, "events_before": m.events_after - m.change, "events_after": m.events_after,
             "estimate": float(np.exp(m.log_estimate)), "ci_low": float(np.exp(m.ci_low)),
             "ci_high": float(np.exp(m.ci_high)), "note": note} for m in res.modifications]
    return pd.DataFrame(rows).loc[:, list(FRAGILITY_COLUMNS)]


def sparse_models_caption(table: pd.DataFrame) -> str:
    """Caption of :func:`mscmeta.plots.intervals.model_comparison_plot` for *table*."""
    return (f"Pooled mortality odds ratio, MSC vs control, under {len(table)} models for sparse data (log scale): "
            "each row is a model's estimate with its 95% interval (confidence interval; central credible interval for "
            "the Bayesian rows), k studies; circles Mantel-Haenszel and Peto, squares the GLMMs and the exact "
            "conditional model, triangles the Bayesian model; the diamond and the shaded band are MH with RevMan's "
            "0.5 correction, the primary convention; left of 1 means fewer deaths with MSC.")


def _range_text(rows: pd.DataFrame) -> str:
    lo, hi = rows.loc[rows["estimate"].idxmin()], rows.loc[rows["estimate"].idxmax()]
    return f"{lo['estimate']:.2f} ({lo['model']}) to {hi['estimate']:.2f} ({hi['model']})"


def _spread_sentences(table: pd.DataFrame) -> list[str]:
    ok = table[np.isfinite(table["estimate"].astype(float))]
    excl = ok[(ok["ci_high"] < 1) | (ok["ci_low"] > 1)]
    both = "every interval excludes 1" if len(excl) == len(ok) else (
        f"{len(excl)} of {len(ok)} intervals exclude 1 ({', '.join(ok.loc[~ok.index.isin(excl.index), 'model'])} "
        "do not)")
    out = [f"Across the {len(ok)} models the pooled odds ratio ranges from {_range_text(ok)}; {both}."]
    revman = table[table["model"] == MH_REVMAN]
    primary = revman.iloc[0] if len(revman) else table.iloc[0]
    uncorrected = ok[ok["model"].isin([MH_NONE, "GLMM UM.FS", "GLMM UM.RS", "exact conditional (CM.EL)"])]
    if len(revman) and len(uncorrected) and np.isfinite(primary["estimate"]):
        further = (uncorrected["estimate"] < primary["estimate"]).all() if primary["estimate"] < 1 else \
            (uncorrected["estimate"] > primary["estimate"]).all()
        lo, hi = f"{uncorrected['estimate'].min():.2f}", f"{uncorrected['estimate'].max():.2f}"
        rng = lo if lo == hi else f"{lo} to {hi}"
        out.append(
            f"The models that add nothing to zero cells (MH without correction, the unconditional GLMMs and the exact "
            f"conditional model) give odds ratios of {rng}, "
            + ("further from 1 than" if further else "not uniformly further from 1 than")
            + f" RevMan's MH with the 0.5 correction ({primary['estimate']:.2f}); adding 0.5 to the cells of "
            "zero-cell studies pulls their odds ratios, and so the pooled one, towards 1 (Sweeting et al. 2004).")
    return out


def _cm_al_sentence(table: pd.DataFrame, data: pd.DataFrame) -> list[str]:
    al = table[table["model"] == "GLMM CM.AL"]
    if al.empty or not np.isfinite(al.iloc[0]["estimate"]):
        return []
    risk = (data[ARM_COLUMNS["events_t"]] + data[ARM_COLUMNS["events_c"]]) / (data[ARM_COLUMNS["n_t"]] +
                                                                              data[ARM_COLUMNS["n_c"]])
    labels = labels_of(data)
    common = [labels.get(s, s) for s in data.loc[risk >= 0.2, ARM_COLUMNS["study"]].astype(str)]
    if not common:
        return []
    return [f"CM.AL ({al.iloc[0]['estimate']:.2f}) approximates the exact conditional likelihood by a binomial one, "
            "which holds when events are rare relative to the arm sizes (Stijnen et al. 2010); in "
            f"{len(common)} of the {len(data)} studies ({', '.join(common)}) at least 20% of patients died, so its "
            "estimate is the least trustworthy here; the exact conditional model CM.EL does not make that "
            "approximation."]


def _bayes_and_tau_sentences(table: pd.DataFrame) -> list[str]:
    out = []
    bayes = table[(table["family"] == "Bayesian") & np.isfinite(table["estimate"].astype(float))]
    if len(bayes):
        probs = "; ".join(f"{r.model.split(', ', 1)[1]} prior on τ: P(OR < 1) {_prob(r.prob_or_below_1)}, "
                          f"P(OR < 0.8) {_prob(r.prob_or_below_0_8)}" for r in bayes.itertuples(index=False))
        out.append(f"The Bayesian analyses, which carry the uncertainty about the heterogeneity into the interval, "
                   f"give the posterior probabilities that MSCs lower the odds of death ({probs}).")
    tau = table.loc[table["family"].isin(["GLMM", "exact conditional"]), "tau2"].astype(float)
    tau = tau[np.isfinite(tau)]
    if len(tau):
        at = (f"Every GLMM estimates the between-study variance at 0" if tau.max() == 0 else
              f"The GLMMs estimate the between-study variance at {tau.min():.3g} to {tau.max():.3g}")
        out.append(f"{at}: with these few events the data cannot tell a random from a common effect, and the "
                   "Bayesian priors decide how much heterogeneity is allowed for.")
    return out


def _prob(p: float) -> str:
    """A posterior probability for prose ("> 0.9999" rather than a rounded 1)."""
    if p > 0.9999:
        return "> 0.9999"
    return "< 0.0001" if p < 0.0001 else f"= {p:.4f}"


def _fragility_sentences(frag: pd.DataFrame, data: pd.DataFrame) -> list[str]:
    fi = frag["fragility_index"].iloc[0]
    if not np.isfinite(fi):
        return [f"The fragility index is not defined here ({frag['note'].iloc[0]})."]
    steps = frag.dropna(subset=["step"])
    none_dead = set(data.loc[(data[ARM_COLUMNS["events_t"]] == 0) & (data[ARM_COLUMNS["events_c"]] == 0),
                             ARM_COLUMNS["study"]].astype(str))
    per = steps.groupby(["label", "arm"], sort=False)["change"].agg(["sum", "size"]).reset_index()
    parts = [f"{int(abs(r['sum']))} {'more' if r['sum'] > 0 else 'fewer'} death{'s' if abs(r['sum']) != 1 else ''} "
             f"in the {r['arm']} arm of {r['label']}" for _, r in per.iterrows()]
    moves = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
    in_dz = int(steps["study_id"].isin(none_dead).sum())
    becomes = "non-significant" if str(frag["direction"].iloc[0]).startswith("significant") else "significant"
    patients = int(data[ARM_COLUMNS["n_t"]].sum() + data[ARM_COLUMNS["n_c"]].sum())
    note = str(frag["note"].iloc[0]) if isinstance(frag["note"].iloc[0], str) else ""
    whose = ("the primary result" if not note.startswith("computed for") else
             "the Mantel-Haenszel odds ratio with RevMan's 0.5 correction (the primary analysis is another model)")
    text = (f"The fragility index of {whose} is {int(fi)} (Atal et al. 2019): {moves} would make it "
            f"{becomes} ({int(fi)} of {patients} patients).")
    if in_dz:
        text += (f" {in_dz} of these changes fall in studies without any death in either arm, which the RevMan "
                 "convention leaves out of the pooled estimate until they have a death: with sparse deaths the "
                 "index depends on how such studies are pooled, a caveat of the index itself.")
    return [text]


def sparse_markdown(table: pd.DataFrame, fragility: pd.DataFrame, data: pd.DataFrame) -> str:
    """The paragraph under the sparse-data table: the spread of the models and what it means."""
    sentences = _spread_sentences(table) + _cm_al_sentence(table, data) + _bayes_and_tau_sentences(table)
    sentences += _fragility_sentences(fragility, data)
    primary = table[table["group"] == "primary"].iloc[0]
    deaths = int(data[ARM_COLUMNS["events_t"]].sum() + data[ARM_COLUMNS["events_c"]].sum())
    ok = table[np.isfinite(table["estimate"].astype(float))]
    all_below = bool((ok["ci_high"] < 1).all())
    verdict = ("For this review, the direction and the statistical significance of the mortality effect do not "
               "depend on the model for sparse data" if all_below else
               "For this review, whether the mortality effect is statistically significant depends on the model for "
               "sparse data")
    sentences.append(f"{verdict}; its size does: OR {ok['estimate'].min():.2f} to {ok['estimate'].max():.2f} across "
                     f"the models, around the primary convention's {fmt_ci(primary['estimate'], primary['ci_low'], primary['ci_high'])}."
                     f" It rests on {deaths} deaths in {len(data)} studies.")
    return "\n\n".join(sentences) + "\n"
