"""Stage 03 (notebook ``03-pool``): pooled in-hospital mortality, MSCs vs control.

The one module notebook 03 imports. It gathers the stage's steps from the modules that do
the work: the inputs (:mod:`~mscmeta.review.inputs`), the primary analysis and its
comparators (:mod:`~mscmeta.review.mortality`), the reproduction scorecard and "what would
it take" (:mod:`~mscmeta.review.scorecard`), sensitivity, influence, cumulative and
small-study analyses (:mod:`~mscmeta.review.sensitivity`), the models for sparse data and
the fragility index (:mod:`~mscmeta.review.sparse`) and the figures
(:mod:`~mscmeta.review.figures`, :mod:`mscmeta.plots.intervals`).
"""

from __future__ import annotations

from mscmeta.plots.intervals import cumulative_plot, model_comparison_plot, sensitivity_plot
from mscmeta.plots.style import use_style
from mscmeta.review.display import save_table, show_figure, show_table
from mscmeta.review.figures import (
    cumulative_caption,
    forest_caption,
    forest_figure,
    funnel_caption,
    funnel_figure,
    sensitivity_caption,
)
from mscmeta.review.inputs import StageInputs, load_inputs
from mscmeta.review.mortality import (
    conventions_markdown,
    main_analyses,
    main_specs,
    mortality_studies_table,
    plan_markdown,
    pooled_markdown,
    pooled_table,
)
from mscmeta.review.scorecard import (
    explanations_markdown,
    headline_table,
    rule_markdown,
    scorecard_for,
    scorecard_markdown,
    set_text_for,
    tally_markdown,
    what_would_it_take,
)
from mscmeta.review.sparse import (
    fragility_table,
    primary_fragility,
    sparse_markdown,
    sparse_models,
    sparse_models_caption,
)
from mscmeta.review.sensitivity import (
    cumulative_table,
    influence_table,
    sensitivity_analyses,
    sensitivity_markdown,
    small_study_markdown,
    small_study_table,
)
from mscmeta.review.tables import (
    INFLUENCE,
    SCORECARD,
    fragility_spec,
    pooled_spec,
    scorecard_view,
    sparse_models_spec,
)

__all__ = [
    "use_style", "StageInputs", "load_inputs", "main_specs", "main_analyses", "pooled_table",
    "mortality_studies_table", "pooled_markdown", "conventions_markdown", "scorecard_for", "scorecard_markdown",
    "rule_markdown", "explanations_markdown", "what_would_it_take", "sensitivity_analyses", "sensitivity_markdown",
    "sensitivity_plot", "influence_table", "cumulative_table", "cumulative_plot", "small_study_table",
    "small_study_markdown", "forest_figure", "funnel_figure", "plan_markdown", "headline_table", "set_text_for", "tally_markdown",
    "show_table", "show_figure", "save_table", "pooled_spec", "scorecard_view", "SCORECARD", "INFLUENCE",
    "forest_caption", "sensitivity_caption", "cumulative_caption", "funnel_caption",
    "primary_fragility", "fragility_table", "sparse_models", "sparse_markdown", "model_comparison_plot",
    "sparse_models_caption", "sparse_models_spec", "fragility_spec",
]
