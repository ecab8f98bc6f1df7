"""The reviewer HTML loads in a real headless browser (Debian's chromium): the index and
every report load, no image is broken, every link resolves; a screenshot of the index
is saved to outputs/screenshots/."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

from conftest import ROOT, STAGES

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("no chromium on this machine (apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _check_page(browser, page_path: Path, screenshot: Path | None = None) -> list[str]:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    failed_requests: list[str] = []
    page.on("requestfailed", lambda r: failed_requests.append(r.url))
    response = page.goto(page_path.as_uri(), wait_until="load")
    problems = []
    if response is not None and not response.ok:
        problems.append(f"{page_path.name}: did not load")
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
    problems += [f"{page_path.name}: request failed {u}" for u in failed_requests]
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=False)
    page.close()
    return problems


def test_index_and_every_report_load_without_broken_images_or_links(browser, e2e_run):
    html = e2e_run / "html"
    shot = ROOT / "outputs" / "screenshots" / "index-e2e.png"
    problems = _check_page(browser, html / "index.html", screenshot=shot)
    for stage in STAGES:
        for name in (f"{stage}.html", f"{stage}-report.html"):
            problems += _check_page(browser, html / name)
    assert not problems, "\n".join(problems)
    assert shot.stat().st_size > 10_000
