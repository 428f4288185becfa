"""The documented commands as a user types them, on a fresh lake: `crypto-analytics run` (which
first fetches the look-back history at the exchange's 1h and 1d grain, so indicators are filled
from day one), then `sql`.

To stay fast: three tokens, one day, and an EMA tolerance of 1e-2 instead of 1e-12, which shortens
the look-back the features need (and so the warm-up `auto` derives from it) from 605 to 102 days;
the warm-up logic is the same. `bench/run_footprint.py` measures the defaults on the whole universe."""

import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import snowflake.connector

from crypto_assets.history import WARM_HOURLY_FEATURES, non_null_shares_sql, warm_daily_features
from resources.settings import Settings
from tests.conftest import FRESH_RUN_DAY as DAY
from tests.conftest import FRESH_RUN_TOKENS as TOKENS

pytestmark = pytest.mark.integration


def _shares(settings: Settings, table: str, columns: list[str]) -> dict[str, dict[str, float]]:
    with snowflake.connector.connect(**settings.connector_args()) as conn:
        cursor = conn.cursor()
        cursor.execute(non_null_shares_sql(table, columns))
        return {row[0]: dict(zip(columns, map(float, row[1:]), strict=True)) for row in cursor.fetchall()}


def _python(code: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crypto_assets.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_a_fresh_lake_run_is_warm_then_sql(fresh_run, monkeypatch):
    env = fresh_run.env
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    look_back = _python("from crypto_assets.history import history_days as h; print(h('1d'), h('1h'))", env)
    assert look_back == "102 30"
    run = fresh_run.run
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    assert "warm-up: 102 day(s)" in out and "1h: 30 day(s)" in out
    assert "exchange emulator: reusing" in out and "embedded warehouse: reusing" in out
    for asset in (
        "raw_klines",
        "raw_coingecko_markets",
        "bronze_klines",
        "silver_features_1h",
        "gold_market_features",
        "gold_correlations",
        "gold_venue_prices",
        "gold_bars_5m",
    ):
        assert asset in out
    assert "Done: 1 partition(s)" in out and "crypto-analytics sql" in out
    # One day has no known 24h outcome yet: no model can be trained, the base rate predicts.
    assert "no direction or volatility model serves yet: training" in out
    assert "direction model not promoted: not trained" in out

    settings = Settings.from_env()
    hourly = _shares(settings, "GOLD_MARKET_FEATURES", list(WARM_HOURLY_FEATURES))
    daily = _shares(settings, "GOLD_DAILY_MARKET_FEATURES", warm_daily_features())
    assert "beta_btc_90d" in warm_daily_features() and "macd_signal" in warm_daily_features()
    assert set(hourly) == set(daily) == TOKENS
    cold = {
        (token, column, share)
        for shares in (hourly, daily)
        for token, row in shares.items()
        for column, share in row.items()
        if share < 0.95
    }
    assert cold == set()

    sql = _cli(
        "sql", "select count(distinct token) as tokens, count(*) as n from gold_market_features", env=env
    )
    assert sql.returncode == 0, sql.stderr
    header, _, row, footer = sql.stdout.strip().splitlines()
    assert header.split() == ["TOKENS", "|", "N"] and footer == "(1 row)"
    assert row.split() == ["3", "|", str(3 * 24)]
    predicted = _cli("sql", "select model_version, count(*) as n from ml_predictions group by 1", env=env)
    assert predicted.returncode == 0 and predicted.stdout.strip().splitlines()[2].split() == [
        "baseline:base_rate", "|", str(3 * 24),
    ]  # fmt: skip
    # The volatility forecast learnt from the warm-up's 30 days of hourly bars: served by the
    # model or the best baseline (the verdict is on the terminal), every hour of every token.
    assert "volatility model" in out
    vols = _cli(
        "sql",
        "select count(*), count(forecast_vol_24h), count(har_vol_24h), min(model_version) from vol_forecasts",
        env=env,
    )
    assert vols.returncode == 0, vols.stderr
    n, forecast, har, version = vols.stdout.strip().splitlines()[2].split(" | ")
    assert int(n) == int(forecast) == int(har) == 3 * 24, vols.stdout
    assert version.strip().startswith(("harx-", "baseline:har_rv", "baseline:ewma")), version
    # The minutes reach the warehouse as 5m bars; every venue bronze holds, as hourly prices.
    five = _cli(
        "sql",
        "select count(distinct token), count(*), count(realized_vol_intrabar) from gold_bars_5m",
        env=env,
    )
    assert five.returncode == 0 and five.stdout.strip().splitlines()[2].split() == [
        "3",
        "|",
        "864",
        "|",
        "864",
    ]
    # The test universe has no USDT token, so no CoinGecko USD price of the quote: close_usd null.
    venues = _cli(
        "sql",
        "select count(*), count(close_usd), max(abs(basis_bps)), min(quote_asset) from gold_venue_prices",
        env=env,
    )
    assert venues.returncode == 0
    row = venues.stdout.strip().splitlines()[2].split()
    assert row == ["72", "|", "0", "|", "0.0", "|", "USDT"], row
    bad = _cli("sql", "select * from no_such_table", env=env)
    assert bad.returncode == 2 and "query failed" in bad.stderr

    # The next run finds the history in the lake: nothing left to warm up.
    code = f"from datetime import date; from crypto_assets.cli import plan_warm_up; from resources.settings import Settings; print(plan_warm_up(Settings.from_env(), date.fromisoformat('{DAY}')))"
    assert _python(code, env) == "None"

    # Every run is a run of the workspace's code location (the UI lists and re-executes it); the
    # warm-up and the background CoinGecko fetch say they are parts of this command, which
    # automation leaves to it.
    runs = _python(
        "from dagster import DagsterInstance\n"
        "for r in DagsterInstance.get().get_runs():\n"
        "    print(r.job_name, r.tags.get('dagster/code_location'), r.tags.get('crypto-analytics/part-of-cli-run'))",
        env,
    ).splitlines()
    assert {line.split()[1] for line in runs} == {"crypto_assets.definitions"}
    parts = {(line.split()[0], line.split()[2]) for line in runs}
    assert ("history_job", "warm-up") in parts and ("market_data_job", "coingecko") in parts
    assert ("market_data_job", "None") in parts  # the range itself, followed by nobody

    # The warm-up is two runs: raw and bronze once over the look-back, 1d klines from its first day
    # and 1h from its last 30 days only; then the 1h bars over those 30 days, fetching nothing.
    assert sum(line.startswith("history_job") for line in runs) == 2
    raw = Path(env["LAKE_ROOT"]) / "raw" / "raw_klines"

    def intervals(days_before: int) -> set[str]:
        day = date.fromisoformat(DAY) - timedelta(days=days_before)
        return set(pq.read_table(raw / f"dt={day}").column("interval").to_pylist())

    assert intervals(31) == {"1d"} and intervals(30) == intervals(1) == {"1d", "1h"}


def test_a_re_run_of_a_day_the_lake_and_warehouse_hold_only_checks_it(fresh_run):
    """The fresh run's day again: every asset is found up to date (the lake's folders, the
    warehouse's rows, nothing newer upstream), so no Dagster run is even created. (Before the
    forced re-run below, which materializes raw again.)"""
    assert fresh_run.run.returncode == 0
    env = fresh_run.env
    started = time.time()
    again = _cli("run", "--start", DAY, "--end", DAY, "--no-train", env=env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "asset(s) up to date in the lake and the warehouse, nothing to do" in again.stdout, again.stdout
    records = _python(
        "from dagster import DagsterInstance\n"
        "print(sum(1 for r in DagsterInstance.get().get_run_records() if r.create_timestamp.timestamp() >= "
        f"{started}))",
        env,
    )
    assert records.strip() == "0"


def test_without_a_warm_up_the_klines_layers_run_beside_the_coingecko_fetch(fresh_run):
    """A deep history (`--no-warm-up`) spends CoinGecko's rate-limited minutes running the
    assets that do not read it; the ones that do run after the fetch. Re-runs the fresh run's
    day (idempotent), on three assets to stay fast."""
    assert fresh_run.run.returncode == 0
    env = fresh_run.env
    assets = "raw_klines,raw_coingecko_markets,silver_token_markets"
    started = time.time()
    again = _cli(
        "run",
        "--start",
        DAY,
        "--end",
        DAY,
        "--no-warm-up",
        "--intervals",
        "1h,1d",
        "--assets",
        assets,
        "--force",  # the day is up to date: without it, nothing would run
        env=env,
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "silver_token_markets" in again.stdout and "raw_coingecko_markets" in again.stdout
    records = _python(
        "from dagster import DagsterInstance\n"
        "for r in DagsterInstance.get().get_run_records():\n"
        "    keys = sorted(k.to_user_string() for k in r.dagster_run.asset_selection or ())\n"
        "    print(r.start_time, r.end_time, r.dagster_run.status.value, ','.join(keys))",
        env,
    ).splitlines()
    ours = [line.split() for line in records if float(line.split()[0]) >= started]
    runs = {fields[3]: (float(fields[0]), float(fields[1])) for fields in ours}
    assert len(runs) == len(ours) == 3 and {fields[2] for fields in ours} == {"SUCCESS"}
    klines, fetch, readers = runs["raw_klines"], runs["raw_coingecko_markets"], runs["silver_token_markets"]
    assert klines[0] < fetch[1]  # the klines' run started while the fetch went on
    assert readers[0] >= fetch[1]  # the markets' reader started once the fetch was done


def _raw_only_env(tmp_path: Path, emulator_url: str, warehouse_port: int) -> dict[str, str]:
    from tests.conftest import _small_universe, local_server_env

    return local_server_env(
        tmp_path,
        emulator_url,
        warehouse_port,
        "T_CLI_FAULTS",
        UNIVERSE_FILE=str(_small_universe(tmp_path / "universe.yaml")),
        DAGSTER_URL="http://127.0.0.1:9",
    )


RAW_ONLY = (
    "run",
    "--start",
    DAY,
    "--end",
    DAY,
    "--no-warm-up",
    "--intervals",
    "1m",
    "--assets",
    "raw_klines",
)


def test_a_run_rides_out_cut_bodies_and_takes_a_corrupted_archive_day_from_rest(
    tmp_path, emulator_url, warehouse_port, faults
):
    """Two cut REST bodies, a cut archive file and a checksum that never matches (6 attempts):
    one run, exit 0, BTCUSDT's minutes from REST equal to the archive's, and the run says why."""
    from crypto_assets.ingestion.binance_archive import daily_path

    env = _raw_only_env(tmp_path, emulator_url, warehouse_port)
    btc = daily_path("BTCUSDT", "1m", date.fromisoformat(DAY))
    faults("/api/v3/exchangeInfo", "truncated", count=2)
    faults(daily_path("ETHUSDT", "1m", date.fromisoformat(DAY)), "truncated", count=1)
    faults(btc + ".CHECKSUM", "bad_checksum", count=6)
    run = _cli(*RAW_ONLY, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # The client's warning went into the run's event log (python_logs), shown on one line.
    assert (
        "  ! raw_klines: BTCUSDT 2024-06-03: archive failed after its retries, fetching from REST"
        in run.stderr
    )
    raw = pq.read_table(Path(env["LAKE_ROOT"]) / "raw" / "raw_klines" / f"dt={DAY}").to_pandas()
    sources = raw.groupby("symbol")["source"].agg(set).to_dict()
    assert sources == {
        "BTCUSDT": {"binance_rest"},
        "DOGEUSDT": {"binance_archive"},
        "ETHUSDT": {"binance_archive"},
    }
    assert raw.groupby("symbol").size().to_dict() == dict.fromkeys(sources, 1440)
    metadata = _python(
        "from dagster import AssetKey, DagsterInstance\n"
        "m = DagsterInstance.get().get_latest_materialization_event(AssetKey('raw_klines')).asset_materialization\n"
        "print(m.metadata['archive_fallbacks'].value, m.metadata['unreadable_bodies_retried'].value)\n"
        "logs = DagsterInstance.get().all_logs(DagsterInstance.get().get_runs(limit=1)[0].run_id)\n"
        "print(sum('fetching from REST instead' in e.user_message for e in logs))",
        env,
    )
    metadata, logged = metadata.splitlines()
    assert "'BTCUSDT 1m': '2024-06-03: ChecksumMismatch: " in metadata and "(after 6 attempts)" in metadata
    # Retried: 2 exchangeInfo bodies, ETH's zip once, BTC's file 5 times (the 6th attempt gave up).
    assert metadata.endswith(" 8")
    assert logged == "1"  # the fallback's warning is in the run's event log, for the UI
    assert not any((Path(env["LAKE_ROOT"]) / ".fetched").rglob("*.parquet"))  # landed: nothing kept


def test_a_failed_run_names_its_cause_on_the_last_line(tmp_path, emulator_url, warehouse_port, faults):
    """An IP ban is not transient: the run stops at once, and its last line says where and why;
    the stack trace stays in the run's event log."""
    env = _raw_only_env(tmp_path, emulator_url, warehouse_port)
    faults("/api/v3/exchangeInfo", "418", count=1, retry_after=120)
    run = _cli(*RAW_ONLY, env=env)
    assert run.returncode == 2
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith(
        f"crypto-analytics: partitions {DAY} failed: raw_klines: Banned: http://127.0.0.1:"
    )
    assert "/api/v3/exchangeInfo: HTTP 418, this IP is banned" in last and "(run id " in last
    assert "Stack Trace" not in run.stdout + run.stderr and "Traceback" not in run.stdout + run.stderr


def test_a_failed_warm_up_resumes_fetching_only_what_it_missed(
    tmp_path, emulator_url, warehouse_port, faults
):
    """The exchange goes down after two of the warm-up's pages: the run fails with no partition
    written, and its re-run fetches only the pages the first one did not get (the emulator's
    count of klines pages served per pair)."""
    import httpx

    from tests.conftest import _short_look_back

    env = _raw_only_env(tmp_path, emulator_url, warehouse_port)
    env["PIPELINE_CONFIG"] = str(_short_look_back(tmp_path / "pipeline.yaml"))
    lake = Path(env["LAKE_ROOT"])
    command = ("run", "--start", DAY, "--end", DAY, "--intervals", "1h", "--assets", "raw_klines")

    def served() -> dict[str, int]:
        return httpx.get(f"{emulator_url}/_emulator/stats").json()["klines_served"]

    def fetched(before: dict[str, int], after: dict[str, int]) -> set[str]:
        return {key for key, count in after.items() if count > before.get(key, 0)}

    start = served()
    faults("/api/v3/klines", "500", count=1000, after=2)
    failed = _cli(*command, env=env)
    httpx.delete(f"{emulator_url}/_emulator/faults")
    assert failed.returncode == 2 and "raw_klines: Unavailable: " in failed.stderr.splitlines()[-1]
    assert not (lake / "raw" / "raw_klines").exists() or not any((lake / "raw" / "raw_klines").glob("dt=*"))
    middle = served()
    first = fetched(start, middle)
    assert len(first) == 2 and all(key.endswith(" 1d") for key in first)  # 1d comes first

    again = _cli(*command, env=env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    second = fetched(middle, served())
    pairs = {f"{pair}USDT" for pair in ("BTC", "ETH", "DOGE")}
    warm_up = {f"{p} 1d" for p in pairs} | {f"{p} 1h" for p in pairs}
    # The warm-up fetched only what the failed run had not; the day itself is its own 1h page.
    assert second & warm_up == warm_up - first
    assert not any((lake / ".fetched").rglob("*.parquet"))  # landed: nothing kept any more


def test_refining_imported_days_starts_warm_from_the_raw_days_before_them(
    tmp_path, emulator_url, warehouse_port, real_data
):
    """`run --no-ingest` over imported days: the look-back days raw already holds are refined
    first (nothing fetched), so the range's first hours have their indicators."""
    import gzip

    from tests.conftest import _short_look_back

    env = _raw_only_env(tmp_path, emulator_url, warehouse_port)
    env["PIPELINE_CONFIG"] = str(_short_look_back(tmp_path / "pipeline.yaml"))
    env["SNOWFLAKE_SCHEMA"] = "T_NO_INGEST_WARM"
    lines = gzip.open(real_data / "binance_spot_1h_2023" / "BTCUSDT_1h.csv.gz", "rt").read().splitlines()
    kept = [lines[0], *(line for line in lines[1:] if line < "2023-02-16")]  # Jan 1 .. Feb 15
    (tmp_path / "BTCUSDT_1h.csv").write_text("\n".join(kept) + "\n")
    imported = _cli("import", str(tmp_path / "BTCUSDT_1h.csv"), env=env)
    assert imported.returncode == 0, imported.stderr[-2000:]
    # Another venue, in USD and in USDC, with a USDC de-peg to 0.875 at 07:50 (as on 2023-03-11).
    us = tmp_path / "binance_us"
    us.mkdir()
    _binance_us_minutes(us, datetime(2023, 2, 14, tzinfo=UTC))
    imported = _cli("import", str(us), "--venue", "binance_us", env=env)
    assert imported.returncode == 0, imported.stdout[-2000:] + imported.stderr[-2000:]
    run = _cli("run", "--start", "2023-02-14", "--end", "2023-02-14", "--no-ingest", env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "warm-up: refining the look-back days raw already holds before 2023-02-14" in run.stdout
    first_hours = _python(
        "import snowflake.connector; from resources.settings import Settings\n"
        "c = snowflake.connector.connect(**Settings.from_env().connector_args()).cursor()\n"
        'c.execute("select count(rsi_14), count(atr_14), count(*) from gold_market_features'
        " where token = 'BTC' and bar_time < '2023-02-14 06:00:00'\")\n"
        "print(*c.fetchone())",
        env,
    )
    assert first_hours == "6 6 6"  # warm from the first hour: cold, RSI(14) would start at 14:00
    # Raw holds 2023-02-15 too: the last day's forward targets are known, not null.
    assert "look-ahead: raw holds 2023-02-15..2023-02-15" in run.stdout
    targets = _python(
        "import snowflake.connector; from resources.settings import Settings\n"
        "c = snowflake.connector.connect(**Settings.from_env().connector_args()).cursor()\n"
        'c.execute("select count(target_return_1h), count(target_return_24h), count(*),'
        " count(distinct dt) from gold_market_features where token = 'BTC'\")\n"
        "print(*c.fetchone())",
        env,
    )
    assert targets == "24 24 24 1"  # and no gold row for the day after the range

    venues = _python(
        "import snowflake.connector; from resources.settings import Settings\n"
        "c = snowflake.connector.connect(**Settings.from_env().connector_args()).cursor()\n"
        'c.execute("select venue, symbol, quote_asset, count(*), round(min(quote_usd_low), 4),'
        " round(max(abs(basis_bps)), 0), min(split_part(quote_usd_source, ' ', 1))"
        " from gold_venue_prices where token = 'BTC' group by 1, 2, 3 order by 1, 2\")\n"
        "print(*[' '.join(map(str, row)) for row in c.fetchall()], sep='|')",
        env,
    )
    btc_usdt, btc_usd, btc_usdc = venues.split("|")
    assert btc_usdt.startswith("binance BTCUSDT USDT 24 ")  # canonical: basis 0
    assert btc_usd.startswith("binance_us BTCUSD USD 24 1.0 ") and btc_usd.endswith(" par")
    # In USDC, BTC sat 1/0.875 - 1 = 14.3 % above BTCUSDT at the de-peg's worst minute; the cross
    # rate on Binance.US prices USDC at 0.875 USD then.
    usdc = btc_usdc.split()
    assert usdc[:5] == ["binance_us", "BTCUSDC", "USDC", "24", "0.875"], btc_usdc
    assert usdc[6] == "cross:binance_us/spot", btc_usdc


def _binance_us_minutes(folder: Path, day: datetime) -> None:
    """BTCUSD and BTCUSDC 1m bars for ``day`` on Binance.US: BTC at 21,800 USD throughout, USDC
    at 0.99 USD but 0.875 at 07:50 (the hour's worst minute)."""
    header = "open_time,open,high,low,close,volume"
    rows = {"BTCUSD": [header], "BTCUSDC": [header]}
    for minute in range(24 * 60):
        ms = int((day + timedelta(minutes=minute)).timestamp() * 1000)
        usdc = 0.875 if minute == 7 * 60 + 50 else 0.99
        for pair, price in (("BTCUSD", 21_800.0), ("BTCUSDC", 21_800.0 / usdc)):
            rows[pair].append(f"{ms},{price:.2f},{price:.2f},{price:.2f},{price:.2f},1.5")
    for pair, lines in rows.items():
        (folder / f"{pair}_1m.csv").write_text("\n".join(lines) + "\n")
