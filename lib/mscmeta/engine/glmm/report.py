"""Printing of :class:`~mscmeta.engine.glmm.model.GlmmResult` in metafor's ``print.rma.glmm`` layout."""

from __future__ import annotations

import math

_MODEL_TITLES = {
    "UM.FS": "Unconditional Model with Fixed Study Effects",
    "UM.RS": "Unconditional Model with Random Study Effects",
    "CM.AL": "Conditional Model with Approximate Likelihood",
    "CM.EL": "Conditional Model with Exact Likelihood",
}


def _fmt(value: float, digits: int = 4) -> str:
    return "NA" if not math.isfinite(value) else f"{value:.{digits}f}"


def _fmt_p(p: float, with_eq: bool = False) -> str:
    """metafor's ``.pval``: ``<.0001`` below 1e-4, else 4 decimals."""
    if not math.isfinite(p):
        return "NA"
    if p < 1e-4:
        return "< .0001" if with_eq else "<.0001"
    return f"= {p:.4f}" if with_eq else f"{p:.4f}"


def _stars(p: float) -> str:
    for cut, mark in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p < cut:
            return mark
    return ""


def _heterogeneity_lines(res) -> list[str]:
    tau2 = 0.0 if abs(res.tau2) <= 10 * 2.220446e-16 else res.tau2
    se = "" if not math.isfinite(res.se_tau2) else f" (SE = {_fmt(res.se_tau2)})"
    lines = [
        f"tau^2 (estimated amount of total heterogeneity): {_fmt(tau2)}{se}",
        f"tau (square root of estimated tau^2 value):      {_fmt(math.sqrt(tau2))}",
        f"I^2 (total heterogeneity / total variability):   {_fmt(res.I2, 2)}%",
        f"H^2 (total variability / sampling variability):  {_fmt(res.H2, 2)}",
        "",
    ]
    if math.isfinite(res.sigma2):
        lines += [
            f"sigma^2 (estimated amount of study level variability): {_fmt(res.sigma2)}",
            f"sigma (square root of estimated sigma^2 value):        {_fmt(math.sqrt(res.sigma2))}",
            "",
        ]
    wld, lrt = _fmt(res.wald.statistic), _fmt(res.lrt.statistic)
    width = max(len(wld), len(lrt))
    lines += [
        "Tests for Heterogeneity:",
        f"Wld(df = {res.wald.df}) = {wld:>{width}}, p-val {_fmt_p(res.wald.p_value, True)}",
        f"LRT(df = {res.lrt.df}) = {lrt:>{width}}, p-val {_fmt_p(res.lrt.p_value, True)}",
        "",
    ]
    return lines


def _model_results_lines(res) -> list[str]:
    cells = [_fmt(res.estimate), _fmt(res.se), _fmt(res.z), _fmt_p(res.p_value), _fmt(res.ci_low), _fmt(res.ci_high)]
    heads = ["estimate", "se", "zval", "pval", "ci.lb", "ci.ub"]
    widths = [max(len(h), len(c)) for h, c in zip(heads, cells)]
    header = "  ".join(h.rjust(w) for h, w in zip(heads, widths))
    row = "  ".join(c.rjust(w) for c, w in zip(cells, widths))
    lo, hi = res.conf_int(exp=True)
    plo, phi = math.exp(res.pi_low), math.exp(res.pi_high)
    return [
        "Model Results:", "", header, f"{row}  {_stars(res.p_value)}".rstrip(), "",
        f"Odds ratio: {_fmt(math.exp(res.estimate))} ({100 * res.level:g}% CI {_fmt(lo)} to {_fmt(hi)}; "
        f"prediction interval {_fmt(plo)} to {_fmt(phi)})",
    ]


def _footer_lines(res) -> list[str]:
    lines = [f"Studies: {res.k_total} supplied, {res.k} used"]
    lines += [f"  dropped {d.label}: {d.reason}" for d in res.dropped]
    lines.append(
        f"Fit: logLik = {_fmt(res.loglik)}, deviance = {_fmt(res.deviance)}, AIC = {_fmt(res.AIC)}, "
        f"BIC = {_fmt(res.BIC)}, AICc = {_fmt(res.AICc)}"
    )
    status = "converged" if res.converged else "NOT converged"
    lines.append(f"Optimiser: {status} ({res.convergence_message}; {res.iterations} iterations, "
                 f"{res.function_evaluations} evaluations; nAGQ = {res.n_agq})")
    lines += [f"Note: {note}" for note in res.notes]
    return lines


def format_glmm(res) -> str:
    """metafor ``print.rma.glmm`` layout, then the odds ratio, the prediction interval and the fit."""
    lines = [
        "",
        f"Random-Effects Model (k = {res.k}; tau^2 estimator: ML)",
        f"Model Type: {_MODEL_TITLES[res.model]}",
        "",
    ]
    lines += _heterogeneity_lines(res) + _model_results_lines(res) + [""] + _footer_lines(res)
    return "\n".join(lines) + "\n"
