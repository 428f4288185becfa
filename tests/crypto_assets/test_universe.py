from datetime import UTC, datetime

import pytest
import yaml

from crypto_assets.universe import CATEGORIES, DEFAULT_UNIVERSE_PATH, UniverseError, _parse, load_universe


def _day(text: str) -> tuple[datetime, datetime]:
    start = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return start, start.replace(hour=23, minute=59)


def test_universe_has_37_tokens_in_six_categories():
    universe = load_universe()
    assert len(universe.tokens) == 37
    assert {t.category for t in universe.tokens} == set(CATEGORIES)
    by_category = {c: sorted(t.symbol for t in universe.tokens if t.category == c) for c in CATEGORIES}
    assert by_category["Payment"] == sorted(["USDT", "USDC", "DAI", "BUSD", "TUSD", "XRP"])
    assert by_category["Meme"] == sorted(["DOGE", "SHIB", "FLOKI", "PEPE", "CKB"])
    assert "FET" in by_category["Infrastructure"]


def test_every_token_has_a_coingecko_id_and_listings_have_sources():
    for token in load_universe().tokens:
        assert token.coingecko_id
        assert all(listing.source for listing in token.listings), token.symbol


def test_lifecycle_facts_from_the_real_data():
    universe = load_universe()
    # FLOKI and PEPE list on 2023-05-05 at 18:00.
    assert universe.token("PEPE").pair_on("binance", *_day("2023-05-04")) is None
    assert universe.token("PEPE").pair_on("binance", *_day("2023-05-05")) == "PEPEUSDT"
    # BUSD's last bar is 2023-12-15 04:00.
    assert universe.token("BUSD").pair_on("binance", *_day("2023-12-15")) == "BUSDUSDT"
    assert universe.token("BUSD").pair_on("binance", *_day("2023-12-16")) is None
    # USDC was suspended from 2022-09-26 to 2023-03-11 14:00.
    assert universe.token("USDC").pair_on("binance", *_day("2023-01-10")) is None
    assert universe.token("USDC").pair_on("binance", *_day("2023-03-11")) == "USDCUSDT"
    # TUSD traded through 2021-2022 (12,309 real hourly bars), suspended as USDC was.
    assert universe.token("TUSD").pair_on("binance", *_day("2021-06-01")) == "TUSDUSDT"
    assert universe.token("TUSD").pair_on("binance", *_day("2022-09-25")) == "TUSDUSDT"
    assert universe.token("TUSD").pair_on("binance", *_day("2023-01-10")) is None
    assert universe.token("TUSD").pair_on("binance", *_day("2023-03-12")) == "TUSDUSDT"
    # AGIX and OCEAN merged into FET on 2024-07-01.
    assert universe.token("AGIX").pair_on("binance", *_day("2024-07-01")) is None


def test_unavailable_tokens_come_with_a_reason():
    reasons = load_universe().unavailable(*_day("2026-11-20"))
    assert set(reasons) == {"USDT", "DAI", "BUSD", "AGIX", "OCEAN"}
    assert "quote asset" in reasons["USDT"]
    assert "delisted" in reasons["BUSD"]
    assert "not listed yet" in load_universe().unavailable(*_day("2023-01-02"))["PEPE"]


def test_bad_universe_files_fail_at_load_time():
    raw = yaml.safe_load(DEFAULT_UNIVERSE_PATH.read_text())
    raw["tokens"][0]["category"] = "Gaming"
    with pytest.raises(UniverseError, match="unknown category"):
        _parse(raw)
    raw = yaml.safe_load(DEFAULT_UNIVERSE_PATH.read_text())
    raw["tokens"].append(raw["tokens"][0])
    with pytest.raises(UniverseError, match="duplicate"):
        _parse(raw)
    raw = yaml.safe_load(DEFAULT_UNIVERSE_PATH.read_text())
    raw["tokens"][1]["listings"][0]["end"] = "2010-01-01"
    with pytest.raises(UniverseError, match="ends before it starts"):
        _parse(raw)
