"""One stage's HTML pages: the executed notebook with its code, and the code-free report.

For an executed notebook ``<out>/notebooks/<stage>.ipynb``, :func:`render_notebook` writes
``<stage>.html`` (the full notebook; machine paths in the injected parameters shown
relative to the project, or by their last component) and ``<stage>-report.html`` (inputs
and prompts hidden, as ``jupyter nbconvert --to html --no-input``), each opening with a
**settings banner**: the stage's parameters, the bundle's version (git commit, marked when
the tree has uncommitted changes) and the checksum of the data folder the stage read.
:mod:`mscmeta.bundle.report` renders every stage's pages, the front page and the Methods
page; the run's tool server (:mod:`mscmeta.bundle.forkserver`) builds this module's
exporters once (:func:`warm_exporters`) for every process it forks.
"""

from __future__ import annotations

import ast
import hashlib
import html
import os
import re
import subprocess
from collections.abc import Mapping
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from mscmeta.bundle.io import write_text
from mscmeta.bundle.lean_imports import skip_iri_grammar
from mscmeta.bundle.paths import PROJECT_ROOT

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "mscmeta_html"
PAGES_DIR = TEMPLATE_DIR / "pages"

#: Human titles of the stages.
STAGE_TITLES = {
    "01-extract": "Data extraction, eligibility, characteristics of the studies and PRISMA flows",
    "02-quality-assess": "Risk of bias (RoB 2, ROBINS-I)",
    "03-pool": "Mortality: primary analysis, reproduction scorecard, sensitivity, small-study effects",
    "04-subgroup": "Mortality: subgroup analyses",
    "05-secondary-outcomes": "Secondary outcomes and adverse events",
    "06-update-and-certainty": "The evidence since 2021: updated estimate, GRADE certainty, trial sequential analysis",
}

#: Parameters a reader sees in the banner, in this order, with their labels. Paths
#: (data_dir, out_dir, tables_in) are machinery and not shown.
PARAMETER_LABELS = {
    "scenario": "Scenario",
    "measure": "Effect measure",
    "model": "Model",
    "zero_cell": "Zero-cell convention",
    "tau2_method": "τ² estimator",
    "harm_margin": "Harm margin (risk difference)",
    "weights_file": "Weights of the summary plots",
    "secondary_scenario": "Review set of the secondary outcomes",
    "forest_scenario": "Review set of the period forest plot",
    "cumulative_scenario": "Review set of the cumulative analysis",
    "los_mid_days": "Minimal important difference, length of stay (days)",
}
MEASURE_NAMES = {"OR": "odds ratio", "RR": "risk ratio", "RD": "risk difference"}
VALUE_LABELS = {
    "measure": {k: f"{k} ({v})" for k, v in MEASURE_NAMES.items()},
    "model": {"fixed": "fixed effect", "random": "random effects"},
    "zero_cell": {"revman": "RevMan (0.5 added to every cell of a zero-cell study)",
                  "none": "none (exact Mantel–Haenszel)", "escalc": "0.5 added to zero-cell studies (metafor escalc)"},
}

# ---------------------------------------------------------------------------
# What a page says about its run
# ---------------------------------------------------------------------------


def declared_defaults(nb) -> dict[str, object]:
    """The literal defaults of the notebook's ``parameters`` cell."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            out = {}
            for node in ast.parse(cell.source).body:
                target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
                out[target.id] = ast.literal_eval(node.value)
            return out
    return {}


def notebook_parameters(nb) -> dict[str, object]:
    """The parameters the executed notebook ran with: its defaults, overridden by papermill's."""
    params = declared_defaults(nb)
    params.update(nb.metadata.get("papermill", {}).get("parameters", {}) or {})
    return params


def _git(*args: str) -> str | None:
    try:
        proc = subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


@lru_cache(maxsize=1)
def bundle_version() -> str:
    """``"mscmeta 0.1.0, commit 1a2b3c4d5e6f"`` plus ``" + uncommitted changes"`` when the tree is dirty."""
    try:
        version = metadata.version("mscmeta")
    except metadata.PackageNotFoundError:
        version = "(not installed)"
    commit = _git("rev-parse", "--short=12", "HEAD")
    if commit is None:
        return f"mscmeta {version}, not a git checkout"
    dirty = _git("status", "--porcelain")
    return f"mscmeta {version}, commit {commit}" + (" + uncommitted changes" if dirty else "")


def data_checksum(data_dir: str | os.PathLike | None) -> str:
    """SHA-256 (first 12 hex digits) over the names and bytes of the CSV sheets in *data_dir*."""
    if not data_dir or not Path(data_dir).is_dir():
        return "not available"
    files = sorted(Path(data_dir).glob("*.csv"))
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return f"sha256 {digest.hexdigest()[:12]} ({len(files)} sheets)"


def setting_value(name: str, value: object, params: Mapping[str, object]) -> str:
    """How the banner shows one parameter (with what it means where that helps)."""
    if name == "los_mid_days" and not value:
        return "none given (half the pooled control-arm SD)"
    if name == "weights_file":
        return Path(str(value)).name if value else "the primary mortality analysis"
    text = VALUE_LABELS.get(name, {}).get(str(value), str(value))
    if name == "model" and value == "fixed" and params.get("measure"):
        text = "fixed effect (Mantel–Haenszel)"
    if name == "tau2_method" and params.get("model") == "fixed":
        text += " (random-effects analyses only)"
    return text


def settings_items(params: Mapping[str, object]) -> list[tuple[str, str]]:
    """(label, value) of every shown parameter, in :data:`PARAMETER_LABELS` order."""
    return [(label, setting_value(name, params[name], params)) for name, label in PARAMETER_LABELS.items()
            if name in params]


def banner_html(stage: str, params: Mapping[str, object]) -> str:
    """The settings banner of one report (navigation, parameters, version, data checksum)."""
    items = "".join(f"<div><dt>{html.escape(k)}:</dt><dd>{html.escape(v)}</dd></div>" for k, v in settings_items(params))
    number = stage.split("-", 1)[0]
    return (
        '<header class="mscmeta-banner">'
        f'<nav><a href="index.html">Front page</a><a href="methods.html">Methods</a>'
        f"<span>Report {html.escape(number)}: {html.escape(STAGE_TITLES.get(stage, stage))}</span></nav>"
        f"<dl>{items}</dl>"
        f'<div class="mscmeta-version">Bundle: {html.escape(bundle_version())} · Data checksum: '
        f"{html.escape(data_checksum(params.get('data_dir')))}</div></header>"
    )


def reading_css() -> str:
    return (PAGES_DIR / "report.css").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------
# The stage pages
# ---------------------------------------------------------------------------


def _display_path(value: str) -> str:
    """A machine path as a reader may see it: relative to the project, else its last component."""
    path = Path(value)
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return f"…/{path.name}"


def hide_machine_paths(nb) -> None:
    """Rewrite the absolute paths of papermill's injected-parameters cell (with-code pages)."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "injected-parameters" in cell.metadata.get("tags", []):
            cell.source = re.sub(r'"(/[^"]+)"', lambda m: f'"{_display_path(m.group(1))}"', cell.source)


@lru_cache(maxsize=None)
def _exporter(code_free: bool):
    """The HTML exporter of the with-code (*code_free* False) or code-free pages; one of each
    per process, so its Jinja templates are compiled once, not once per page."""
    skip_iri_grammar()
    from nbconvert import HTMLExporter  # deferred on purpose: heavy, loaded only when rendering

    return HTMLExporter(
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(TEMPLATE_DIR)],
        embed_images=True,
        exclude_input=code_free,
        exclude_input_prompt=code_free,
        exclude_output_prompt=code_free,
    )


def render_notebook(executed: Path, html_dir: Path) -> list[Path]:
    """Write ``<stage>.html`` and ``<stage>-report.html`` for one executed notebook."""
    skip_iri_grammar()
    import nbformat  # deferred on purpose (see _exporter)

    nb = nbformat.read(executed, as_version=4)
    params = notebook_parameters(nb)
    hide_machine_paths(nb)
    resources = {
        "metadata": {"name": STAGE_TITLES.get(executed.stem, executed.stem)},
        "mscmeta_css": reading_css(),
        "mscmeta_banner": banner_html(executed.stem, params),
    }
    written = []
    for suffix, code_free in (("", False), ("-report", True)):
        body, _ = _exporter(code_free).from_notebook_node(nb, resources=dict(resources))
        written.append(write_text(html_dir / f"{executed.stem}{suffix}.html", body))
    return written


def warm_exporters() -> None:
    """Build both exporters and render a one-cell notebook with each, so their Jinja templates
    are compiled before this process forks (each fork would compile them again)."""
    skip_iri_grammar()
    import nbformat  # deferred on purpose (see _exporter)

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("x"), nbformat.v4.new_code_cell("x")])
    for code_free in (False, True):
        _exporter(code_free).from_notebook_node(nb, resources={"mscmeta_css": "", "mscmeta_banner": ""})
