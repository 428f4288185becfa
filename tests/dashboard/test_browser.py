"""The dashboard for real: served by `crypto-analytics dashboard` on the warehouse a fresh
`crypto-analytics run` filled, every page opened in headless Chromium (Debian's package, driven by
Playwright). Screenshots are kept as test artifacts in `.test-artifacts/dashboard/`."""

from pathlib import Path

import pytest

from crypto_assets.services import free_port, start_service
from dashboard import browser

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parents[2] / ".test-artifacts" / "dashboard"


@pytest.fixture
def dashboard_url(fresh_run, tmp_path):
    assert fresh_run.run.returncode == 0, fresh_run.run.stderr[-2000:]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service = start_service(
        "dashboard",
        ["dashboard", "--port", str(port)],
        lambda: browser.dashboard_ready(url),
        tmp_path,
        env=fresh_run.env,
    )
    try:
        yield url
    finally:
        service.stop(timeout=30)
    # It reused the suite's warehouse and left it running for the others.
    assert "embedded warehouse: reusing" in service.log_path.read_text()


def test_every_page_renders_its_charts_in_chromium(dashboard_url):
    assert browser.chromium_path(), "chromium is missing: `make browser` (part of `make test`) installs it"
    loads = browser.visit_all(dashboard_url, ARTIFACTS)
    assert [load.page for load in loads] == list(browser.PAGES)
    for load in loads:
        # visit_all already failed on an exception box or a missing chart.
        assert load.charts >= browser.PAGES[load.page], load
        # No table on the explorer's default view, none on Live without a stream (a note instead).
        assert load.tables >= (0 if load.page in ("explorer", "live") else 1), load
        assert load.screenshot is not None and load.screenshot.stat().st_size > 20_000, load


def test_the_sidebar_keeps_its_choices_across_pages(dashboard_url):
    from playwright.sync_api import expect

    with browser.browser() as chrome:
        page = chrome.new_page(viewport={"width": 1400, "height": 900})
        browser.load_page(page, dashboard_url, "overview", charts=1, screenshot=None)
        sidebar = page.get_by_test_id("stSidebar")
        sidebar.get_by_text("1d", exact=True).click()
        page.wait_for_timeout(500)
        load = browser.click_page(page, "Token explorer", "explorer", charts=1, screenshot=None)
        assert load.charts == 1
        expect(page.get_by_test_id("stMain").get_by_text("1d bars observed", exact=False)).to_be_visible()
        expect(sidebar.get_by_label("1d", exact=True)).to_be_checked()
        # A dashboard for readers: Streamlit's Deploy button is not in the header.
        expect(page.get_by_text("Deploy", exact=True)).to_have_count(0)
