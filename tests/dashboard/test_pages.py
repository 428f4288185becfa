"""Every page through Streamlit's AppTest, on the synthetic warehouse (fakesnow in-process)."""

import json
from datetime import date
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import data

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
PAGES = [
    "views/overview.py",
    "views/explorer.py",
    "views/categories.py",
    "views/correlations.py",
    "views/predictions.py",
    "views/venues.py",
    "views/health.py",
]
INJECTION = "BTC'); DROP TABLE GOLD_MARKET_FEATURES; --"


# The entry script's sidebar, then one view, as `app.py` runs them under st.navigation. (Streamlit
# 1.67's AppTest runs a navigation page's file alone when switching pages and does not re-run the
# page it is on, so the pages are driven through this harness; the browser test goes through
# the real navigation.)
HARNESS = """
import runpy
import streamlit as st
from dashboard import ui
st.sidebar.title("crypto-analytics")
st.session_state["filters"] = ui.sidebar()
runpy.run_path({page!r}, run_name="__main__")
"""


def _open(page: str | None = None, **widgets: object) -> AppTest:
    """A session on ``page`` with the widgets set (by key) as a user would have left them."""
    script = Path(APP).parent / (page or PAGES[0])
    at = AppTest.from_string(HARNESS.format(page=str(script)), default_timeout=60)
    for key, value in widgets.items():
        at.session_state[key] = value
    return at.run()


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [m.value for m in at.caption]
    parts += [e.value for kind in (at.info, at.warning, at.error, at.success) for e in kind]
    return "\n".join(str(p) for p in parts)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_the_warehouse(warehouse, page):
    at = _open(page)
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    # A chart on every page, a CSV download under every table.
    charts = at.get("plotly_chart")
    tables = at.dataframe
    assert charts or page == "views/health.py", page
    assert tables or page == "views/explorer.py", page  # the explorer's bars: a chart and a CSV
    assert len(at.get("download_button")) >= max(len(tables), 1)


def test_the_category_views_and_weightings(warehouse):
    for view in ("Index level", "Relative", "Dispersion"):
        for weighting in ("equal_weighted", "cap_weighted"):
            at = _open("views/categories.py", category_view=view, category_weighting=weighting)
            assert not at.exception and len(at.get("plotly_chart")) == 1, (view, weighting)


def test_the_sidebar_drives_the_queries(warehouse):
    at = _open()
    # Default: the last 7 days clipped to the data (3 days here), every token (no token filter).
    assert warehouse.params_of("recent_hourly")[-1] == {"until": "2024-03-03"}
    assert at.date_input(key="dates").value == (date(2024, 3, 1), date(2024, 3, 3))
    at.multiselect(key="categories").select("Layer 1").run()
    assert warehouse.params_of("recent_hourly")[-1] == {"until": "2024-03-03", "tok0": "BTC", "tok1": "ETH"}
    at.date_input(key="dates").set_value((date(2024, 3, 1), date(2024, 3, 2))).run()
    assert warehouse.params_of("recent_hourly")[-1]["until"] == "2024-03-02"
    assert not at.exception

    at = _open("views/explorer.py", categories=["Layer 1"], interval="1d")
    assert at.selectbox(key="explorer_token").options == ["BTC", "ETH"]
    at.selectbox(key="explorer_token").set_value("ETH").run()
    assert warehouse.params_of("bars")[-1] == {"token": "ETH", "start": "2024-03-01", "end": "2024-03-03"}
    # The interval picks the table from the fixed map, never from the widget's text.
    sql = [s for n, s, _ in warehouse.calls if n == "bars"][-1]
    assert "FROM GOLD_DAILY_MARKET_FEATURES" in sql
    at.radio(key="interval").set_value("1h").run()
    assert "FROM GOLD_MARKET_FEATURES" in [s for n, s, _ in warehouse.calls if n == "bars"][-1]

    _open("views/categories.py", categories=["Layer 1"], interval="1d")
    assert warehouse.params_of("category_index")[-1] == {
        "interval": "1d",
        "start": "2024-03-01",
        "end": "2024-03-03",
    }
    assert warehouse.params_of("category_dispersion")[-1]["tok1"] == "ETH"
    at = _open("views/correlations.py")
    at.selectbox(key="correlation_window").set_value("7 days").run()
    assert warehouse.params_of("hourly_log_returns")[-1] == {"start": "2024-02-26", "end": "2024-03-03"}
    assert not at.exception


def test_explorer_draws_an_outage_as_a_gap(warehouse):
    at = _open("views/explorer.py", categories=["Meme"])
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["layout"]["yaxis"]["title"]["text"] == "price (USDT)"
    assert spec["layout"]["yaxis2"]["title"]["text"] == "volume (DOGE)"
    assert at.selectbox(key="explorer_token").value == "DOGE"
    assert any("2 missing or gap bars" in c.value for c in at.caption), [c.value for c in at.caption]


@pytest.mark.parametrize("page", PAGES)
def test_an_injection_attempt_in_every_text_widget_changes_nothing(warehouse, page):
    at = _open(page)
    assert at.text_input, "the sidebar's token search is on every page"
    before = len(warehouse.calls)
    for widget in at.text_input:
        widget.set_value(INJECTION)
    at.run()
    assert not at.exception
    assert at.text_input(key="token_search").value == INJECTION
    for _, sql, params in warehouse.calls[before:]:
        assert "DROP" not in sql and INJECTION not in str(params)
    # The table is still there, with its rows.
    rows = warehouse.fetch("SELECT COUNT(*) AS n FROM GOLD_MARKET_FEATURES", {})
    assert int(rows["n"].iloc[0]) == 6 * 72


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize(("search", "categories"), [("NOPE", []), (INJECTION, []), ("BTC", ["Meme"])])
def test_a_search_that_matches_no_token_says_so_and_shows_nothing_else(warehouse, page, search, categories):
    at = _open(page, token_search=search, categories=categories)
    assert not at.exception
    assert [i.value for i in at.info] == [
        f"No token matches “{search}”"
        + (" in Meme" if categories else "")
        + ". Clear the search (or the categories) to see every token."
    ]
    assert not at.get("plotly_chart") and not at.dataframe and not at.metric


def test_every_page_says_when_the_prices_are_the_emulators(warehouse, monkeypatch):
    monkeypatch.delenv("BINANCE_REST_URL", raising=False)  # the embedded defaults: the emulator
    at = _open(PAGES[0])
    assert any("synthetic prices, not a real market" in c.value for c in at.sidebar.caption)
    monkeypatch.setenv("BINANCE_REST_URL", "https://api.binance.com")
    at = _open(PAGES[0])
    assert not any("synthetic" in c.value for c in at.sidebar.caption)


def test_a_catalogue_choice_outside_its_fixed_list_is_refused():
    with pytest.raises(data.DashboardDataError, match="unknown choice"):
        data.bars("1h; DROP TABLE X", "BTC", date(2024, 3, 1), date(2024, 3, 1))
    with pytest.raises(data.DashboardDataError, match="only runs single SELECT"):
        data.SnowflakeBackend.fetch(None, "DELETE FROM GOLD_MARKET_FEATURES", {})  # type: ignore[arg-type]


@pytest.mark.parametrize("page", PAGES)
def test_an_empty_warehouse_says_so(empty_warehouse, page):
    at = _open(page)
    assert not at.exception
    assert "holds no gold rows yet" in _texts(at)


def test_a_missing_table_says_which_and_how_to_load_it(warehouse):
    # Drop the model's table and the category index: a warehouse loaded before they existed.
    import snowflake.connector

    from resources.settings import Settings

    with snowflake.connector.connect(**Settings.from_env().connector_args()) as conn:
        conn.cursor().execute("DROP TABLE ML_PREDICTIONS")
        conn.cursor().execute("DROP TABLE GOLD_CATEGORY_INDEX")
    at = _open("views/predictions.py")
    assert not at.exception
    assert "No predictions yet" in _texts(at)
    at = _open("views/categories.py")
    assert not at.exception
    assert "no table GOLD_CATEGORY_INDEX yet" in _texts(at)
    at = _open("views/health.py")
    assert not at.exception and "not loaded yet" in at.dataframe[0].value.to_string()


def test_an_unreachable_warehouse_is_a_message_not_a_traceback(monkeypatch):
    import streamlit as st

    from crypto_assets.services import free_port

    monkeypatch.delenv("SNOWFLAKE_ACCOUNT", raising=False)
    monkeypatch.setenv("WAREHOUSE_PORT", str(free_port()))  # nothing listens there
    monkeypatch.setattr(data, "_backend_factory", data._backend_factory)
    st.cache_data.clear()
    for page in (None, "views/health.py"):
        at = _open(page)
        assert not at.exception
        assert "is not reachable" in _texts(at) and "make dashboard" in _texts(at)


def test_prediction_performance_by_day_and_by_category(warehouse):
    for by in ("day", "category"):
        for metric in ("accuracy", "ic", "brier"):
            at = _open("views/predictions.py", prediction_breakdown=by, prediction_metric=metric)
            # The volatility forecast's three (latest, history, walk-forward), P(up), performance.
            assert not at.exception and len(at.get("plotly_chart")) == 5, (by, metric)
    summary = at.dataframe[-1].value
    day = json.loads(
        _open("views/predictions.py", prediction_breakdown="day").get("plotly_chart")[-1].proto.spec
    )
    # Days on a category axis, named as days: one day is not drawn as milliseconds around midnight.
    assert day["layout"]["xaxis"]["type"] == "category"
    assert all(len(x) == 10 and x[4] == "-" for trace in day["data"] for x in trace["x"])
    served = summary[(summary["scope"] == "all") & (summary["predictor"] == "served")].iloc[0]
    assert served["outcomes"] == 48 and served["accuracy"] == 0.55


def test_the_health_page_lists_the_recorded_failed_runs(warehouse, tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("LAKE_ROOT", str(tmp_path))
    at = _open("views/health.py")
    assert "No failed run recorded" in _texts(at)
    (tmp_path / "ops").mkdir()
    record = {
        "run_id": "abc123",
        "job": "market_data_job",
        "partition": "2024-03-01",
        "recorded_at": "2024-03-02T00:20:00+00:00",
        "message": "run failed",
        "steps": [{"step": "gold_market_features", "error": "OperationalError: warehouse down"}],
    }
    (tmp_path / "ops" / "run_failures.jsonl").write_text(json.dumps(record) + "\n")
    at = _open("views/health.py")
    assert not at.exception and "1 failed run(s) recorded" in _texts(at)
    shown = next(t.value for t in at.dataframe if "failed_steps" in t.value.columns)
    assert shown.iloc[0]["error"] == "OperationalError: warehouse down"
    assert shown.iloc[0]["link"] == "http://127.0.0.1:9/runs/abc123"


def test_the_venues_page_shows_every_venue_the_basis_and_a_de_pegged_quote(warehouse):
    at = _open("views/venues.py")
    assert not at.exception, at.exception
    # BTC has three series, so it is offered first; three charts: prices, basis, quotes in USD.
    assert at.selectbox(key="venue_token").value.startswith("BTC (3 series)")
    assert len(at.get("plotly_chart")) == 3
    texts = _texts(at)
    assert "3 hour(s) outside it, worst 0.8800 (USDC via cross:binance_us/spot)" in texts
    summary = at.dataframe[0].value
    assert set(summary["symbol"]) == {"BTCUSDT", "BTCUSD", "BTCUSDC"}
    usdc = summary[summary["symbol"] == "BTCUSDC"].iloc[0]
    assert usdc["quote_asset"] == "USDC" and usdc["max_abs_basis_usd_bps"] == pytest.approx(5.0, abs=0.01)
    # A token on one venue only: no basis chart, a sentence on how to bring other venues in.
    at = _open("views/venues.py", venue_token="ETH (1 series)")
    assert len(at.get("plotly_chart")) == 2
    assert "--venue binance_us" in _texts(at)


def test_the_volatility_forecast_beside_its_baselines_and_against_realised(warehouse):
    at = _open("views/predictions.py")
    assert not at.exception
    texts = _texts(at)
    assert "Served by **harx-20240303**" in texts and "QLIKE 0.2100 beats" in texts
    latest = at.dataframe[0].value
    assert set(latest["token"]) == {"BTC", "ETH", "DOGE", "UNI", "LINK"}  # no stablecoin
    assert {"served forecast %", "HAR-RV %", "last 24h %"} <= set(latest.columns)
    history = json.loads(at.get("plotly_chart")[1].proto.spec)
    assert {trace["name"] for trace in history["data"]} == {"realised", "served forecast", "HAR-RV", "EWMA"}
    gate = at.dataframe[1].value
    assert (
        list(gate["metric"]) == ["qlike", "rmse_log_var"] and gate["model"].iloc[0] < gate["har_rv"].iloc[0]
    )
    # The direction model lost: said next to its P(up), with the candidate's verdict.
    assert "Brier 0.25010 is not below" not in texts  # served by a model in this warehouse
    at.selectbox(key="vol_token").set_value("DOGE").run()
    assert not at.exception and "DOGE: each hour's forecast" in _texts(at)


def test_a_refused_volatility_model_says_why_with_its_numbers(warehouse):
    import snowflake.connector

    from resources.settings import Settings

    with snowflake.connector.connect(**Settings.from_env().connector_args()) as conn:
        conn.cursor().execute("UPDATE VOL_FORECASTS SET MODEL_VERSION = 'baseline:ewma'")
        conn.cursor().execute(
            "UPDATE ML_MODEL_RUNS SET PASSED = FALSE, VERDICT = 'QLIKE 0.2535 is not below the best"
            " baseline''s (ewma: 0.2368)' WHERE KIND = 'volatility'"
        )
        conn.cursor().execute("UPDATE ML_PREDICTIONS SET MODEL_VERSION = 'baseline:base_rate'")
    at = _open("views/predictions.py")
    assert not at.exception
    texts = _texts(at)
    assert "No volatility model has passed its gate yet" in texts and "**ewma**" in texts
    assert "QLIKE 0.2535 is not below the best baseline's (ewma: 0.2368)" in texts
    assert "No direction model has beaten its baselines" in texts and "Brier 0.25010 is not below" in texts
