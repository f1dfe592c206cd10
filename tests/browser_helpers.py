"""VisualDL in a real headless browser: Debian's chromium driven by Playwright (no downloaded browser)."""

from __future__ import annotations

import contextlib
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling Google's hosts, which a closed
# network refuses many times a second.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SEARCH = "Search tags in RegExp"


@contextlib.contextmanager
def browser_page(**context) -> Iterator:
    """A page in a fresh browser; ``context`` goes to Playwright's ``new_page`` (e.g. ``http_credentials``)."""
    from playwright.sync_api import sync_playwright

    # Not a skip: a missing browser must not pass unnoticed.
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: make tools installs it"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900}, **context)
        finally:
            browser.close()


def _of_run(resp, api: str, tag: str, run_id: str) -> bool:
    if api not in resp.url:
        return False
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(resp.url).query)
    run = query.get("run", [""])[0]
    # Until VisualDL's 20 s cache expires a new run is listed under its folder path.
    return query.get("tag") == [tag] and (run == run_id or run.endswith("/" + run_id))


def _screenshot(page, shot: Path) -> None:
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot))


def _search(page, base_url: str, view: str, run_id: str, tag: str, timeout: float = 60.0) -> list:
    """Open VisualDL's ``view`` page (scalar, image), search ``tag``; return what it lists of the run."""
    page.goto(f"{base_url}/app/{view}", wait_until="load", timeout=60_000)
    search = page.get_by_placeholder(SEARCH)
    search.wait_for(timeout=60_000)
    wanted = f"^{tag}$"
    found: list = []

    def listed(resp) -> None:
        if not found and _of_run(resp, f"/app/api/{view}/list", tag, run_id):
            found.append(resp)

    page.on("response", listed)
    try:
        search.fill(wanted)
        deadline = time.monotonic() + timeout
        while not found:
            if time.monotonic() > deadline:
                raise AssertionError(f"VisualDL never answered the search for {tag} of {run_id} on {page.url}")
            # While the page is still loading it may draw the box anew, empty (about one load in ten).
            if search.input_value() != wanted:
                search.fill(wanted)
            page.wait_for_timeout(100)
    finally:
        page.remove_listener("response", listed)
    return found[0].json()["data"]


def show_scalar_chart(page, base_url: str, run_id: str, tag: str) -> list:
    """On ``page``: open the Scalars page, search ``tag``, wait until the chart is drawn; return its points."""
    points = _search(page, base_url, "scalar", run_id, tag)
    page.get_by_text("Search Result").wait_for(timeout=30_000)
    # ECharts draws the chart, its title included, on a canvas: a drawn chart has many colours.
    page.wait_for_function(
        """() => { const c = document.querySelectorAll('canvas');
                   if (c.length !== 1 || c[0].width < 100) return false;
                   const d = c[0].getContext('2d').getImageData(0, 0, c[0].width, c[0].height).data;
                   const seen = new Set();
                   for (let i = 0; i < d.length; i += 16) seen.add((d[i] << 16) | (d[i+1] << 8) | d[i+2]);
                   return seen.size > 40; }""",
        timeout=30_000,
    )
    return points


def sees_scalar_chart(base_url: str, run_id: str, tag: str, shot: Path, **context) -> list:
    """Open the Scalars page, search ``tag``, wait until the chart is drawn; return its points."""
    with browser_page(**context) as page:
        points = show_scalar_chart(page, base_url, run_id, tag)
        page.wait_for_timeout(800)  # let the line animation finish before the screenshot
        _screenshot(page, shot)
        return points


def sees_image(base_url: str, run_id: str, tag: str, shot: Path) -> list:
    """Open the Image page, search ``tag``, wait until the run's picture is decoded; return its list."""
    with browser_page() as page:
        listed = _search(page, base_url, "image", run_id, tag)
        page.wait_for_function(
            "() => Array.from(document.querySelectorAll('img')).some("
            "i => i.src.startsWith('blob:') && i.complete && i.naturalWidth > 32)",
            timeout=30_000,
        )
        _screenshot(page, shot)
        return listed
