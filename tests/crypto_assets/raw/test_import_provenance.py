"""Imports add rows and never delete other data: the overwrite scenarios of a new user, for real
on the lake (Spark, atomic day swaps, Dagster materializations)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from crypto_assets.bronze.transforms import clean_klines
from crypto_assets.ingestion.binance import INTERVAL_MS
from crypto_assets.raw.file_import import ImportError_, import_files, remove_source
from crypto_assets.universe import load_universe
from resources.settings import Settings

HEADER = "date,open,high,low,close,volume,ticker\n"
DAY1, DAY2 = "2023-01-01", "2023-01-02"


def _rows(day: str, hours: range | list[int], close: str = "1.5") -> str:
    return "".join(f"{day} {h:02d}:00:00,1,2,0.5,{close},10,BTCUSDT\n" for h in hours)


def _write(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(HEADER + body)
    return path


@pytest.mark.integration
def test_imports_are_additive_scoped_and_undoable(local_env, monkeypatch, tmp_path, spark):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    (tmp_path / "dagster").mkdir()
    settings = Settings.from_env()
    files = tmp_path / "files"
    files.mkdir()

    def run(path: Path, **kwargs: object) -> dict:
        return import_files([path], settings, say=lambda _: None, **kwargs)  # type: ignore[arg-type]

    def raw(day: str, where: str = "true") -> list:
        return spark.read.parquet(str(local_env / "raw" / "raw_klines" / f"dt={day}")).where(where).collect()

    full = _write(files, "history.csv", _rows(DAY1, range(24)) + _rows(DAY2, range(24)))
    assert run(full)["rows"] == 48

    # The one-row file named BTCUSDT_1h.csv used to delete 23 of BTC's 24 rows: now it adds one.
    one = _write(files, "BTCUSDT_1h.csv", _rows(DAY1, [5], close="1.7"))
    report = run(one)
    assert (report["replaced"], report["shadowed"]) == (0, 1)
    assert len(raw(DAY1)) == 25 and len(raw(DAY1, "source = 'file:history.csv'")) == 24

    # A file whose ticker says BTCUSDT under another name: added beside, nothing replaced.
    run(_write(files, "other.csv", _rows(DAY1, [6, 7], close="1.8")))
    # The first name again, one row on day 2: only that file's rows in [day 2 03:00] are replaced;
    # its day-1 row stays and BTC never loses a bar.
    again = run(_write(files, "BTCUSDT_1h.csv", _rows(DAY2, [3], close="1.9")))
    assert again["replaced"] == 0
    assert len(raw(DAY1, "source = 'file:BTCUSDT_1h.csv'")) == 1
    assert len(raw(DAY2, "source = 'file:BTCUSDT_1h.csv'")) == 1

    # Bronze picks the newest row per slot: 24 bars on day 1, the files' hours from the files.
    universe = load_universe()
    bronze = clean_klines(
        spark.read.parquet(str(local_env / "raw" / "raw_klines" / f"dt={DAY1}")),
        universe.series_tokens(),
        {t.symbol: t.category for t in universe.tokens},
        [],
        datetime(2023, 1, 1, tzinfo=UTC),
        datetime(2023, 1, 2, tzinfo=UTC),
        tuple(INTERVAL_MS),
    ).collect()
    by_hour = {r["open_time"].hour: r for r in bronze}
    assert len(bronze) == 24 and not any(r["is_gap"] for r in bronze)
    assert (by_hour[5]["source"], str(by_hour[5]["close"])[:3]) == ("file:BTCUSDT_1h.csv", "1.7")
    assert by_hour[6]["source"] == "file:other.csv" and by_hour[0]["source"] == "file:history.csv"

    # The same file as USDT-M futures: another series, the spot rows untouched.
    futures = run(full, market="usdm_futures")
    assert futures["replaced"] == 0 and futures["shadowed"] == 0
    assert len(raw(DAY1, "market = 'usdm_futures'")) == 24 and len(raw(DAY1, "market = 'spot'")) == 27

    # A dry run validates and counts, and writes nothing.
    before = len(raw(DAY1))
    dry = run(_write(files, "late.csv", _rows(DAY1, range(10, 14))), dry_run=True)
    assert dry["dry_run"] and dry["shadowed"] == 4 and len(raw(DAY1)) == before

    # A file name is not an import: history.csv went in as spot and as futures. Removing it by
    # name alone would take both (48 + 48 rows): refused, listing each import.
    with pytest.raises(ImportError_, match=r"2 imports match: file:history.csv binance/spot imported .*"
                       r"file:history.csv binance/usdm_futures imported .*--market"):  # fmt: skip
        remove_source(["file:history.csv"], settings, dry_run=True, say=lambda _: None)
    futures_only = remove_source(["file:history.csv"], settings, market="usdm_futures", say=lambda _: None)
    assert futures_only["rows"] == 48 and len(raw(DAY1, "market = 'usdm_futures'")) == 0
    assert len(raw(DAY1, "source = 'file:history.csv'")) == 24  # the spot import stays
    before = len(raw(DAY1))

    # Undo a file imported twice (day 1, then day 2): both imports, asked for with --all; every
    # other source's rows stay.
    removed = remove_source(["file:BTCUSDT_1h.csv"], settings, every_import=True, say=lambda _: None)
    assert (removed["rows"], removed["partitions"]) == (2, 2)
    assert len(raw(DAY1, "source = 'file:BTCUSDT_1h.csv'")) == 0
    assert len(raw(DAY1)) == before - 1 and len(raw(DAY2)) == 24  # history.csv (spot) alone
