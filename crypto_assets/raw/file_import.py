"""Kline files a user already has, parsed into the raw schema: nothing invented, nothing lost.

Two layouts are recognised:
- Binance's archive CSVs (12 columns, with or without a header, ms or µs timestamps);
- generic OHLCV CSV or Parquet files with a time column (``date``, ``timestamp``, ``open_time``,
  ``time`` or ``datetime``: ISO text in UTC, or epoch ms/µs) and ``open, high, low, close, volume``,
  plus ``ticker`` / ``symbol`` if the file has several pairs.

Fields a file lacks (quote volume, trade count, taker volumes) stay null. The pair comes from a
symbol column, the file name (``BTCUSDT-1h-2023-01.csv``, ``PEPEUSDT_1h.csv.gz``) or ``--symbol``;
the interval from the file name or the spacing of the rows.
"""

from __future__ import annotations

import gzip
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from crypto_assets.ingestion.binance import INTERVAL_MS
from crypto_assets.ingestion.binance_archive import archive_frame
from crypto_assets.raw.schema import RAW_KLINES_SCHEMA, frame_to_raw

if TYPE_CHECKING:
    from resources.settings import Settings

TIME_COLUMNS = ("open_time", "date", "timestamp", "time", "datetime")
SYMBOL_COLUMNS = ("symbol", "ticker", "pair")
OHLCV = ("open", "high", "low", "close", "volume")
_NAME = re.compile(r"^(?P<symbol>[A-Z0-9]{2,20})[-_](?P<interval>\d+[mhdw])\b")
SUFFIXES = (".csv", ".csv.gz", ".parquet")


class ImportError_(ValueError):
    """A file that cannot be imported, with the reason."""


def find_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))
    raise ImportError_(f"{path}: no such file or directory")


def _from_name(path: Path) -> tuple[str | None, str | None]:
    match = _NAME.match(path.name)
    return (match["symbol"], match["interval"]) if match else (None, None)


def _to_ms(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values) or values.astype(str).str.fullmatch(r"\d+").all():
        numbers = values.astype("int64")
        return numbers.where(numbers < 10**14, numbers // 1000)  # µs (archives from 2025) -> ms
    parsed = pd.to_datetime(values, utc=True)
    return (parsed.astype("int64") // 1_000_000).astype("int64")


def _interval(open_ms: pd.Series, named: str | None) -> str:
    if named in INTERVAL_MS:
        return named
    steps = open_ms.sort_values().diff().dropna()
    step = int(steps.mode().iloc[0]) if len(steps) else 60_000
    for name, ms in INTERVAL_MS.items():
        if ms == step:
            return name
    raise ImportError_(
        f"cannot infer the interval from a row spacing of {step} ms; name the file <PAIR>-<interval>-..."
    )


def read_file(path: Path, symbol: str | None = None) -> pd.DataFrame:
    """One file as raw-schema rows (all pairs in it), ``source = file:<name>``."""
    named_symbol, named_interval = _from_name(path)
    source = f"file:{path.name}"
    ingested_at = datetime.now(UTC)
    if path.name.endswith(".parquet"):
        frame = pd.read_parquet(path)
    else:
        text_head = pd.read_csv(path, nrows=1, header=None, dtype=str)
        first = str(text_head.iloc[0, 0]).strip()
        if (first.isdigit() or first == "open_time") and text_head.shape[1] >= 11:
            # Binance archive layout: parse exactly as the archive client does.
            pair = symbol or named_symbol
            if not pair:
                raise ImportError_(
                    f"{path}: archive files carry no symbol; name it <PAIR>-<interval>-... or pass --symbol"
                )
            opener = gzip.open if path.name.endswith(".gz") else open
            with opener(path, "rt") as handle:
                klines = archive_frame(handle.read())
            interval = _interval(klines["open_time"], named_interval)
            return frame_to_raw(pair, interval, klines, source, ingested_at)
        frame = pd.read_csv(path, dtype=str)
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    time_column = next((c for c in TIME_COLUMNS if c in frame.columns), None)
    missing = [c for c in OHLCV if c not in frame.columns]
    if time_column is None or missing:
        raise ImportError_(
            f"{path}: needs a time column (one of {TIME_COLUMNS}) and {OHLCV}; missing {missing or [time_column]}"
        )
    symbol_column = next((c for c in SYMBOL_COLUMNS if c in frame.columns), None)
    if symbol_column is None and not (symbol or named_symbol):
        raise ImportError_(f"{path}: no symbol column; name the file <PAIR>_<interval>... or pass --symbol")
    out = pd.DataFrame(
        {
            "symbol": frame[symbol_column].astype(str) if symbol_column else (symbol or named_symbol),
            "open_time": _to_ms(frame[time_column]),
        }
    )
    for column in OHLCV:
        # Keep the file's own decimal text: bronze decides precision, raw never rounds.
        out[column] = frame[column].map(
            lambda v: None if pd.isna(v) else (v if isinstance(v, str) else repr(float(v)))
        )
    pieces = []
    for _, group in out.groupby("symbol", sort=True):
        interval = _interval(group["open_time"], named_interval)
        group = group.copy()
        group["close_time"] = group["open_time"] + INTERVAL_MS[interval] - 1
        group["interval"] = interval
        pieces.append(group)
    result = pd.concat(pieces, ignore_index=True)
    for column in ("quote_volume", "trade_count", "taker_buy_base_volume", "taker_buy_quote_volume"):
        result[column] = None  # not in the file: null, never invented
    result["trade_count"] = result["trade_count"].astype("Int64")
    result["source"] = source
    result["ingested_at"] = pd.Timestamp(ingested_at).tz_convert("UTC").tz_localize(None)
    return result[[f.name for f in RAW_KLINES_SCHEMA.fields]]


def import_files(
    files: list[Path], settings: Settings, *, symbol: str | None = None, say: Callable[[str], None] = print
) -> dict[str, object]:
    """Parse ``files``, merge them into raw_klines' daily partitions, record it in Dagster.

    A file imported again replaces its own rows (same ``file:<name>`` source); rows from the
    exchange or other files stay. Each touched day is swapped in atomically.
    """
    from dagster import AssetMaterialization, DagsterInstance, MetadataValue
    from pyspark.sql import functions as F

    from crypto_assets.raw.merge import merge_raw
    from resources.parquet_io import LakeResource, write_partitions_atomically
    from resources.spark import build_spark_resource

    started = time.monotonic()
    frames = []
    for path in files:
        frame = read_file(path, symbol)
        say(
            f"  {path.name}: {len(frame):,} rows, {frame['symbol'].nunique()} pair(s), interval {', '.join(sorted(frame['interval'].unique()))}"
        )
        frames.append(frame)
    combined = pd.concat(frames, ignore_index=True)
    # The same lake and Spark resources the raw_klines asset uses, outside a Dagster run.
    lake = LakeResource(root=str(settings.lake_root), pyspark=build_spark_resource(settings))
    new = lake.pyspark.spark_session.createDataFrame(combined, schema=RAW_KLINES_SCHEMA)
    days = sorted(
        {datetime.fromtimestamp(ms / 1000, UTC).date().isoformat() for ms in combined["open_time"].unique()}
    )
    targets = {day: lake.partition_path("raw", "raw_klines", day) for day in days}
    existing = lake.read_partitions("raw", "raw_klines", days)
    merged = merge_raw(existing, new, replaced_sources=sorted(combined["source"].unique())).localCheckpoint()
    write_partitions_atomically(merged, "open_time", targets)
    counts = {
        r["day"]: r["rows"]
        for r in merged.groupBy(F.date_format(F.timestamp_millis("open_time"), "yyyy-MM-dd").alias("day"))
        .agg(F.count("*").alias("rows"))
        .collect()
    }
    instance = DagsterInstance.get()
    for day in days:
        instance.report_runless_asset_event(
            AssetMaterialization(
                asset_key="raw_klines",
                partition=day,
                description="file import",
                metadata={
                    "dagster/row_count": MetadataValue.int(int(counts.get(day, 0))),
                    "imported_files": MetadataValue.json([p.name for p in files]),
                },
            )
        )
    return {
        "rows": len(combined),
        "partitions": len(days),
        "first_day": days[0],
        "last_day": days[-1],
        "seconds": time.monotonic() - started,
    }
