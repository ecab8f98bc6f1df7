"""Render the executed notebooks as HTML for reviewers, with a front page and a Methods page.

For every executed notebook ``<out>/notebooks/<stage>.ipynb`` two single-file pages are
written to ``<out>/html/`` by :func:`mscmeta.bundle.pages.render_notebook`: ``<stage>.html``
(the full notebook, code included) and ``<stage>-report.html`` (the code-free report), each
opening with a settings banner (the stage's parameters, the bundle's version, the checksum
of the data folder the stage read). ``index.html`` is the front page: the headline result
beside the published one, why they differ, the source of the published values, the run's
settings, links to every report and to ``methods.html`` (the analysis plan, software
versions and the PRISMA 2020 checklist), and the key figures with captions. Every number on
the front page and the Methods page is read from the run's tables (``headline.csv``,
``pooled_mortality.csv``, ...), never typed here.

Every image is inlined as a ``data:`` URI, no script or font is loaded from the network,
and nothing depends on the wall clock, so two runs of the same tree give the same pages.
"""

from __future__ import annotations

import argparse
import base64
import html
import multiprocessing
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from importlib import metadata
from pathlib import Path

import pandas as pd

from mscmeta.bundle.io import write_text
from mscmeta.bundle.lean_imports import skip_iri_grammar
from mscmeta.bundle.pages import (
    MEASURE_NAMES, PAGES_DIR, STAGE_TITLES, bundle_version, data_checksum, notebook_parameters, reading_css,
    render_notebook, settings_items, warm_exporters,
)

#: Figures shown on the front page, in this order, when they exist: (stem, caption). The
#: captions name the measure of the run ({measure_name}).
KEY_FIGURES: tuple[tuple[str, str], ...] = (
    ("forest_mortality",
     "In-hospital mortality, MSC vs control: the primary analysis as a RevMan forest plot ({measure_name}). "
     "Each square is a study's estimate (area proportional to its weight) with its 95% CI; the diamond is the "
     "pooled estimate and its CI; left of the vertical line of no effect means fewer deaths with MSC."),
    ("sensitivity_mortality",
     "Sensitivity analyses of the primary result: each row re-runs it on another study set or convention "
     "(estimate and 95% CI); the dashed line and the shaded band are the primary estimate and its CI."),
    ("prisma_flow_ours",
     "PRISMA 2020 flow of this rebuild, from the data: candidate studies, the review set of the scenario, the "
     "studies with comparative death counts, and those with an estimable effect."),
    ("secondary_overview",
     "Secondary outcomes at a glance: each pooled outcome on the scale of its own forest plot (one panel per "
     "scale), estimate and 95% CI; outcomes that could not be pooled are listed below the panels."),
    ("forest_updated",
     "Mortality with the trials published since 2021, by period of publication (up to 2021, 2022 onward): the "
     "RevMan forest plot of every controlled study with a subtotal per period and the test for subgroup "
     "differences (left of the line of no effect means fewer deaths with MSC)."),
    ("tsa_mortality",
     "Trial sequential analysis of mortality: the cumulative Z-curve (one point per trial, in order of "
     "publication) against the monitoring boundaries for benefit and harm and the futility wedge, on an axis of "
     "patients accrued; the vertical line is the required information size."),
)


# ---------------------------------------------------------------------------
# Front page and Methods page
# ---------------------------------------------------------------------------


def _read_table(out: Path, name: str) -> pd.DataFrame | None:
    path = out / "tables" / name
    return pd.read_csv(path, keep_default_na=True) if path.exists() else None


def run_settings(stage_params: Mapping[str, Mapping[str, object]]) -> list[tuple[str, str]]:
    """The settings of the whole run: each parameter once, with the stages that differ named."""
    values: dict[str, dict[str, list[str]]] = {}
    for stage, params in stage_params.items():
        for label, value in settings_items(params):
            value = value.replace(" (random-effects analyses only)", "")
            values.setdefault(label, {}).setdefault(value, []).append(stage.split("-", 1)[0])
    rows = []
    for label, by_value in values.items():
        if len(by_value) == 1:
            rows.append((label, next(iter(by_value))))
        else:
            rows.append((label, "; ".join(f"{v} (stage {', '.join(s)})" for v, s in by_value.items())))
    return rows


def figure_html(png: Path, caption: str) -> str:
    """A figure with its caption, the PNG embedded."""
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    cap = html.escape(caption)
    return (f'<figure class="mscmeta-figure"><img src="data:image/png;base64,{data}" alt="{cap}">'
            f"<figcaption>{cap}</figcaption></figure>")


def software_versions() -> list[tuple[str, str]]:
    """Python and the packages the analyses and reports run on, as installed."""
    rows = [("Python", platform.python_version())]
    for name in ("mscmeta", "numpy", "scipy", "pandas", "statsmodels", "matplotlib", "seaborn", "great-tables",
                 "papermill", "nbconvert", "jupyterlab"):
        try:
            rows.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            continue
    return rows


def table_html(df: pd.DataFrame, title: str, table_id: str) -> str:
    """A plain text table rendered by great-tables (deterministic id, no network resources)."""
    from great_tables import GT  # deferred on purpose: loaded only when a page is rendered

    frame = df.fillna("\u2014").astype(str)
    gt = (GT(frame, id=table_id).tab_header(title=title)
          .opt_table_font(font=["DejaVu Sans", "Arial", "Helvetica", "sans-serif"])
          .tab_options(table_width="100%", container_overflow_x="visible", container_overflow_y="visible",
                       table_font_size="13px", heading_align="left", column_labels_font_weight="bold",
                       data_row_padding="3px", table_margin_left="0", table_margin_right="0"))
    return f'<div class="mscmeta-table">{gt.as_raw_html()}</div>'


def _environment():
    import jinja2  # deferred on purpose: only the page rendering needs it

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(PAGES_DIR)), autoescape=True,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)


def page_context(out: Path, stage_params: Mapping[str, Mapping[str, object]]) -> dict:
    """Everything the front page and the Methods page show, read from the run's outputs."""
    first = next(iter(stage_params.values()), {})
    pooling = stage_params.get("03-pool", first)
    measure = str(pooling.get("measure", "OR"))
    headline = _read_table(out, "headline.csv")
    return {
        "stages": [(s, STAGE_TITLES.get(s, s)) for s in stage_params],
        "settings": run_settings(stage_params),
        "version": bundle_version(),
        "checksum": data_checksum(first.get("data_dir")),
        "measure": measure,
        "measure_name": MEASURE_NAMES.get(measure, measure),
        "headline": None if headline is None or headline.empty else headline.iloc[0].to_dict(),
        "pooled": _records(_read_table(out, "pooled_mortality.csv")),
        "scenario": _first(_read_table(out, "scenario_definition.csv")),
        "secondary": _records(_read_table(out, "secondary_outcomes.csv")),
        "secondary_params": stage_params.get("05-secondary-outcomes", {}),
        "software": software_versions(),
    }


def _records(df: pd.DataFrame | None) -> list[dict]:
    return [] if df is None else df.where(df.notna(), None).to_dict("records")


def _first(df: pd.DataFrame | None) -> dict | None:
    return None if df is None or df.empty else df.where(df.notna(), None).iloc[0].to_dict()


def render_index(context: Mapping[str, object], figures_dir: Path, html_dir: Path) -> Path:
    """Write ``index.html``: headline, settings, links and the key figures, embedded."""
    figures = [
        figure_html(figures_dir / f"{stem}.png", caption.format(measure_name=context["measure_name"]))
        for stem, caption in KEY_FIGURES
        if (figures_dir / f"{stem}.png").exists()
    ]
    page = _environment().get_template("index.html.j2").render(
        **context, css=reading_css(), figures=figures, fmt=format_number, fmt_ci=format_interval,
    )
    return write_text(html_dir / "index.html", page)


def render_methods(context: Mapping[str, object], out: Path, html_dir: Path) -> Path:
    """Write ``methods.html``: the analysis plan of the run, software, the PRISMA 2020 checklist."""
    checklist = _read_table(out, "prisma_checklist.csv")
    checklist_html = "" if checklist is None else table_html(
        checklist.rename(columns={"section": "Section", "item": "Item", "topic": "Topic",
                                  "where": "Where in the bundle", "status": "Status"}),
        "PRISMA 2020 checklist", "tbl-prisma-checklist")
    page = _environment().get_template("methods.html.j2").render(
        **context, css=reading_css(), checklist=checklist_html, fmt=format_number, fmt_ci=format_interval,
    )
    return write_text(html_dir / "methods.html", page)


def format_number(value: object, digits: int = 2) -> str:
    """A number for the pages (no negative zero; em dash when missing)."""
    if value is None or (isinstance(value, float) and value != value):
        return "\u2014"
    text = f"{float(value):.{digits}f}"
    return text.lstrip("-") if float(text) == 0 else text


def format_interval(est: object, lo: object, hi: object) -> str:
    """``"0.21 [0.10, 0.43]"``."""
    if est is None or (isinstance(est, float) and est != est):
        return "not estimable"
    return f"{format_number(est)} [{format_number(lo)}, {format_number(hi)}]"


def _warm_exporters() -> None:
    """What the worker processes share once forked: compiled templates, the bundle's version."""
    warm_exporters()
    bundle_version()


def render_all(out: str | os.PathLike, jobs: int = 1) -> list[Path]:
    """Render every executed notebook under ``<out>/notebooks``, the front page and the Methods page.

    With *jobs* > 1 (Linux), the stage pages are rendered by *jobs* worker processes forked
    once the exporters are warm, while this process writes the front and Methods pages; each
    page is its own file, so the result does not depend on the order.
    """
    skip_iri_grammar()
    import nbformat  # deferred on purpose: heavy (see pages._exporter)

    out = Path(out)
    executed = sorted((out / "notebooks").glob("*.ipynb"))
    html_dir = out / "html"
    parallel = jobs > 1 and len(executed) > 1 and sys.platform == "linux"
    pool = None
    if parallel:
        _warm_exporters()
        pool = ProcessPoolExecutor(max_workers=min(jobs, len(executed)), mp_context=multiprocessing.get_context("fork"))
        pages = pool.map(render_notebook, executed, [html_dir] * len(executed))
    else:
        pages = [render_notebook(nb, html_dir) for nb in executed]
    try:
        stage_params = {nb.stem: notebook_parameters(nbformat.read(nb, as_version=4)) for nb in executed}
        context = page_context(out, stage_params)
        front = [render_index(context, out / "figures", html_dir), render_methods(context, out, html_dir)]
        written = [path for paths in pages for path in paths]
    finally:
        if pool is not None:
            pool.shutdown()
    return written + front


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mscmeta.bundle.report", description="Render executed notebooks as HTML.")
    parser.add_argument("--out", default="outputs", help="outputs root (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks rendered at a time (default: %(default)s)")
    args = parser.parse_args(argv)
    for path in render_all(args.out, jobs=args.jobs):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
