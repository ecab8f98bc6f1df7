"""The reviewer HTML in a real headless browser (Debian's chromium), on screen and in print.

* The index, the Methods page and every report load, no image is broken, every link resolves.
* On screen (1280 px wide): no table is wider than its container and the page does not
  scroll sideways; the text of a reviewer page (index, Methods, code-free reports) shows no
  "NaN", "<NA>", "True", "False", object repr, absolute path or reference to a project
  document that is not in the bundle; no figure appears twice in a page.
* In print (A4, Chromium's own PDF printer): no table is wider than the printable width,
  no element prints a scrollbar, and the PDF is written.
* After ``make reproduce SCENARIO=kirkham-like MEASURE=RR`` the index and every banner name
  the scenario and the measure, and the pooling report's prose speaks of risk ratios.

Screenshots of the index and of one report (screen and print) are saved to
``outputs/screenshots/``.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from conftest import ROOT, STAGES, reproduce_into

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
SCREEN = {"width": 1280, "height": 900}
#: A4 at 96 px per inch minus the print margins of the report template (12 mm each side).
A4_PRINTABLE_PX = round((210 - 2 * 12) / 25.4 * 96)
SHOTS = ROOT / "outputs" / "screenshots"

#: What a reviewer page must never show (pattern, what it is).
FORBIDDEN = (
    (r"\bNaN\b", "NaN"),
    (r"<NA>", "<NA>"),
    (r"\bTrue\b", "True"),
    (r"\bFalse\b", "False"),
    (r"PosixPath|WindowsPath|<[\w.]+ object at 0x", "object repr"),
    (r"(?<![\w:/.\-])/(?:[\w.\-]+/)+[\w.\-]+", "absolute path"),
    (r"dossier|addendum|living-evidence|research notes|\bissue\s+#?\d+", "reference to a project document"),
)

#: JavaScript: tables wider than their container, and whether the page scrolls sideways.
TABLE_OVERFLOW_JS = """(limit) => {
  const out = [];
  for (const t of document.querySelectorAll('table')) {
    if (!t.offsetParent && t.getClientRects().length === 0) continue;
    const box = t.getBoundingClientRect();
    const parent = t.parentElement.getBoundingClientRect();
    const right = limit === null ? parent.right : Math.min(parent.right, limit);
    if (box.right > right + 1 || box.width > t.parentElement.clientWidth + 1) {
      const head = (t.querySelector('caption, .gt_title, th') || t).innerText.slice(0, 60).replace(/\\s+/g, ' ');
      out.push(`${Math.round(box.width)} px wide in ${Math.round(t.parentElement.clientWidth)} px: ${head}`);
    }
  }
  const doc = document.documentElement;
  if (limit === null && doc.scrollWidth > window.innerWidth + 1) out.push(`page scrolls sideways (${doc.scrollWidth} px)`);
  return out;
}"""

#: JavaScript: elements that would print a scrollbar (overflow auto/scroll with hidden content).
SCROLLBAR_JS = """() => Array.from(document.querySelectorAll('body *')).filter(e => {
  const s = getComputedStyle(e);
  const scrolls = v => v === 'scroll' || (v === 'auto');
  return (s.overflowX === 'scroll' || s.overflowY === 'scroll') ||
         (scrolls(s.overflowX) && e.scrollWidth > e.clientWidth + 1) ||
         (scrolls(s.overflowY) && e.scrollHeight > e.clientHeight + 1);
}).map(e => e.tagName + '.' + (e.className || '').toString().slice(0, 40))"""


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def reviewer_pages(html: Path) -> list[Path]:
    """The pages a reviewer receives: the index, the Methods page and the code-free reports."""
    return [html / "index.html", html / "methods.html", *(html / f"{s}-report.html" for s in STAGES)]


def all_pages(html: Path) -> list[Path]:
    return reviewer_pages(html) + [html / f"{s}.html" for s in STAGES]


def load_problems(page, page_path: Path) -> list[str]:
    """Open *page_path*; broken images, unresolved links and failed requests."""
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    response = page.goto(page_path.as_uri(), wait_until="load")
    problems = [] if response is None or response.ok else [f"{page_path.name}: did not load"]
    broken = page.evaluate(
        "Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.alt || i.src.slice(0, 60))"
    )
    problems += [f"{page_path.name}: broken image {b}" for b in broken]
    for href in page.evaluate("Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))"):
        if href.startswith("#"):
            ids = [href[1:], unquote(href[1:])]  # nbconvert writes percent-encoded ids
            if href != "#" and not page.evaluate("ids => ids.some(id => !!document.getElementById(id))", ids):
                problems.append(f"{page_path.name}: anchor {href} has no target")
        elif urlparse(href).scheme in ("", "file"):
            target = (page_path.parent / unquote(urlparse(href).path)).resolve()
            if not target.exists():
                problems.append(f"{page_path.name}: link {href} does not resolve")
    return problems + [f"{page_path.name}: request failed {u}" for u in failed]


def forbidden_tokens(text: str) -> list[str]:
    """Every forbidden token in *text*, as 'what: «context»'."""
    found = []
    for pattern, what in FORBIDDEN:
        for m in re.finditer(pattern, text, flags=re.IGNORECASE if what.startswith("reference") else 0):
            context = text[max(0, m.start() - 30): m.end() + 30].replace("\n", " ")
            found.append(f"{what}: «{context}»")
    return found


def repeated_figures(page) -> list[str]:
    """Images whose content appears more than once in the page (by hash of the data URI)."""
    seen: dict[str, int] = {}
    for src in page.evaluate("Array.from(document.images).map(i => i.src)"):
        key = hashlib.sha256(src.encode()).hexdigest()
        seen[key] = seen.get(key, 0) + 1
    return [f"an image shown {n} times" for n in seen.values() if n > 1]


def screen_problems(page, page_path: Path, reviewer: bool) -> list[str]:
    """Table overflow at 1280 px; for reviewer pages also forbidden tokens and repeated figures."""
    name = page_path.name
    problems = [f"{name}: table {p}" for p in page.evaluate(TABLE_OVERFLOW_JS, None)]
    if reviewer:
        problems += [f"{name}: {p}" for p in forbidden_tokens(page.inner_text("body"))]
        problems += [f"{name}: {p}" for p in repeated_figures(page)]
    return problems


def print_problems(page, page_path: Path, pdf: Path | None = None) -> tuple[list[str], int]:
    """In print media at the A4 printable width: clipped tables and printed scrollbars;
    writes the PDF (A4) and returns its page count."""
    page.emulate_media(media="print")
    page.set_viewport_size({"width": A4_PRINTABLE_PX, "height": 1100})
    name = page_path.name
    problems = [f"{name} (print): table {p}" for p in page.evaluate(TABLE_OVERFLOW_JS, A4_PRINTABLE_PX)]
    problems += [f"{name} (print): scrollbar on {p}" for p in page.evaluate(SCROLLBAR_JS)]
    data = page.pdf(format="A4", print_background=True, prefer_css_page_size=True)
    if pdf is not None:
        pdf.parent.mkdir(parents=True, exist_ok=True)
        pdf.write_bytes(data)
    pages = len(re.findall(rb"/Type\s*/Page[^s]", data))
    return problems, pages


def check_pages(browser, html: Path, print_too: bool = True) -> tuple[list[str], dict[str, int]]:
    """Every check of this module on every page of *html*; problems and printed page counts."""
    problems: list[str] = []
    pages: dict[str, int] = {}
    reviewer = set(reviewer_pages(html))
    for path in all_pages(html):
        page = browser.new_page(viewport=SCREEN)
        problems += load_problems(page, path)
        problems += screen_problems(page, path, path in reviewer)
        if print_too and path in reviewer:
            found, pages[path.name] = print_problems(page, path)
            problems += found
        page.close()
    return problems, pages


def test_every_page_loads_reads_cleanly_and_fits_on_screen_and_in_print(browser, e2e_run):
    problems, pages = check_pages(browser, e2e_run / "html")
    assert not problems, "\n".join(problems)
    assert all(n >= 1 for n in pages.values()), pages


def test_screenshots_of_the_index_and_a_report(browser, e2e_run):
    html = e2e_run / "html"
    SHOTS.mkdir(parents=True, exist_ok=True)
    for name, shot in (("index.html", "index.png"), ("03-pool-report.html", "03-pool-report.png")):
        page = browser.new_page(viewport=SCREEN)
        page.goto((html / name).as_uri(), wait_until="load")
        page.screenshot(path=str(SHOTS / shot), full_page=False)
        page.close()
    page = browser.new_page(viewport=SCREEN)
    page.goto((html / "03-pool-report.html").as_uri(), wait_until="load")
    print_problems(page, html / "03-pool-report.html", pdf=SHOTS / "03-pool-report-print.pdf")
    page.close()
    assert (SHOTS / "index.png").stat().st_size > 10_000
    assert (SHOTS / "03-pool-report-print.pdf").read_bytes().startswith(b"%PDF")


@pytest.fixture(scope="module")
def kirkham_rr_run(tmp_path_factory, e2e_raw) -> Path:
    """``make reproduce SCENARIO=kirkham-like MEASURE=RR`` on the fixture data."""
    out = tmp_path_factory.mktemp("kirkham_rr")
    reproduce_into(out, e2e_raw, "SCENARIO=kirkham-like", "MEASURE=RR")
    return out


def test_settings_of_the_run_are_named_on_every_page_and_in_the_prose(browser, kirkham_rr_run):
    html = kirkham_rr_run / "html"
    page = browser.new_page(viewport=SCREEN)
    page.goto((html / "index.html").as_uri(), wait_until="load")
    index = page.inner_text("body")
    assert "kirkham-like" in index and "risk ratio" in index.lower(), index[:2000]
    problems = []
    for stage in STAGES:
        page.goto((html / f"{stage}-report.html").as_uri(), wait_until="load")
        banner = page.inner_text(".mscmeta-banner")
        if "kirkham-like" not in banner:
            problems.append(f"{stage}: banner does not name the scenario: {banner!r}")
        if stage in ("02-quality-assess", "03-pool", "04-subgroup") and "RR" not in banner:
            problems.append(f"{stage}: banner does not name the measure: {banner!r}")
        if not re.search(r"commit [0-9a-f]{7}", banner) or "data checksum" not in banner.lower():
            problems.append(f"{stage}: banner lacks the commit or the data checksum: {banner!r}")
    page.goto((html / "03-pool-report.html").as_uri(), wait_until="load")
    text = page.inner_text("body").lower()
    assert "risk ratio" in text
    # the paper's own analysis is an odds ratio, and some tests are defined for odds ratios only:
    # those are the only odds ratios the prose of an RR run may name
    allowed = ("published", "paper", "defined for odds ratios", "odds ratios only")
    # the models for sparse data are defined for odds ratios only: that section (the last of the report)
    # compares odds ratios whatever the run's measure, and says so
    text, heading, sparse = text.partition("\nmodels for sparse data\n")
    assert heading and "defined for odds ratios only" in sparse
    odds = [m.start() for m in re.finditer(r"odds ratio", text)]
    assert all(any(a in text[max(0, i - 200): i + 200] for a in allowed) for i in odds), [
        text[max(0, i - 120): i + 60] for i in odds if not any(a in text[max(0, i - 200): i + 200] for a in allowed)]
    page.close()
    assert not problems, "\n".join(problems)
