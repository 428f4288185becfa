"""The numbers the pages show, on small hand-made frames."""

from datetime import date

import numpy as np
import pandas as pd
import pytest

from dashboard import analytics, health


def test_snapshot_takes_the_last_observed_bar_and_compares_with_the_day_before():
    times = pd.date_range("2024-03-01", periods=48, freq="h")
    recent = pd.DataFrame(
        {
            "token": "BTC",
            "category": "Layer 1",
            "bar_time": times,
            "close": np.arange(48, dtype=float) + 100,
            "return_1h": 0.01,
            "return_24h": 0.05,
            "quote_volume": [1.0] * 24 + [3.0] * 24,
            "market_cap_usd": [100.0] * 24 + [110.0] * 24,
            "is_gap": [False] * 47 + [True],
        }
    )
    snap = analytics.snapshot(recent, pd.DataFrame({"token": ["BTC"], "return_7d": [0.2]}))
    row = snap.iloc[0]
    assert row["bar_time"] == times[46] and row["close"] == 146.0  # the gap bar is not "latest"
    assert row["volume_24h_usd"] == pytest.approx(1.0 + 23 * 3.0)  # the 24h up to bar 46
    assert row["change_7d"] == 0.2 and row["market_cap_change"] == pytest.approx(0.1)


def test_on_grid_turns_missing_and_gap_slots_into_blanks():
    bars = pd.DataFrame(
        {
            "bar_time": pd.to_datetime(["2024-03-01 00:00", "2024-03-01 01:00", "2024-03-01 03:00"]),
            "close": [1.0, 2.0, 4.0],
            "is_gap": [False, True, False],
        }
    )
    grid = analytics.on_grid(bars, "1h", pd.Timestamp("2024-03-01"), pd.Timestamp("2024-03-01 05:00"))
    assert grid["close"].tolist()[:4] == [
        1.0,
        pytest.approx(np.nan, nan_ok=True),
        pytest.approx(np.nan, nan_ok=True),
        4.0,
    ]
    assert grid["is_gap"].tolist() == [False, True, True, False, True]


def test_index_levels_compound_returns_and_relative_performance_centres_on_the_average():
    index = pd.DataFrame(
        {
            "category": ["A", "A", "B", "B"],
            "bar_time": pd.to_datetime(["2024-03-01 00:00", "2024-03-01 01:00"] * 2),
            "equal_weighted_return": [0.10, 0.10, None, -0.10],
            "cap_weighted_return": [0.0, 0.0, 0.0, 0.0],
        }
    )
    levels = analytics.index_levels(index)
    a = levels[levels["category"] == "A"]["equal_weighted_level"].tolist()
    b = levels[levels["category"] == "B"]["equal_weighted_level"].tolist()
    assert a == pytest.approx([110.0, 121.0]) and b == pytest.approx([100.0, 90.0])
    relative = analytics.relative_performance(levels)
    last = relative[relative["bar_time"] == relative["bar_time"].max()].set_index("category")["relative_pct"]
    assert last["A"] == pytest.approx((121 / 105.5 - 1) * 100) and last.sum() == pytest.approx(0.0, abs=1e-9)


def test_cluster_order_puts_co_moving_tokens_together():
    rng = np.random.default_rng(1)
    base_1, base_2 = rng.normal(size=200), rng.normal(size=200)
    series = {
        "A1": base_1 + rng.normal(0, 0.1, 200),
        "B1": base_2 + rng.normal(0, 0.1, 200),
        "A2": base_1 + rng.normal(0, 0.1, 200),
        "B2": base_2 + rng.normal(0, 0.1, 200),
    }
    returns = pd.DataFrame(
        [
            {"token": t, "bar_time": i, "log_return": v}
            for t, values in series.items()
            for i, v in enumerate(values)
        ]
    )
    order = analytics.cluster_order(analytics.correlation_from_returns(returns))
    assert abs(order.index("A1") - order.index("A2")) == 1 and abs(order.index("B1") - order.index("B2")) == 1


def test_performance_summary_weights_days_by_their_outcomes():
    perf = pd.DataFrame(
        {
            "dt": [date(2024, 3, 1), date(2024, 3, 2), date(2024, 3, 3)],
            "scope": "all",
            "predictor": "served",
            "outcomes": [10, 30, 0],
            "accuracy": [0.4, 0.6, None],
            "brier": [0.2, 0.3, None],
            "ic": [None, 0.1, None],
        }
    )
    row = analytics.latest_performance(perf).iloc[0]
    assert row["outcomes"] == 40 and row["days"] == 2
    assert row["accuracy"] == pytest.approx(0.55) and row["ic"] == pytest.approx(0.1)


def test_lake_freshness_reads_the_partition_folders(tmp_path):
    for day in ("2024-03-01", "2024-03-02"):
        (tmp_path / "bronze" / "bronze_klines" / f"dt={day}").mkdir(parents=True)
    (tmp_path / "silver" / "empty_asset").mkdir(parents=True)
    fresh = health.lake_freshness(tmp_path, date(2024, 3, 5))
    assert fresh.to_dict("records") == [
        {"layer": "bronze", "asset": "bronze_klines", "first_day": date(2024, 3, 1), "last_day": date(2024, 3, 2),
         "partitions": 2, "days_behind": 3, "missing_days": 0, "missing": ""}
    ]  # fmt: skip


def test_dagster_status_says_when_the_ui_is_down():
    from crypto_assets.services import free_port

    status = health.dagster_status(f"http://127.0.0.1:{free_port()}", timeout=1)
    assert not status.reachable and "ConnectError" in (status.error or "")


def test_links_open_the_public_url_while_queries_go_to_the_service(monkeypatch):
    # In the containers the dashboard asks http://webserver:3000; the reader's browser cannot.
    import httpx

    body = {"data": {"assetNodes": [{"assetKey": {"path": ["bronze_klines"]}, "groupName": "bronze",
             "assetMaterializations": [{"timestamp": "1700000000000", "runId": "r1"}],
             "assetChecksOrError": {"checks": [{"name": "rows", "executionForLatestMaterialization":
             {"status": "SUCCEEDED", "runId": "r1", "timestamp": 1700000000}}]}}]}}  # fmt: skip
    asked = []

    def post(url, **_):
        asked.append(url)
        return httpx.Response(200, json=body, request=httpx.Request("POST", url))

    monkeypatch.setattr(health.httpx, "post", post)
    monkeypatch.setenv("DAGSTER_PUBLIC_URL", "http://127.0.0.1:3000")
    status = health.dagster_status("http://webserver:3000")
    assert asked == ["http://webserver:3000/graphql"]
    assert status.assets["link"].tolist() == ["http://127.0.0.1:3000/assets/bronze_klines"]
    assert status.checks["link"].tolist() == ["http://127.0.0.1:3000/runs/r1"]
    monkeypatch.delenv("DAGSTER_PUBLIC_URL")
    assert health.dagster_status("http://webserver:3000").assets["link"].tolist() == [
        "http://webserver:3000/assets/bronze_klines"
    ]


@pytest.mark.parametrize(
    ("price", "shown"),
    [
        (8.08e-06, "0.00000808"),  # SHIB: was 0.000008
        (1.089e-05, "0.00001089"),  # PEPE: was 0.00001
        (1.2345678e-06, "0.0000012346"),
        (0.5, "0.50"),
        (1.0003, "1.0003"),
        (23.456789, "23.457"),
        (101234.567, "101,234.57"),
        (0.0, "0.00"),
        (float("nan"), ""),
    ],
)
def test_prices_keep_five_significant_digits_at_any_magnitude(price, shown):
    assert analytics.price_text(price) == shown


def test_failing_checks_are_named():
    checks = pd.DataFrame(
        [
            {
                "asset": "raw_klines",
                "check": "token_coverage",
                "status": "FAILED",
                "severity": "WARN",
                "partition": "2026-12-04",
            },
            {
                "asset": "bronze_klines",
                "check": "ohlc_consistent",
                "status": "SUCCEEDED",
                "severity": None,
                "partition": None,
            },
            {
                "asset": "gold_x",
                "check": "schema",
                "status": "EXECUTION_FAILED",
                "severity": None,
                "partition": None,
            },
        ]
    )
    assert health.failing_checks(checks) == ["raw_klines.token_coverage (WARN, 2026-12-04)", "gold_x.schema"]
    assert health.failing_checks(pd.DataFrame()) == []


def test_days_never_run_are_listed_between_a_tables_first_and_last(tmp_path):
    """After a backfill of two days 10 days back, data health called every asset fresh with 0
    gaps while the default 7-day view held five days that were never run."""
    from datetime import date, timedelta

    folder = tmp_path / "silver" / "silver_bars_1h"
    today = date(2026, 12, 6)
    for back in (11, 10, 1):
        (folder / f"dt={(today - timedelta(days=back)).isoformat()}").mkdir(parents=True)
    row = health.lake_freshness(tmp_path, today).iloc[0]
    assert (
        row["missing_days"] == 8
        and row["missing"] == "2026-11-27, 2026-11-28, 2026-11-29, ..., 2026-12-03, 2026-12-04"
    )
    assert health.status(row["days_behind"], row["missing_days"]) == "fresh, 8 day(s) missing"
    assert health.status(None, None) == "not loaded yet" and health.status(3, 0) == "stale (3 days)"


def test_the_explorer_grid_tells_not_loaded_from_exchange_gaps():
    times = pd.to_datetime(["2026-12-01 00:00", "2026-12-01 01:00", "2026-12-01 03:00"])
    bars = pd.DataFrame({"bar_time": times, "close": [1.0, None, 1.2], "is_gap": [False, True, False]})
    grid = analytics.on_grid(bars, "1h", pd.Timestamp("2026-12-01"), pd.Timestamp("2026-12-01 05:00"))
    assert grid["is_gap"].tolist() == [False, True, True, False, True]
    assert grid["not_loaded"].tolist() == [False, False, True, False, True]  # 01:00 is the exchange's gap
