"""Dashboard page loads on the real 2023 year: cold and warm times per page, in headless Chromium.

Needs the real year in a warehouse first (it is the model benchmark's working folder):

    .venv/bin/python bench/ml_real_2023.py --keep bench/.work/real-2023      # ~20 min, once
    .venv/bin/python bench/dashboard_pages.py --keep bench/.work/real-2023

When the folder has no predictions yet, the last 30 days of 2023 are predicted first
(ml_prediction_job: the best baseline while no model passes the gate).

- cold: the first visit of each page on a freshly started server, in a new browser tab (empty
  caches; includes Streamlit's JavaScript and the session start).
- warm: moving to the page again through the sidebar, in the same session (the way a user moves
  between pages; query results cached). Target: under one second for every default view.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TITLES = {
    "overview": "Market overview",
    "explorer": "Token explorer",
    "categories": "Categories",
    "correlations": "Correlations",
    "predictions": "Predictions",
    "health": "Data health",
}
LAST_DAYS = ("2023-12-01", "2023-12-30")


def _predict_if_missing() -> None:
    import snowflake.connector
    from dagster import DagsterInstance

    from crypto_assets.definitions import build_definitions
    from crypto_assets.services import local_services
    from resources.settings import Settings

    settings = Settings.from_env()
    with local_services(settings, emulator=False, say=lambda _: None):
        with snowflake.connector.connect(**settings.connector_args()) as conn:
            cursor = conn.cursor()
            cursor.execute(
                "SELECT COUNT(*) FROM INFORMATION_SCHEMA.TABLES WHERE TABLE_NAME = 'ML_PERFORMANCE'"
                " AND TABLE_SCHEMA = %(schema)s",
                {"schema": settings.snowflake_schema},
            )
            if cursor.fetchone()[0]:
                return
        started = time.perf_counter()
        result = (
            build_definitions(settings)
            .resolve_job_def("ml_prediction_job")
            .execute_in_process(
                instance=DagsterInstance.get(),
                run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
                tags={
                    "dagster/asset_partition_range_start": LAST_DAYS[0],
                    "dagster/asset_partition_range_end": LAST_DAYS[1],
                },
            )
        )
        assert result.success, "ml_prediction_job failed"
        print(f"predicted {LAST_DAYS[0]}..{LAST_DAYS[1]} in {time.perf_counter() - started:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--keep", required=True, help="the folder of `bench/ml_real_2023.py --keep`")
    parser.add_argument("--screenshots", help="save each page's warm screenshot in this folder")
    args = parser.parse_args()
    keep = Path(args.keep).resolve()
    if not (keep / "lake" / "warehouse").is_dir():
        sys.exit(f"{keep} holds no warehouse: run bench/ml_real_2023.py --keep {keep} first")

    from crypto_assets.services import free_port, start_service
    from dashboard import browser

    os.environ.update(
        LAKE_ROOT=str(keep / "lake"),
        DAGSTER_HOME=str(keep / "dagster"),
        SNOWFLAKE_SCHEMA="BENCH_ML",
        PIPELINE_CONFIG=str(keep / "pipeline.yaml"),
        WAREHOUSE_PORT=str(free_port()),
        DAGSTER_URL="http://127.0.0.1:9",  # no Dagster UI here: the health page says so
    )
    os.environ.pop("SNOWFLAKE_ACCOUNT", None)
    _predict_if_missing()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_service(
        "dashboard",
        ["dashboard", "--port", str(port)],
        lambda: browser.dashboard_ready(url),
        keep / "logs",
        90,
    )
    try:
        cold: dict[str, float] = {}
        warm: dict[str, list[float]] = {name: [] for name in TITLES}
        tables: dict[str, int] = {}
        with browser.browser() as chrome:
            context = chrome.new_context(viewport={"width": 1400, "height": 900})
            for name in TITLES:  # cold: a new tab per page, nothing cached yet
                tab = context.new_page()
                load = browser.load_page(tab, url, name, charts=browser.PAGES[name], screenshot=None)
                cold[name] = load.seconds
                tab.close()
            tab = context.new_page()
            browser.load_page(tab, url, "overview", charts=1, screenshot=None)
            for _ in range(3):  # warm: around the sidebar three times, same session
                for name, title in [*list(TITLES.items())[1:], ("overview", TITLES["overview"])]:
                    shot = Path(args.screenshots) / f"dashboard-{name}.png" if args.screenshots else None
                    load = browser.click_page(tab, title, name, charts=browser.PAGES[name], screenshot=shot)
                    warm[name].append(load.seconds)
                    tables[name] = load.tables
            context.close()
    finally:
        server.stop(timeout=30)

    print("\nDashboard page loads, real 2023 year (33 tokens; 277k hourly rows in GOLD_MARKET_FEATURES)")
    print("default views: last 7 days of data, all tokens, 1h\n")
    print("| page | cold (s) | warm median (s) | warm max (s) | tables |")
    print("|---|---|---|---|---|")
    for name in TITLES:
        runs = sorted(warm[name])
        print(f"| {name} | {cold[name]:.2f} | {runs[len(runs) // 2]:.2f} | {runs[-1]:.2f} | {tables[name]} |")
    slow = [n for n in TITLES if sorted(warm[n])[len(warm[n]) // 2] >= 1.0]
    print("\nwarm loads under one second:", "all pages" if not slow else f"NOT {', '.join(slow)}")


if __name__ == "__main__":
    main()
