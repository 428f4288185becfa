"""Fetching a period of klines against the real emulator: the REST fallback for an archive day
that stays corrupted, and a failed fetch resumed without fetching again what it already had."""

import os
import time
from datetime import UTC, datetime, timedelta

import httpx
import pandas as pd
import pytest

from crypto_assets.ingestion.binance import BinanceClient
from crypto_assets.ingestion.binance_archive import BinanceArchiveClient, daily_path
from crypto_assets.ingestion.http import Unavailable
from crypto_assets.raw.fetch import SOURCE_ARCHIVE, SOURCE_REST, fetch_klines
from crypto_assets.raw.fetched import FOLDER, Fetched, FetchedPeriods

DAY = datetime(2024, 3, 5, tzinfo=UTC)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
PAIRS = ["ADAUSDT", "BTCUSDT", "DOGEUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]
KLINE_COLUMNS = ["symbol", "open_time", "open", "high", "low", "close", "volume", "close_time", "trade_count"]


def _stats(url: str) -> dict:
    return httpx.get(f"{url}/_emulator/stats").json()


def _klines_served(url: str, interval: str) -> dict[str, int]:
    return {k.split()[0]: v for k, v in _stats(url)["klines_served"].items() if k.endswith(f" {interval}")}


@pytest.mark.integration
def test_an_archive_day_corrupted_after_the_retries_comes_from_rest(emulator_url, faults):
    route = daily_path("ADAUSDT", "1m", DAY.date())
    faults(route + ".CHECKSUM", "bad_checksum", count=3)
    with (
        BinanceClient(emulator_url) as rest,
        BinanceArchiveClient(emulator_url, backoff_seconds=0.01, max_retries=2) as archive,
    ):
        frame, reports = fetch_klines(
            rest, archive, ["ADAUSDT", "BTCUSDT"], DAY, DAY + timedelta(days=1), NOW
        )
        clean, _ = fetch_klines(rest, archive, ["ADAUSDT"], DAY, DAY + timedelta(days=1), NOW)
    by_pair = {r.pair: r for r in reports}
    assert by_pair["ADAUSDT"].source == SOURCE_REST
    assert (
        by_pair["ADAUSDT"].fallback.startswith("ChecksumMismatch: ")
        and "after 3 attempts" in by_pair["ADAUSDT"].fallback
    )
    assert by_pair["BTCUSDT"].source == SOURCE_ARCHIVE and by_pair["BTCUSDT"].fallback == ""
    ada = frame[frame["symbol"] == "ADAUSDT"]
    assert set(ada["source"]) == {SOURCE_REST} and len(ada) == 1440
    # The REST minutes are the archive's, to the last digit.
    assert set(clean["source"]) == {SOURCE_ARCHIVE}
    pd.testing.assert_frame_equal(
        ada[KLINE_COLUMNS].reset_index(drop=True), clean[KLINE_COLUMNS].reset_index(drop=True)
    )


@pytest.mark.integration
def test_a_failed_fetch_is_resumed_without_fetching_again_what_it_had(emulator_url, faults, tmp_path):
    start, end = DAY - timedelta(days=40), DAY  # one REST range of 1h per pair: one page each
    kept = FetchedPeriods(tmp_path, emulator_url, "rest")
    before = _klines_served(emulator_url, "1h")
    # The API goes down after two pages: the pairs fetched by then are kept, the run fails.
    faults("/api/v3/klines", "500", count=1000, after=2)
    with BinanceClient(emulator_url, backoff_seconds=0.01, max_retries=1) as rest:
        with pytest.raises(Unavailable, match="HTTP 500 after 2 attempts"):
            fetch_klines(rest, None, PAIRS, start, end, NOW, threads=1, interval="1h", kept=kept)
    httpx.delete(f"{emulator_url}/_emulator/faults")
    first = _klines_served(emulator_url, "1h")
    fetched_first = {p for p in PAIRS if first.get(p, 0) > before.get(p, 0)}
    assert len(fetched_first) == 2

    resumed = FetchedPeriods(tmp_path, emulator_url, "rest")  # the retry: another run, same sources
    with BinanceClient(emulator_url) as rest:
        frame, reports = fetch_klines(rest, None, PAIRS, start, end, NOW, interval="1h", kept=resumed)
    second = _klines_served(emulator_url, "1h")
    fetched_again = {p for p in PAIRS if second.get(p, 0) > first.get(p, 0)}
    assert fetched_again == set(PAIRS) - fetched_first  # only the missing pairs
    assert {r.pair for r in reports if r.reused} == fetched_first
    assert frame.groupby("symbol").size().to_dict() == dict.fromkeys(PAIRS, 40 * 24)

    # A run that landed its partitions forgets what it used: the next one fetches afresh.
    resumed.discard_used()
    assert not (tmp_path / FOLDER).exists() or not any((tmp_path / FOLDER).rglob("*.parquet"))


@pytest.mark.integration
def test_an_open_period_is_never_kept(emulator_url, tmp_path):
    kept = FetchedPeriods(tmp_path, emulator_url, "rest")
    with BinanceClient(emulator_url) as rest:
        fetch_klines(
            rest,
            None,
            ["BTCUSDT"],
            DAY,
            DAY + timedelta(days=1),
            DAY + timedelta(hours=5),
            interval="1h",
            kept=kept,
        )
    assert not any((tmp_path / FOLDER).rglob("*.parquet"))


def _fetched(rows: int = 3) -> Fetched:
    return Fetched(pd.DataFrame({"symbol": ["BTCUSDT"] * rows, "open_time": range(rows)}), SOURCE_REST, "why")


def test_kept_periods_are_keyed_by_their_sources_and_read_back_whole(tmp_path):
    end = DAY + timedelta(days=1)
    FetchedPeriods(tmp_path, "http://a", "archive").put("BTCUSDT", "1m", DAY, end, False, _fetched())
    assert FetchedPeriods(tmp_path, "http://b", "archive").get("BTCUSDT", "1m", DAY, end, False) is None
    again = FetchedPeriods(tmp_path, "http://a", "archive").get("BTCUSDT", "1m", DAY, end, False)
    assert again is not None and (again.source, again.fallback, len(again.frame)) == (SOURCE_REST, "why", 3)
    assert FetchedPeriods(tmp_path, "http://a", "archive").get("BTCUSDT", "1m", DAY, end, True) is None


def test_a_dead_writers_files_and_abandoned_periods_are_swept(tmp_path):
    end = DAY + timedelta(days=1)
    kept = FetchedPeriods(tmp_path, "http://a")
    kept.put("BTCUSDT", "1m", DAY, end, False, _fetched())
    kept.put("ETHUSDT", "1m", DAY, end, False, _fetched())
    folder = next((tmp_path / FOLDER).rglob("BTCUSDT.parquet")).parent
    torn = folder / ".tmp-0123456789ab-SOLUSDT.parquet"  # a writer killed before its rename
    torn.write_bytes(b"PAR1 half")
    old = time.time() - 2 * 24 * 3600
    os.utime(folder / "ETHUSDT.parquet", (old, old))
    os.utime(torn, (old, old))
    kept = FetchedPeriods(tmp_path, "http://a")
    assert sorted(p.name for p in folder.iterdir()) == ["BTCUSDT.parquet"]
    assert kept.get("BTCUSDT", "1m", DAY, end, False) is not None
