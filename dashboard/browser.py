"""Open every page of a running dashboard in headless Chromium: wait for its charts, time it,
save a screenshot. Used by the browser test, the page-load benchmark and `docs/` screenshots.

Playwright drives Debian's ``chromium`` (``executable_path``); it never downloads a browser.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# url_path of each page (dashboard/app.py) and how many Plotly charts its default view draws.
PAGES: dict[str, int] = {
    "overview": 1,
    "explorer": 1,
    "categories": 1,
    "correlations": 2,
    "predictions": 3,  # volatility forecast, forecast vs realised, P(up); more once outcomes are known
    "venues": 1,  # prices per venue (the basis needs a second venue, quotes in USD a USD price)
    "live": 0,  # the live minutes' chart needs the stream (`make live`); without it, a note
    "health": 0,
}
DEFAULT_PAGE = "overview"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


class PageProblem(AssertionError):
    pass


def dashboard_ready(url: str) -> bool:
    """Streamlit's own health endpoint answers once the server can take sessions."""
    import httpx

    try:
        return httpx.get(f"{url.rstrip('/')}/_stcore/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def chromium_path() -> str | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class PageLoad:
    page: str
    seconds: float
    charts: int
    tables: int
    screenshot: Path | None


@contextmanager
def browser(executable: str | None = None) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    path = executable or chromium_path()
    if path is None:
        raise PageProblem("no chromium on PATH: `make browser` installs Debian's package")
    with sync_playwright() as playwright:
        chrome = playwright.chromium.launch(
            executable_path=path, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield chrome
        finally:
            chrome.close()


def load_page(
    page: Any, base_url: str, name: str, *, charts: int, screenshot: Path | None, timeout_s: float = 90
) -> PageLoad:
    """Navigate to one page and wait until Streamlit has finished running it and drawn its charts.
    Raises PageProblem when Streamlit shows an exception box or a chart is missing."""
    started = time.perf_counter()
    path = "" if name == DEFAULT_PAGE else name  # the default page lives at the root URL
    page.goto(f"{base_url.rstrip('/')}/{path}", wait_until="domcontentloaded")
    ready_at = _wait_until_idle(page, charts, timeout_s)
    return _inspect(page, name, ready_at - started, charts, screenshot)


def click_page(page: Any, title: str, name: str, *, charts: int, screenshot: Path | None) -> PageLoad:
    """Move to another page through the sidebar's navigation, in the same session (warm caches,
    the sidebar's choices kept), as a user does."""
    started = time.perf_counter()
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    page.wait_for_url(f"**/{'' if name == DEFAULT_PAGE else name}", timeout=30_000)
    ready_at = _wait_until_idle(page, charts, 90, title)
    return _inspect(page, name, ready_at - started, charts, screenshot)


# Evaluated in the page on every animation frame (no round trip per check): has the run for
# this page finished, with its own title on screen and nothing spinning?
_FINISHED = """([title]) => {
  if (document.querySelector("[data-testid='stException']")) return true;
  const app = document.querySelector("[data-testid='stApp']");
  if (!app || app.getAttribute("data-test-script-state") !== "notRunning") return false;
  if (document.querySelector("[data-testid='stSpinner']")) return false;
  const h1 = document.querySelector("[data-testid='stMain'] h1");
  return !!h1 && (!title || h1.innerText.trim() === title);
}"""
_DRAWN = """([charts]) => document.querySelectorAll(".js-plotly-plot .main-svg").length >= charts
  || !!document.querySelector("[data-testid='stException']")"""


def _wait_until_idle(page: Any, charts: int, timeout_s: float, title: str | None = None) -> float:
    """Streamlit marks the app ``data-test-script-state="notRunning"`` when a run has finished;
    a page is ready when that holds with its title and charts drawn, and nothing is spinning.
    (After a click the previous page stays on screen until the new run replaces it, hence the
    title.) Returns the moment (``time.perf_counter``) it was ready; it must still be so 0.15 s
    later, which is not counted."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        remaining_ms = max(1.0, (deadline - time.monotonic()) * 1000)
        try:
            page.wait_for_function(_FINISHED, arg=[title], polling="raf", timeout=remaining_ms)
        except PlaywrightTimeout:
            break
        try:
            # Charts are drawn a moment after the run ends; a page that stays without them is
            # reported by _inspect rather than waited on.
            page.wait_for_function(_DRAWN, arg=[charts], polling="raf", timeout=5_000)
        except PlaywrightTimeout:
            return time.perf_counter()
        ready_at = time.perf_counter()
        page.wait_for_timeout(150)
        if page.evaluate(_FINISHED, [title]) and page.evaluate(_DRAWN, [charts]):
            return ready_at
    raise PageProblem(f"page did not finish within {timeout_s:.0f} s")


def _inspect(page: Any, name: str, seconds: float, charts: int, screenshot: Path | None) -> PageLoad:
    exceptions = page.locator("[data-testid='stException']")
    if exceptions.count():
        raise PageProblem(f"{name}: Streamlit exception: {exceptions.first.inner_text()[:500]}")
    drawn = page.locator(".js-plotly-plot").count()
    if drawn < charts:
        raise PageProblem(f"{name}: {drawn} Plotly chart(s), expected {charts}")
    tables = page.locator("[data-testid='stDataFrame']").count()
    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
    return PageLoad(name, seconds, drawn, tables, screenshot)


def visit_all(
    base_url: str,
    out_dir: Path | None,
    pages: Sequence[str] = tuple(PAGES),
    *,
    executable: str | None = None,
    width: int = 1400,
) -> list[PageLoad]:
    """Every page once, each in a fresh tab: (name, seconds, charts, tables, screenshot)."""
    loads = []
    with browser(executable) as chrome:
        context = chrome.new_context(viewport={"width": width, "height": 900})
        for name in pages:
            tab = context.new_page()
            shot = out_dir / f"dashboard-{name}.png" if out_dir else None
            loads.append(load_page(tab, base_url, name, charts=PAGES[name], screenshot=shot))
            tab.close()
        context.close()
    return loads
