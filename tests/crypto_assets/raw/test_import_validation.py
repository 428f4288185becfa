"""Every malformed file is refused whole, with the file, the line and the field: nothing lands."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from crypto_assets.raw.file_import import ImportError_, folder_market, name_parts, read_file

HEADER = "date,open,high,low,close,volume,ticker\n"


def _row(hour: int, close: str = "1.5", ticker: str = "BTCUSDT", day: str = "2023-01-01") -> str:
    return f"{day} {hour:02d}:00:00,1,2,0.5,{close},10,{ticker}\n"


def _refused(path: Path, **kwargs: object) -> str:
    with pytest.raises(ImportError_) as raised:
        read_file(path, **kwargs)  # type: ignore[arg-type]
    return str(raised.value)


def test_empty_and_header_only_files_are_clear_errors(tmp_path: Path):
    empty = tmp_path / "BTCUSDT_1h.csv"
    empty.write_text("")
    assert _refused(empty) == f"{empty}: the file is empty"
    gz = tmp_path / "ETHUSDT_1h.csv.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write(HEADER)
    assert _refused(gz) == f"{gz}: only a header, no rows"


def test_a_truncated_last_row_names_its_line_and_missing_fields(tmp_path: Path):
    path = tmp_path / "BTCUSDT_1h.csv"
    path.write_text(HEADER + _row(0) + _row(1) + "2023-01-01 02:00:00,1,2")
    assert _refused(path) == (
        f"{path}: 1 problem(s), nothing imported:\n"
        f"  {path}:line 4: 3 of 7 fields (truncated row?); missing low, close, volume, ticker"
    )


def test_text_in_a_price_column_names_line_and_field(tmp_path: Path):
    path = tmp_path / "BTCUSDT_1h.csv"
    path.write_text(HEADER + _row(0) + _row(1, close="n/a") + _row(2, close=""))
    message = _refused(path)
    assert f"{path}:line 3: field 'close': 'n/a' is not a number" in message
    assert f"{path}:line 4: field 'close' is empty" in message


def test_unknown_pairs_and_symbols_the_universe_does_not_map_are_refused(tmp_path: Path):
    path = tmp_path / "prices.csv"
    path.write_text(HEADER + _row(0, ticker="XYZUSDT") + _row(1, ticker="XYZUSDT"))
    message = _refused(path)
    assert f"{path}:line 2 (and 1 more): field 'ticker': 'XYZUSDT' is not a pair of binance/spot" in message
    nameless = tmp_path / "prices2.csv"
    nameless.write_text("date,open,high,low,close,volume\n2023-01-01 00:00:00,1,2,0.5,1.5,10\n")
    assert _refused(nameless, symbol="BTCUSDC").startswith("'BTCUSDC' is not a pair of binance/spot")


def test_a_ticker_column_that_contradicts_the_file_name_is_refused(tmp_path: Path):
    path = tmp_path / "ETHUSDT_1h.csv"
    path.write_text(HEADER + _row(0))
    assert "line 2: field 'ticker': 'BTCUSDT', but the file name says ETHUSDT" in _refused(path)


def test_ohlc_grid_and_duplicates_are_checked(tmp_path: Path):
    path = tmp_path / "BTCUSDT_1h.csv"
    path.write_text(
        HEADER
        + _row(0)
        + "2023-01-01 01:00:00,1,0.9,0.5,1.5,10,BTCUSDT\n"  # high below open
        + "2023-01-01 02:30:00,1,2,0.5,1.5,10,BTCUSDT\n"  # not on the 1h grid
        + _row(3)
        + _row(3)  # the same hour twice
        + "2023-01-01 04:00:00,1,2,0.5,1.5,-10,BTCUSDT\n"  # negative volume
    )
    message = _refused(path)
    assert f"{path}:line 3: OHLC inconsistent" in message
    assert f"{path}:line 4: field 'date': 2023-01-01 02:30:00 is not on the 1h grid" in message
    assert f"{path}:lines 5, 6: BTCUSDT 2023-01-01 03:00:00 appears 2 times" in message
    assert f"{path}:line 7: field 'volume' is negative" in message


def test_file_names_and_archive_folders_name_pair_interval_and_market(tmp_path: Path):
    assert name_parts(Path("BTCUSDC_1m_20230301_20230321.csv")) == ("BTCUSDC", "1m")
    assert name_parts(Path("BTCUSDT-1h-2023-01.csv")) == ("BTCUSDT", "1h")
    assert name_parts(Path("PEPEUSDT_1h.csv.gz")) == ("PEPEUSDT", "1h")
    assert name_parts(Path("BTCUSD_PERP-1m-2023-01-01.csv")) == ("BTCUSD_PERP", "1m")
    um = Path("data/futures/um/daily/klines/BTCUSDT/1m/BTCUSDT-1m-2023-01-01.csv")
    assert folder_market(um) == "usdm_futures"
    assert folder_market(Path("data/futures/cm/monthly/klines/x.csv")) == "coinm_futures"
    assert folder_market(Path("data/spot/monthly/klines/BTCUSDT/1h/x.csv")) == "spot"
    # The Binance.US file of the issue: a pair on that venue, named by the file.
    us = tmp_path / "BTCUSDC_1m_20230301_20230321.csv"
    us.write_text(
        "date,open,high,low,close,volume\n2023-03-01 00:00:00,1,2,0.5,1.5,10\n2023-03-01 00:01:00,1,2,0.5,1.5,10\n"
    )
    parsed = read_file(us, venue="binance_us")
    assert (parsed.venue, parsed.market, parsed.rows["symbol"].iloc[0], parsed.rows["interval"].iloc[0]) == (
        "binance_us", "spot", "BTCUSDC", "1m",
    )  # fmt: skip
    assert "'BTCUSDC' is not a pair of binance/spot" in _refused(us)  # not a Binance spot pair


def test_an_archive_folder_sets_the_market_and_contradictions_are_refused(tmp_path: Path):
    folder = tmp_path / "data" / "futures" / "um" / "daily" / "klines" / "BTCUSDT" / "1m"
    folder.mkdir(parents=True)
    path = folder / "BTCUSDT-1m-2023-01-01.csv"
    path.write_text(
        "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore\n"
        "1672531200000,16537.5,16540.9,16504.0,16526.1,2112.364,1672531259999,34929490.4,9011,1014.604,16776869.7,0\n"
    )
    parsed = read_file(path)
    assert parsed.market == "usdm_futures" and parsed.rows["trade_count"].iloc[0] == 9011
    assert _refused(path, market="spot") == f"{path}: --market spot but the archive folder says usdm_futures"


def test_a_symbol_that_contradicts_the_file_name_is_refused(tmp_path: Path):
    """--symbol SHIBUSDT on 1000SHIBUSDT_1h_365d.csv landed prices x1,000."""
    path = tmp_path / "BTCUSDT_1h_365d.csv"
    path.write_text("date,open,high,low,close,volume\n2023-01-01 00:00:00,1,2,0.5,1.5,10\n")
    assert _refused(path, symbol="ETHUSDT") == (
        f"{path}: --symbol ETHUSDT contradicts the pair its name gives, BTCUSDT; rename the file or"
        " leave out --symbol"
    )
    assert read_file(path, symbol="BTCUSDT").rows["symbol"].unique().tolist() == ["BTCUSDT"]


@pytest.mark.parametrize(
    ("name", "symbol", "market"),
    [
        ("1000SHIBUSDT_1h_365d.csv", None, "usdm_futures"),
        ("1000SHIBUSDT_1h_365d.csv", "SHIBUSDT", "spot"),
        ("prices.csv", "1000PEPEUSDT", "usdm_futures"),
    ],
)
def test_per_thousand_contracts_are_refused_saying_why(
    tmp_path: Path, name: str, symbol: str | None, market: str
):
    path = tmp_path / name
    path.write_text("date,open,high,low,close,volume\n2023-01-01 00:00:00,1,2,0.5,1.5,10\n")
    message = _refused(path, symbol=symbol, market=market)
    if symbol == "SHIBUSDT":  # the name contradicts --symbol first
        assert "contradicts the pair its name gives, 1000SHIBUSDT" in message
        return
    pair = symbol or "1000SHIBUSDT"
    assert f"{pair} is a per-1,000 contract" in message and "x1,000" in message


def test_a_ticker_column_with_a_per_thousand_contract_is_refused(tmp_path: Path):
    path = tmp_path / "futures.csv"
    path.write_text(HEADER + _row(0, ticker="1000FLOKIUSDT"))
    assert "1000FLOKIUSDT is a per-1,000 contract" in _refused(path, market="usdm_futures")


def test_futures_pairs_exclude_the_coins_listed_only_per_thousand():
    from crypto_assets.universe import load_universe

    futures = load_universe().pairs("binance", "usdm_futures")
    assert "BTCUSDT" in futures and "DOGEUSDT" in futures
    assert not {"SHIBUSDT", "PEPEUSDT", "FLOKIUSDT"} & set(futures)


@pytest.mark.parametrize(
    ("first", "unit"),
    [(1672531200, "seconds"), (1672531200000000000, "nanoseconds")],
)
def test_epoch_seconds_and_nanoseconds_are_one_clear_line(tmp_path: Path, first: int, unit: str):
    path = tmp_path / "BTCUSDT_1m.csv"
    step = 60 if unit == "seconds" else 60 * 10**9
    rows = "".join(f"{first + i * step},1,2,0.5,1.5,10\n" for i in range(120))
    path.write_text("open_time,open,high,low,close,volume\n" + rows)
    message = _refused(path)
    assert message == (
        f"{path}:line 2 (and 119 more): field 'open_time': {first} looks like epoch {unit}; times must be"
        " epoch milliseconds (or microseconds) or UTC dates, nothing imported"
    )


def test_a_corrupt_gzip_names_the_file(tmp_path: Path):
    path = tmp_path / "BTCUSDT_1h.csv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(HEADER + _row(0) * 50)
    path.write_bytes(path.read_bytes()[:-20])  # cut: the stream ends early
    message = _refused(path)
    assert message.startswith(f"{path}: not a readable gzip file (EOFError") and "\n" not in message


def test_a_utf8_bom_and_a_lower_case_name_are_read(tmp_path: Path):
    path = tmp_path / "btcusdt_1h.csv"
    path.write_bytes(
        b"\xef\xbb\xbf" + (HEADER.replace(",ticker", "") + "2023-01-01 00:00:00,1,2,0.5,1.5,10\n").encode()
    )
    parsed = read_file(path)
    assert parsed.rows["symbol"].tolist() == ["BTCUSDT"] and parsed.rows["interval"].tolist() == ["1h"]
    other = tmp_path / "data_1h.csv"  # not a pair: not taken for one
    other.write_text("date,open,high,low,close,volume\n2023-01-01 00:00:00,1,2,0.5,1.5,10\n")
    assert "the file name gives no pair" in _refused(other)


def test_a_dry_run_validates_and_plans_without_a_jvm(tmp_path: Path):
    """`import --dry-run` took 40-80 s starting Spark; validation and the plan need no JVM: here
    there is no Java at all, and the hint names the real days."""
    import os
    import subprocess
    import sys

    path = tmp_path / "BTCUSDT_1h.csv"
    path.write_text(HEADER + "".join(_row(hour) for hour in range(24)))
    no_java = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "SPARK_HOME")}
    no_java.update(JAVA_HOME="/nonexistent", PATH=str(Path(sys.executable).parent) + ":/usr/bin:/bin",
                   LAKE_ROOT=str(tmp_path / "lake"), DAGSTER_HOME=str(tmp_path / "dagster"))  # fmt: skip
    (tmp_path / "lake").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "crypto_assets.cli", "import", str(path), "--dry-run"],
        env=no_java, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert (
        "Would import 24 rows from 1 file(s) into 1 raw_klines partition(s) (2023-01-01 .. 2023-01-01)"
        in done.stdout
    )
    assert (
        "refine them with: crypto-analytics run --start 2023-01-01 --end 2023-01-01 --no-ingest"
        in done.stdout
    )
    assert not (tmp_path / "lake" / "raw").exists()


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("2023-01-01 00:00:00,1,inf,0.5,1.5,10", "field 'high' is not finite"),
        ("2023-01-01 00:00:00,1,2,0.5,1.5,-inf", "field 'volume' is not finite"),
        ("2023-01-01 00:00:00,0,2,0.5,1.5,10", "field 'open' is zero: not a price"),
        ("2023-01-01 00:00:00,1,2,0.5,1.5,-3", "field 'volume' is negative"),
    ],
)
def test_non_finite_and_non_positive_prices_are_refused(tmp_path: Path, row: str, problem: str):
    """`high = inf` was accepted (stored as the text 'inf') and failed the next bronze day."""
    path = tmp_path / "BTCUSDT_1m.csv"
    path.write_text("date,open,high,low,close,volume\n" + row + "\n")
    assert f"{path}:line 2: {problem}" in _refused(path)


def test_a_zero_volume_is_a_quiet_minute_not_a_problem(tmp_path: Path):
    path = tmp_path / "BTCUSDT_1m.csv"
    path.write_text("date,open,high,low,close,volume\n2023-01-01 00:00:00,1,1,1,1,0\n")
    assert read_file(path).rows["volume"].tolist() == ["0"]
