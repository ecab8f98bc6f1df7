"""Render the executed notebooks as HTML for reviewers.

For every executed notebook ``<out>/notebooks/<stage>.ipynb`` two single-file pages are
written to ``<out>/html/``:

* ``<stage>.html`` — the full notebook, code included;
* ``<stage>-report.html`` — the code-free report (inputs and prompts hidden, as
  ``jupyter nbconvert --to html --no-input``).

``index.html`` links them all and embeds the key figures. Every image is inlined as a
``data:`` URI and no script is loaded from a CDN, so any one file can be mailed and
opened offline.
"""

from __future__ import annotations

import argparse
import base64
import html
import os
from pathlib import Path

from mscmeta.bundle.io import write_text

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "mscmeta_html"

#: Figures shown on the index page, in this order, when they exist (stem, caption).
KEY_FIGURES: tuple[tuple[str, str], ...] = (
    ("forest_mortality", "In-hospital mortality, MSC vs control: primary analysis (forest plot)"),
    ("sensitivity_mortality", "Sensitivity analyses of the primary mortality result"),
    ("forest_subgroup_severity", "Mortality by disease severity"),
    ("forest_subgroup_doses", "Mortality by number of MSC doses"),
    ("rob_traffic_light_rob2", "Risk of bias, randomised trials (RoB 2)"),
    ("rob_traffic_light_robinsi", "Risk of bias, non-randomised studies (ROBINS-I)"),
    ("funnel_mortality", "Contour-enhanced funnel plot"),
    ("secondary_overview", "Secondary outcomes at a glance"),
    ("forest_updated", "Mortality with the trials of 2022-2025, by period of publication"),
    ("cumulative_by_date", "Cumulative meta-analysis by publication date, with the later syntheses"),
    ("tsa_mortality", "Trial sequential analysis of mortality"),
    ("prisma_flow", "PRISMA 2020 flow diagram"),
)

#: Human titles of the stages.
STAGE_TITLES = {
    "01-extract": "Data extraction, eligibility and PRISMA flow",
    "02-quality-assess": "Risk of bias (RoB 2, ROBINS-I)",
    "03-pool": "Mortality: primary analysis, sensitivity, small-study effects, reproduction scorecard",
    "04-subgroup": "Mortality: subgroup analyses",
    "05-secondary-outcomes": "Secondary outcomes and adverse events",
    "06-update-and-certainty": "The evidence since 2021: updated estimate, GRADE certainty, trial sequential analysis",
}


def _exporter(code_free: bool):
    from nbconvert import HTMLExporter  # deferred on purpose: heavy, loaded only when rendering

    exporter = HTMLExporter(
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(TEMPLATE_DIR)],
        embed_images=True,
        exclude_input=code_free,
        exclude_input_prompt=code_free,
        exclude_output_prompt=code_free,
    )
    return exporter


def render_notebook(executed: Path, html_dir: Path) -> list[Path]:
    """Write ``<stage>.html`` and ``<stage>-report.html`` for one executed notebook."""
    import nbformat  # deferred on purpose (see _exporter)

    nb = nbformat.read(executed, as_version=4)
    written = []
    for suffix, code_free in (("", False), ("-report", True)):
        body, _ = _exporter(code_free).from_notebook_node(
            nb, resources={"metadata": {"name": STAGE_TITLES.get(executed.stem, executed.stem)}}
        )
        written.append(write_text(html_dir / f"{executed.stem}{suffix}.html", body))
    return written


def _img_tag(png: Path, caption: str) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    cap = html.escape(caption)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{cap}">'
        f"<figcaption>{cap} (<code>{html.escape(png.name)}</code>, SVG beside it)</figcaption></figure>"
    )


def render_index(stages: list[str], figures_dir: Path, html_dir: Path) -> Path:
    """Write ``index.html``: links to every report and the key figures, embedded."""
    rows = []
    for stage in stages:
        title = html.escape(STAGE_TITLES.get(stage, stage))
        rows.append(
            f'<li><strong>{html.escape(stage)}</strong> — {title}: '
            f'<a href="{stage}-report.html">report</a> · <a href="{stage}.html">with code</a></li>'
        )
    figures = [
        _img_tag(figures_dir / f"{stem}.png", caption)
        for stem, caption in KEY_FIGURES
        if (figures_dir / f"{stem}.png").exists()
    ]
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>MSCs in severe and critical COVID-19: reproducible meta-analysis</title>
<style>
body {{ font-family: "DejaVu Sans", Arial, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
figure {{ margin: 1.5rem 0; }} img {{ max-width: 100%; border: 1px solid #ddd; }}
figcaption {{ font-size: 0.9rem; color: #555; }} li {{ margin: 0.3rem 0; }}
</style></head><body>
<h1>Mesenchymal stromal cells in severe and critical COVID-19</h1>
<p>A reproducible rebuild of Yao et al., <em>EClinicalMedicine</em> 2022;51:101545, from the primary
studies. Each stage below is a notebook executed by <code>make reproduce</code>; the report hides the code,
the second link shows it. Every file is self-contained and can be sent on its own.</p>
<h2>Reports</h2>
<ul>
{chr(10).join(rows)}
</ul>
<h2>Key figures</h2>
{chr(10).join(figures) if figures else "<p>No figures were produced.</p>"}
</body></html>
"""
    return write_text(html_dir / "index.html", page)


def render_all(out: str | os.PathLike) -> list[Path]:
    """Render every executed notebook under ``<out>/notebooks`` and the index page."""
    out = Path(out)
    executed = sorted((out / "notebooks").glob("*.ipynb"))
    html_dir = out / "html"
    written: list[Path] = []
    for nb in executed:
        written.extend(render_notebook(nb, html_dir))
    written.append(render_index([nb.stem for nb in executed], out / "figures", html_dir))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mscmeta.bundle.report", description="Render executed notebooks as HTML.")
    parser.add_argument("--out", default="outputs", help="outputs root (default: %(default)s)")
    args = parser.parse_args(argv)
    for path in render_all(args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
