"""The engine's option vocabulary, declared once, and :class:`BinaryOptions`.

Every option name and value the engine understands is declared here and nowhere else:
effect measures, pooling methods, models, zero-cell conventions, tau^2 estimators,
prediction-interval conventions and risk-difference variances, each with the aliases a
user may type (case-insensitive; ``_`` and ``-`` are equivalent). Other modules import the
tuples below; :class:`BinaryOptions` validates a whole set of options of
:func:`mscmeta.engine.binary.meta_binary` at once and carries them as one typed, frozen
value (the way metafor's ``rma`` arguments travel as one call).

Option meanings (metafor's vocabulary where metafor has the option)
-------------------------------------------------------------------
``measure``
    ``"OR"`` odds ratio, ``"RR"`` risk ratio, ``"RD"`` risk difference, ``"PETO"`` Peto's
    odds ratio (implies ``method="Peto"``), ``"AS"`` arcsine (square-root) difference
    (Rücker et al. 2009; pooled by inverse variance, so it implies ``method="IV"``). Ratios
    are analysed on the log scale.
``method``
    ``"MH"`` Mantel-Haenszel, ``"IV"`` inverse variance, ``"Peto"`` Peto's one-step method.
``model``
    ``"fixed"`` common (fixed) effect -- metafor ``"EE"``/``"FE"`` and RevMan "Fixed";
    ``"random"`` random effects.
``tau2_method``
    Estimator of the between-study variance for ``model="random"``:
    :data:`TAU2_METHODS` (metafor spellings; ``"CA"`` = HE, ``"MP"`` = PM). ``None``
    means DerSimonian-Laird, RevMan's default (metafor's default is REML).
``hksj``
    Hartung-Knapp-Sidik-Jonkman CI and t test (metafor ``test="knha"``).
``zero_cell``
    ``"revman"`` (RevMan 5: 0.5 added to every cell of a zero-cell study, also inside MH),
    ``"none"`` (metafor ``rma.mh``: nothing added inside MH/Peto), ``"escalc"`` (metafor
    ``escalc``/``rma``: 0.5 added, double-zero studies kept); see
    :mod:`mscmeta.engine.effects`.
``keep_double_zero``
    Keep studies without events (or with only events) in both arms, with 0.5 added.
``add``, ``to``, ``correction``
    Continuity correction (metafor ``add``/``to``; :mod:`mscmeta.engine.effects`): the
    value added to the cells (default 0.5), which studies get it (:data:`ADD_TO`:
    ``"only0"`` studies with a zero cell, ``"if0all"`` all studies if any has one,
    ``"all"``, ``"none"``) and how it is split between the arms (:data:`CORRECTIONS`:
    ``"constant"`` the same in every cell, ``"treatment-arm"`` Sweeting, Sutton & Lambert
    2004). ``None`` keeps the zero-cell convention's own (0.5 to ``only0``); under
    ``zero_cell="revman"`` the correction also enters the MH/Peto estimator, under
    ``"none"``/``"escalc"`` only the study-level estimates.
``level``
    Confidence level as a fraction (95 is read as 0.95).
``rd_variance``
    Variance of the MH risk difference, :data:`RD_VARIANCES`; ``None`` = Greenland-Robins
    under ``zero_cell="revman"`` (RevMan, metan, meta) and Sato otherwise (metafor).
``prediction``, ``pi_df``
    Compute the prediction interval; its distribution, :data:`PI_DF_CHOICES`
    (``"metafor"``: normal, t(k-1) after HKSJ; ``"k-1"``; ``"k-2"``).
``tol``
    Root-search tolerance (PM estimator, Q-profile interval); metafor's ``control$tol``.

Vocabularies of the other models
--------------------------------
:data:`GLMM_MODELS` (metafor ``rma.glmm``: ``"UM.FS"``, ``"UM.RS"``, ``"CM.EL"``,
``"CM.AL"``), :data:`TAU_PRIORS` and :data:`TURNER_COMPARISONS` (priors on the
heterogeneity of :mod:`mscmeta.engine.bayes`), :data:`MODEL_METHODS` (the methods beyond
:func:`~mscmeta.engine.binary.meta_binary` that the command line offers) and the subgroup
tests :data:`SUBGROUP_TESTS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from mscmeta.engine.errors import DataError, check_level, normalise_choice

# --------------------------------------------------------------------------- vocabulary

#: Binary effect measures.
MEASURES: tuple[str, ...] = ("OR", "RR", "RD", "PETO", "AS")
#: Measures the Mantel-Haenszel method pools.
MH_MEASURES: tuple[str, ...] = ("OR", "RR", "RD")
#: Measures analysed on the log scale (reported exponentiated).
RATIO_MEASURES: frozenset[str] = frozenset({"OR", "RR", "PETO"})
#: Pooling methods for 2x2 tables.
METHODS: tuple[str, ...] = ("MH", "IV", "Peto")
#: Models.
MODELS: tuple[str, ...] = ("fixed", "random")
#: Zero-cell conventions (see :mod:`mscmeta.engine.effects`).
ZERO_CELLS: tuple[str, ...] = ("revman", "none", "escalc")
#: tau^2 estimators (metafor spellings).
TAU2_METHODS: tuple[str, ...] = ("DL", "REML", "PM", "SJ", "HE", "ML", "EB")
#: Prediction-interval conventions.
PI_DF_CHOICES: tuple[str, ...] = ("metafor", "k-1", "k-2")
#: Variances of the Mantel-Haenszel risk difference.
RD_VARIANCES: tuple[str, ...] = ("sato", "greenland-robins")
#: Which studies get a continuity correction (metafor ``to``).
ADD_TO: tuple[str, ...] = ("only0", "if0all", "all", "none")
#: How a continuity correction is split between the arms.
CORRECTIONS: tuple[str, ...] = ("constant", "treatment-arm")
#: Binomial-normal GLMMs for the odds ratio (metafor ``rma.glmm`` models).
GLMM_MODELS: tuple[str, ...] = ("UM.FS", "UM.RS", "CM.EL", "CM.AL")
#: Families of priors on the heterogeneity tau of the Bayesian model.
TAU_PRIORS: tuple[str, ...] = ("halfnormal", "halfcauchy", "turner-mortality", "uniform")
#: Comparison types of Turner et al. (2015) for all-cause mortality (first = default).
TURNER_COMPARISONS: tuple[str, ...] = (
    "pharma-placebo", "pharma-pharma", "nonpharma-placebo", "nonpharma-pharma", "nonpharma-nonpharma",
)
#: Models the command line fits besides MH/IV/Peto: binomial-normal GLMMs and Bayesian random effects.
MODEL_METHODS: tuple[str, ...] = ("GLMM", "BAYES")
#: Tests for subgroup differences: separate tau^2 per subgroup (RevMan), common tau^2 (metafor mods).
SUBGROUP_TESTS: tuple[str, ...] = ("separate-tau2", "common-tau2")

#: Default tolerance of R's ``uniroot`` as metafor uses it (``.Machine$double.eps^0.25``).
UNIROOT_TOL: float = float(np.finfo(float).eps ** 0.25)

MEASURE_ALIASES: dict[str, str] = {
    "or": "OR", "odds-ratio": "OR", "odds ratio": "OR", "log-or": "OR",
    "rr": "RR", "risk-ratio": "RR", "risk ratio": "RR", "relative-risk": "RR", "relative risk": "RR",
    "rd": "RD", "risk-difference": "RD", "risk difference": "RD",
    "peto": "PETO", "peto-or": "PETO",
    "as": "AS", "asd": "AS", "arcsine": "AS", "arcsine-difference": "AS",
}
METHOD_ALIASES: dict[str, str] = {
    "mh": "MH", "mantel-haenszel": "MH", "mantel haenszel": "MH",
    "iv": "IV", "inverse": "IV", "inverse-variance": "IV", "inverse variance": "IV",
    "peto": "Peto",
}
MODEL_ALIASES: dict[str, str] = {
    "fixed": "fixed", "fe": "fixed", "ee": "fixed", "ce": "fixed", "common": "fixed", "fixed-effect": "fixed",
    "fixed-effects": "fixed", "common-effect": "fixed", "equal-effects": "fixed",
    "random": "random", "re": "random", "random-effects": "random", "random-effect": "random",
}
ZERO_CELL_ALIASES: dict[str, str] = {
    "revman": "revman", "revman5": "revman", "cochrane": "revman",
    "none": "none", "exact": "none", "metafor": "none", "no": "none",
    "escalc": "escalc",
}
TAU2_ALIASES: dict[str, str] = {
    "dl": "DL", "dersimonian-laird": "DL", "dersimonian": "DL",
    "reml": "REML", "restricted-maximum-likelihood": "REML",
    "pm": "PM", "mp": "PM", "paule-mandel": "PM",
    "sj": "SJ", "sidik-jonkman": "SJ",
    "he": "HE", "ca": "HE", "hedges": "HE",
    "ml": "ML", "maximum-likelihood": "ML",
    "eb": "EB", "empirical-bayes": "EB",
}
PI_DF_ALIASES: dict[str, str] = {
    "metafor": "metafor", "default": "metafor", "normal": "metafor", "z": "metafor",
    "k-1": "k-1", "t": "k-1",
    "k-2": "k-2", "riley": "k-2", "higgins": "k-2",
}
ADD_TO_ALIASES: dict[str, str] = {value: value for value in ADD_TO}
CORRECTION_ALIASES: dict[str, str] = {
    "constant": "constant", "cc": "constant", "revman": "constant",
    "treatment-arm": "treatment-arm", "treatment": "treatment-arm", "tacc": "treatment-arm", "ta": "treatment-arm",
    "sweeting": "treatment-arm",
}
GLMM_ALIASES: dict[str, str] = {m.lower(): m for m in GLMM_MODELS} | {m.lower().replace(".", "-"): m for m in GLMM_MODELS}
RD_VARIANCE_ALIASES: dict[str, str] = {
    "sato": "sato", "sgr": "sato", "sato-greenland-robins": "sato",
    "greenland-robins": "greenland-robins", "gr": "greenland-robins", "revman": "greenland-robins",
}


# --------------------------------------------------------------------------- single options


def normalise_measure(value: object) -> str:
    """Canonical measure name (:data:`MEASURES`)."""
    return normalise_choice(value, "measure", MEASURE_ALIASES, MEASURES)


def normalise_model(value: object) -> str:
    """Canonical model name (:data:`MODELS`)."""
    return normalise_choice(value, "model", MODEL_ALIASES, MODELS)


def normalise_zero_cell(value: object) -> str:
    """Canonical zero-cell convention (:data:`ZERO_CELLS`)."""
    return normalise_choice(value, "zero_cell", ZERO_CELL_ALIASES, ZERO_CELLS)


def normalise_tau2_method(value: object) -> str:
    """Canonical tau^2 estimator name (case-insensitive; ``"CA"`` = HE, ``"MP"`` = PM)."""
    return normalise_choice(value, "tau2 method", TAU2_ALIASES, TAU2_METHODS)


def normalise_pi_df(value: object) -> str:
    """Canonical prediction-interval convention: ``"metafor"``, ``"k-1"`` or ``"k-2"``."""
    if value is None:
        return "metafor"
    return normalise_choice(value, "prediction-interval df (pi_df)", PI_DF_ALIASES, PI_DF_CHOICES)


def normalise_glmm_model(value: object) -> str:
    """Canonical GLMM model name (:data:`GLMM_MODELS`; ``"um.fs"`` and ``"UM-FS"`` accepted)."""
    return normalise_choice(value, "GLMM model", GLMM_ALIASES, GLMM_MODELS)


def normalise_add(value: object) -> float | None:
    """The continuity-correction constant: ``None`` (the convention's own) or a number >= 0."""
    if value is None:
        return None
    try:
        add = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        add = float("nan")
    if not (np.isfinite(add) and add >= 0) or isinstance(value, bool):
        raise DataError(f"add must be a number >= 0 (e.g. 0.5), got {value!r}")
    return add


def normalise_to(value: object) -> str | None:
    """Which studies get the correction: ``None`` or one of :data:`ADD_TO`."""
    return None if value is None else normalise_choice(value, "to", ADD_TO_ALIASES, ADD_TO)


def normalise_correction(value: object) -> str:
    """How the correction is split between the arms (:data:`CORRECTIONS`)."""
    return normalise_choice(value, "correction", CORRECTION_ALIASES, CORRECTIONS)


def resolve_tol(control: Mapping[str, float] | None) -> float:
    """Root-search tolerance from a metafor-like ``control`` mapping (only ``tol`` is used)."""
    control = dict(control or {})
    unknown = sorted(set(control) - {"tol"})
    if unknown:
        raise DataError(f"unknown control option(s) {', '.join(map(repr, unknown))}; valid: 'tol'")
    return _check_tol(control.get("tol", UNIROOT_TOL))


def _check_tol(value: object) -> float:
    try:
        tol = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        tol = float("nan")
    if not (np.isfinite(tol) and tol > 0):
        raise DataError(f"control tol must be a positive number, got {value!r}")
    return tol


def _peto_pairing(measure: str, method: str) -> tuple[str, str]:
    """Peto's method pools odds ratios only; ``measure="PETO"`` implies it; the arcsine
    difference is pooled by inverse variance (``"AS"`` with MH becomes IV)."""
    if measure == "AS":
        if method == "Peto":
            raise DataError("the arcsine difference (measure 'AS') is pooled by inverse variance; use method='IV'")
        return measure, "IV"
    if measure == "PETO" and method == "MH":
        method = "Peto"
    if method == "Peto":
        if measure not in ("OR", "PETO"):
            raise DataError(f"Peto's method pools odds ratios only; got measure {measure!r}")
        measure = "PETO"
    return measure, method


def _correction_values(add: object, to: object, correction: object, measure: str) -> dict[str, Any]:
    values = {"add": normalise_add(add), "to": normalise_to(to), "correction": normalise_correction(correction)}
    custom = values["add"] is not None or values["to"] is not None or values["correction"] != "constant"
    if custom and measure == "AS":
        raise DataError("the arcsine difference needs no continuity correction (add, to and correction do not "
                        "apply to measure 'AS')")
    return values


# --------------------------------------------------------------------------- the options object


@dataclass(frozen=True)
class BinaryOptions:
    """Validated options of a meta-analysis of 2x2 tables (see the module docstring).

    Construct with any accepted spelling; the fields hold canonical values afterwards
    (``BinaryOptions(measure="odds ratio", model="RE").measure == "OR"``). Invalid values
    raise :class:`~mscmeta.engine.validation.DataError` naming the option, the value and the
    valid values. ``dataclasses.replace(options, measure="RR")`` (or :meth:`replace`)
    returns a new, re-validated object.

    ``tau2_method`` is ``None`` for a fixed-effect model (it does not apply) and defaults
    to ``"DL"`` for a random-effects model; ``rd_variance`` stays ``None`` unless given,
    so that :attr:`rd_variance_used` follows the zero-cell convention after a
    :meth:`replace`.
    """

    measure: str = "OR"
    method: str = "MH"
    model: str = "fixed"
    tau2_method: str | None = None
    hksj: bool = False
    zero_cell: str = "revman"
    keep_double_zero: bool = False
    level: float = 0.95
    rd_variance: str | None = None
    prediction: bool = True
    pi_df: str = "metafor"
    tol: float = UNIROOT_TOL
    add: float | None = None
    to: str | None = None
    correction: str = "constant"

    def __post_init__(self) -> None:
        # validated in the order metafor-like calls list them, so the first bad option is named
        measure = normalise_measure(self.measure)
        method = normalise_choice(self.method, "method", METHOD_ALIASES, METHODS)
        model = normalise_model(self.model)
        zero_cell = normalise_zero_cell(self.zero_cell)
        measure, method = _peto_pairing(measure, method)
        tau2 = None
        if model == "random":
            tau2 = normalise_tau2_method(self.tau2_method if self.tau2_method is not None else "DL")
        if self.hksj and model != "random":
            raise DataError(
                "the Hartung-Knapp-Sidik-Jonkman adjustment applies to random-effects models; use model='random'"
            )
        rd_var = None
        if self.rd_variance is not None:
            rd_var = normalise_choice(self.rd_variance, "rd_variance", RD_VARIANCE_ALIASES, RD_VARIANCES)
        values = {
            "measure": measure, "method": method, "model": model, "tau2_method": tau2, "hksj": bool(self.hksj),
            "zero_cell": zero_cell, "keep_double_zero": bool(self.keep_double_zero), "level": check_level(self.level),
            "rd_variance": rd_var, "prediction": bool(self.prediction), "pi_df": normalise_pi_df(self.pi_df),
            "tol": _check_tol(self.tol), **_correction_values(self.add, self.to, self.correction, measure),
        }
        for name, value in values.items():
            object.__setattr__(self, name, value)

    @property
    def rd_variance_used(self) -> str:
        """The MH risk-difference variance in effect (Greenland-Robins under RevMan, else Sato)."""
        if self.rd_variance is not None:
            return self.rd_variance
        return "greenland-robins" if self.zero_cell == "revman" else "sato"

    def replace(self, **changes: Any) -> BinaryOptions:
        """A copy with *changes* applied and validated again."""
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The options as a plain dict (field name -> canonical value)."""
        return dataclasses.asdict(self)

    def is_ratio(self) -> bool:
        """True when the measure is analysed on the log scale (OR, RR, Peto OR)."""
        return self.measure in RATIO_MEASURES
