import hashlib
import io
import zipfile
from datetime import date

import httpx
import pytest

from crypto_assets.ingestion.binance import BinanceClient
from crypto_assets.ingestion.binance_archive import (
    BinanceArchiveClient,
    ChecksumMismatch,
    daily_path,
    monthly_path,
    parse_archive_csv,
)
from crypto_assets.ingestion.http import MalformedPayload, Unavailable


def test_real_archive_file_parses_with_its_header(real_data):
    text = (real_data / "binance_spot_archive_1h" / "BTCUSDT-1h-2023-01.csv").read_text()
    klines = parse_archive_csv(text)
    assert len(klines) == 744  # 31 days x 24 hours
    assert klines[0].open_time == 1672531200000 and klines[0].open == "16541.77000000"
    assert klines[0].trade_count == 149854


def test_microseconds_become_milliseconds():
    row = "1735689600000000,1.0,2.0,0.5,1.5,10,1735689659999999,15,3,5,7.5,0\n"
    kline = parse_archive_csv(row)[0]
    assert kline.open_time == 1735689600000 and kline.close_time == 1735689659999


def test_short_rows_are_malformed():
    with pytest.raises(MalformedPayload, match="fields"):
        parse_archive_csv("1,2,3\n")


def _zip(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("X.csv", text)
    return buffer.getvalue()


def test_checksum_is_verified_before_use():
    payload = _zip("1672531200000,1,2,0.5,1.5,10,1672531259999,15,3,5,7.5,0\n")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(".CHECKSUM"):
            return httpx.Response(200, text=f"{'0' * 64}  x.zip\n")
        return httpx.Response(200, content=payload)

    with pytest.raises(ChecksumMismatch, match="does not match"):
        BinanceArchiveClient("http://archive.test", transport=httpx.MockTransport(handler)).fetch("/x.zip")

    good = hashlib.sha256(payload).hexdigest()
    ok = httpx.MockTransport(
        lambda r: (
            httpx.Response(200, text=f"{good}  x.zip")
            if r.url.path.endswith(".CHECKSUM")
            else httpx.Response(200, content=payload)
        )
    )
    assert len(BinanceArchiveClient("http://archive.test", transport=ok).fetch("/x.zip")) == 1


@pytest.mark.integration
def test_daily_files_from_the_emulator_equal_rest(emulator_url):
    day = date(2024, 3, 1)
    with BinanceArchiveClient(emulator_url) as archive, BinanceClient(emulator_url) as rest:
        from_archive = archive.day("ETHUSDT", "1m", day)
        from_rest = rest.klines("ETHUSDT", "1m", 1709251200000, 1709251200000 + 86_400_000)
    assert from_archive == from_rest and len(from_archive) == 1440


@pytest.mark.integration
def test_microsecond_era_files_and_monthly_files(emulator_url):
    with BinanceArchiveClient(emulator_url) as archive:
        recent = archive.day("BTCUSDT", "1h", date(2025, 6, 1))
        month = archive.fetch(monthly_path("BTCUSDT", "1h", 2024, 2))
    assert recent is not None and recent[0].open_time == 1748736000000  # µs in the file, ms here
    assert month is not None and len(month) == 29 * 24


@pytest.mark.integration
def test_unpublished_days_and_pairs_are_none(emulator_url):
    with BinanceArchiveClient(emulator_url) as archive:
        assert archive.day("BTCUSDT", "1m", date(2099, 1, 1)) is None
        assert archive.day("PEPEUSDT", "1m", date(2023, 1, 1)) is None  # before its listing
        assert archive.fetch(daily_path("NOPEUSDT", "1m", date(2024, 1, 1))) is None


@pytest.mark.integration
@pytest.mark.parametrize(
    ("kind", "on", "damaged_attempts"),
    # A route matches the paths it starts: the zip's route damages the zip and its checksum.
    [("bad_checksum", ".CHECKSUM", 2), ("truncated", "", 1), ("truncated", ".CHECKSUM", 2)],
)
def test_a_damaged_download_is_fetched_again_with_its_checksum(
    emulator_url, faults, kind, on, damaged_attempts
):
    route = daily_path("SOLUSDT", "1m", date(2024, 3, 2))
    faults(route + on, kind, count=2)
    with BinanceArchiveClient(emulator_url, backoff_seconds=0.01) as archive:
        klines = archive.fetch(route)
        assert archive.http.unreadable == damaged_attempts
    with BinanceClient(emulator_url) as rest:
        assert klines == rest.klines("SOLUSDT", "1m", 1709337600000, 1709337600000 + 86_400_000)


@pytest.mark.integration
def test_a_file_damaged_every_time_is_refused_after_the_retries(emulator_url, faults):
    route = daily_path("SOLUSDT", "1m", date(2024, 3, 4))
    faults(route + ".CHECKSUM", "bad_checksum", count=3)
    with (
        BinanceArchiveClient(emulator_url, backoff_seconds=0.01, max_retries=2) as archive,
        pytest.raises(ChecksumMismatch, match=r"SOLUSDT-1m-2024-03-04.zip: .*after 3 attempts"),
    ):
        archive.fetch(route)
    stats = httpx.get(f"{emulator_url}/_emulator/stats").json()
    assert stats["faults_fired"]["bad_checksum"] >= 3  # the checksum was fetched again each time


def test_a_zip_that_is_not_a_zip_is_fetched_again():
    """Its checksum matches (the damage happened before it was published): read, refused, retried."""
    payloads = [b"not a zip", _zip("1672531200000,1,2,0.5,1.5,10,1672531259999,15,3,5,7.5,0\n")]
    sent: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(".CHECKSUM"):
            return httpx.Response(200, text=f"{hashlib.sha256(sent[-1]).hexdigest()}  x.zip")
        sent.append(payloads[min(len(sent), 1)])
        return httpx.Response(200, content=sent[-1])

    transport = httpx.MockTransport(handler)
    client = BinanceArchiveClient("http://archive.test", transport=transport, sleep=lambda _: None)
    assert len(client.fetch("/x.zip")) == 1
    assert client.http.unreadable == 1 and len(sent) == 2


@pytest.mark.integration
def test_archive_5xx_is_retried_then_given_up(emulator_url, faults):
    route = daily_path("SOLUSDT", "1m", date(2024, 3, 3))
    faults(route, "503", count=1)
    with BinanceArchiveClient(emulator_url, backoff_seconds=0.05) as archive:
        assert len(archive.fetch(route)) == 1440
    faults(route, "500", count=10)
    with (
        BinanceArchiveClient(emulator_url, backoff_seconds=0.01, max_retries=2) as archive,
        pytest.raises(Unavailable),
    ):
        archive.fetch(route)


def test_vectorised_archive_parsing_equals_row_parsing(real_data):
    from crypto_assets.ingestion.binance_archive import archive_frame

    text = (real_data / "binance_spot_archive_1h" / "BTCUSDT-1h-2023-03.csv").read_text()
    assert archive_frame(text).to_dict("records") == [k.__dict__ for k in parse_archive_csv(text)]
    micro = "1735689600000000,1.0,2.0,0.5,1.5,10,1735689659999999,15,3,5,7.5,0\n"
    assert archive_frame(micro)["open_time"].iloc[0] == 1735689600000
    with pytest.raises(MalformedPayload):
        archive_frame("1735689600000,abc,2.0,0.5,1.5,10,1735689659999,15,3,5,7.5,0\n")
