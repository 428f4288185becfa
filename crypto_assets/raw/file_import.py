"""Kline files a user already has, validated whole, then added to raw: nothing invented, nothing lost.

Two layouts are recognised:
- Binance's archive CSVs (12 columns, with or without a header, ms or µs timestamps), also in the
  archive's own folders (``data/spot/...``, ``data/futures/um/...``, ``data/futures/cm/...``,
  which name the market);
- generic OHLCV CSV or Parquet files with a time column (``date``, ``timestamp``, ``open_time``,
  ``time`` or ``datetime``: ISO text in UTC, or epoch ms/µs) and ``open, high, low, close, volume``,
  plus ``ticker`` / ``symbol`` if the file has several pairs.

The pair comes from a symbol column, the file name (``BTCUSDT-1h-2023-01.csv``,
``PEPEUSDT_1h.csv.gz``, ``BTCUSDC_1m_20230301_20230321.csv``) or ``--symbol``; the interval from
the file name or the spacing of the rows; the venue and market from ``--venue``/``--market`` or the
archive folder (Binance spot by default). Every row is checked before anything lands (a known pair
of that venue and market, numbers, OHLC, the interval's grid, no duplicates); a failure names the
file, the line and the field.

Landing is additive: a file's rows are stored beside rows of other sources (raw keeps one row per
source and slot; bronze picks the latest ingestion), and an import replaces only the rows *the same
file* delivered before for the same venue, market, pair and interval inside the range it covers.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from crypto_assets.ingestion.binance import INTERVAL_MS
from crypto_assets.raw.merge import Coverage
from crypto_assets.raw.schema import RAW_KLINES_SCHEMA, with_provenance
from crypto_assets.universe import MARKETS, Universe, load_universe

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from resources.settings import Settings

TIME_COLUMNS = ("open_time", "date", "timestamp", "time", "datetime")
SYMBOL_COLUMNS = ("symbol", "ticker", "pair")
PRICES = ("open", "high", "low", "close")
OHLCV = ("open", "high", "low", "close", "volume")
ARCHIVE_COLUMNS = (
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume", "trade_count",
    "taker_buy_base_volume", "taker_buy_quote_volume", "ignore",
)  # fmt: skip
OPTIONAL_NUMBERS = ("quote_volume", "taker_buy_base_volume", "taker_buy_quote_volume")
# <PAIR>-<interval>-<date>.csv (the archive), <PAIR>_<interval>[_anything].csv; coin-M pairs carry
# a suffix (BTCUSD_PERP, BTCUSD_240329).
_NAME = re.compile(r"^(?P<symbol>[A-Z0-9]{2,20}(?:_PERP|_\d{6})?)[-_](?P<interval>\d+[mhdw])(?=[-_.]|$)")
_FOLDER_MARKETS = {("futures", "um"): "usdm_futures", ("futures", "cm"): "coinm_futures"}
SUFFIXES = (".csv", ".csv.gz", ".parquet")
MAX_PROBLEMS = 10
MICROSECONDS = 10**14  # archive timestamps from 2025 are µs; ms values stay below this


class ImportError_(ValueError):
    """A file that cannot be imported, with the reason (file, line, field)."""


@dataclass(frozen=True)
class ParsedFile:
    """One file, validated, as raw-schema rows."""

    path: Path
    venue: str
    market: str
    rows: pd.DataFrame

    @property
    def source(self) -> str:
        return f"file:{self.path.name}"

    def coverages(self) -> list[Coverage]:
        return [
            Coverage(self.source, self.venue, self.market, symbol, interval, int(g.min()), int(g.max()))
            for (symbol, interval), g in self.rows.groupby(["symbol", "interval"], sort=True)["open_time"]
        ]


@dataclass
class Problems:
    """Everything wrong with one file, reported together (first ``MAX_PROBLEMS``)."""

    path: Path
    found: list[tuple[int, str]] = field(default_factory=list)
    total: int = 0

    def add(self, where: str, message: str) -> None:
        self.total += 1
        if len(self.found) < MAX_PROBLEMS:
            number = re.search(r"\d+", where)
            self.found.append((int(number.group()) if number else 0, f"{self.path}:{where}: {message}"))

    def add_rows(self, lines: pd.Series, message: Callable[[int], str]) -> None:
        for position, line in enumerate(lines.tolist()):
            if position >= MAX_PROBLEMS:
                self.total += len(lines) - position
                break
            self.add(f"line {line}", message(position))

    def raise_if_any(self) -> None:
        if self.total:
            more = f"\n  ... and {self.total - len(self.found)} more" if self.total > len(self.found) else ""
            raise ImportError_(
                f"{self.path}: {self.total} problem(s), nothing imported:\n  "
                + "\n  ".join(text for _, text in sorted(self.found))
                + more
            )


def find_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(SUFFIXES))
    raise ImportError_(f"{path}: no such file or directory")


def _upper_pair(name: str) -> str:
    """The name with its leading pair part upper-cased (``btcusdt_1m.csv`` -> ``BTCUSDT_1m.csv``)."""
    found = re.match(r"^([A-Za-z0-9]+)(.*)$", name, re.DOTALL)
    return found[1].upper() + found[2] if found else name


def name_parts(path: Path) -> tuple[str | None, str | None]:
    """(pair, interval) from the file name, when it follows one of the known patterns."""
    match = _NAME.match(path.name)
    return (match["symbol"], match["interval"]) if match else (None, None)


def folder_market(path: Path) -> str | None:
    """The market named by the archive's folder layout (``.../spot/...``, ``.../futures/um/...``)."""
    parts = [p.lower() for p in path.parts[:-1]]
    for index, part in enumerate(parts):
        if part == "futures" and index + 1 < len(parts):
            found = _FOLDER_MARKETS.get(("futures", parts[index + 1]))
            if found:
                return found
        if part == "spot":
            return "spot"
    return None


def resolve_market(path: Path, market: str | None) -> str:
    from_folder = folder_market(path)
    if market and from_folder and market != from_folder:
        raise ImportError_(f"{path}: --market {market} but the archive folder says {from_folder}")
    resolved = market or from_folder or "spot"
    if resolved not in MARKETS:
        raise ImportError_(f"{path}: unknown market {resolved!r}; one of {MARKETS}")
    return resolved


def _lines(path: Path) -> list[list[str]]:
    # utf-8-sig: a byte-order mark (as spreadsheet exports write) is not part of the first column.
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as handle:
                text = handle.read()
        else:
            text = path.read_text(encoding="utf-8-sig")
    except (EOFError, OSError, UnicodeDecodeError) as exc:
        kind = "gzip file" if path.name.endswith(".gz") else "UTF-8 text file"
        raise ImportError_(f"{path}: not a readable {kind} ({type(exc).__name__}: {exc})") from None
    if not text.strip():
        raise ImportError_(f"{path}: the file is empty")
    return list(csv.reader(io.StringIO(text)))


def _table(path: Path) -> tuple[pd.DataFrame, Problems]:
    """The file as text columns with a ``_line`` column (the line in the file, 1-based)."""
    problems = Problems(path)
    if path.name.endswith(".parquet"):
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise ImportError_(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from None
        if frame.empty:
            raise ImportError_(f"{path}: no rows")
        frame.columns = [str(c).strip().lower() for c in frame.columns]
        frame = frame.astype(object).where(frame.notna(), None)
        frame["_line"] = range(1, len(frame) + 1)  # Parquet has rows, not lines: row numbers
        return frame, problems
    rows = _lines(path)
    first = [cell.strip() for cell in rows[0]]
    archive = len(first) >= 11 and (first[0].isdigit() or first[0].lower() == "open_time")
    header = not first[0].isdigit()
    if archive:
        columns = list(ARCHIVE_COLUMNS[: max(len(first), 11)])
    else:
        columns = [c.lower() for c in first]
    body = rows[1:] if header else rows
    start = 2 if header else 1
    if not body or all(not any(cell.strip() for cell in row) for row in body):
        raise ImportError_(f"{path}: only a header, no rows")
    kept: list[list[str]] = []
    lines: list[int] = []
    for offset, row in enumerate(body):
        line = start + offset
        if not any(cell.strip() for cell in row):
            continue  # a blank line (e.g. at the end)
        if len(row) < len(columns):
            problems.add(
                f"line {line}",
                f"{len(row)} of {len(columns)} fields (truncated row?); missing {', '.join(columns[len(row) :])}",
            )
            continue
        kept.append([cell.strip() for cell in row[: len(columns)]])
        lines.append(line)
    frame = pd.DataFrame(kept, columns=columns, dtype=object)
    frame["_line"] = lines
    return frame, problems


# Epoch numbers by magnitude for the years 2001..2286: seconds ~1e9, ms ~1e12, µs ~1e15, ns ~1e18.
_EPOCH_UNITS = ((10**11, "seconds"), (MICROSECONDS, "milliseconds"), (10**17, "microseconds"))


def _epoch_unit(number: int) -> str:
    return next((unit for bound, unit in _EPOCH_UNITS if number < bound), "nanoseconds")


def _epoch_ms(values: pd.Series, problems: Problems, lines: pd.Series, column: str) -> pd.Series:
    text = values.astype(str).str.strip()
    digits = text.str.fullmatch(r"\d+")
    if digits.all():
        numbers = text.astype("int64")
        units = numbers.map(_epoch_unit)
        # Seconds and nanoseconds are refused in one line for the file, not row by row (taken for
        # milliseconds they are 1970, or the year 55131).
        for unit in ("seconds", "nanoseconds"):
            wrong = units == unit
            if wrong.any():
                more = f" (and {int(wrong.sum()) - 1} more)" if wrong.sum() > 1 else ""
                raise ImportError_(
                    f"{problems.path}:line {int(lines[wrong].iloc[0])}{more}: field {column!r}:"
                    f" {text[wrong].iloc[0]} looks like epoch {unit}; times must be epoch milliseconds"
                    " (or microseconds) or UTC dates, nothing imported"
                )
        return numbers.where(units != "microseconds", numbers // 1000)
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    bad = parsed.isna()
    if bad.any():
        shown = text[bad].tolist()
        problems.add_rows(
            lines[bad], lambda i: f"field {column!r}: {shown[i]!r} is not a UTC time or epoch ms"
        )
    return (parsed.astype("int64") // 1_000_000).where(~bad, 0).astype("int64")


def _interval(open_ms: pd.Series, named: str | None) -> str | None:
    if named in INTERVAL_MS:
        return named
    steps = open_ms.sort_values().diff().dropna()
    step = int(steps.mode().iloc[0]) if len(steps) else None
    return next((name for name, ms in INTERVAL_MS.items() if ms == step), None)


def read_file(
    path: Path,
    symbol: str | None = None,
    *,
    venue: str = "binance",
    market: str | None = None,
    universe: Universe | None = None,
) -> ParsedFile:
    """One file, parsed and validated whole, as raw-schema rows (``source = file:<name>``).

    Raises :class:`ImportError_` naming the file, the line and the field of every problem found
    (the first ten): nothing of a bad file is ever returned.
    """
    universe = universe or load_universe()
    market = resolve_market(path, market)
    known = universe.pairs(venue, market)
    named_symbol, named_interval = name_parts(path)
    if named_symbol is None:
        # btcusdt_1m.csv: a lower-case name gives its pair when that pair is known here (a name
        # such as data_1h.csv is not taken for the pair DATA).
        lower = name_parts(path.with_name(_upper_pair(path.name)))
        if lower[0] in known:
            named_symbol, named_interval = lower
    if symbol is not None and named_symbol is not None and symbol != named_symbol:
        raise ImportError_(
            f"{path}: --symbol {symbol} contradicts the pair its name gives, {named_symbol}; rename the"
            " file or leave out --symbol"
        )
    for pair in (symbol, named_symbol):
        if pair is not None:
            _refuse_per_thousand(path, pair)
    if symbol is not None and symbol not in known:
        raise ImportError_(_unknown_pair(symbol, venue, market, known))
    table, problems = _table(path)
    lines = table["_line"]
    time_column = next((c for c in TIME_COLUMNS if c in table.columns), None)
    missing = [c for c in OHLCV if c not in table.columns]
    if time_column is None or missing:
        raise ImportError_(
            f"{path}: needs a time column (one of {', '.join(TIME_COLUMNS)}) and {', '.join(OHLCV)};"
            f" missing {', '.join(missing or ['a time column'])}"
        )
    symbol_column = next((c for c in SYMBOL_COLUMNS if c in table.columns), None)
    if symbol_column is not None:
        pairs = table[symbol_column].astype(str).str.strip().str.upper()
        for pair in pairs.unique():
            _refuse_per_thousand(path, str(pair))
        expected = symbol or named_symbol
        if expected is not None:
            other = pairs != expected
            shown = pairs[other].tolist()
            problems.add_rows(
                lines[other],
                lambda i: (
                    f"field {symbol_column!r}: {shown[i]!r}, but "
                    + ("--symbol" if symbol else "the file name")
                    + f" says {expected}"
                ),
            )
    elif symbol or named_symbol:
        pairs = pd.Series(symbol or named_symbol, index=table.index)
    else:
        raise ImportError_(
            f"{path}: no symbol column and the file name gives no pair; name it <PAIR>_<interval>[_...].csv"
            " or <PAIR>-<interval>-<date>.csv, or pass --symbol"
        )
    unknown = ~pairs.isin(list(known))
    for pair, found in lines[unknown].groupby(pairs[unknown], sort=True):
        rows = f"line {found.iloc[0]}" + (f" (and {len(found) - 1} more)" if len(found) > 1 else "")
        problems.add(rows, _unknown_pair(str(pair), venue, market, known, field=symbol_column))
    open_ms = _epoch_ms(table[time_column], problems, lines, time_column)
    out = pd.DataFrame({"venue": venue, "market": market, "symbol": pairs, "open_time": open_ms})
    numbers: dict[str, pd.Series] = {}
    for column in (*OHLCV, *(c for c in OPTIONAL_NUMBERS if c in table.columns)):
        text = table[column].map(lambda v: None if v is None or pd.isna(v) else str(v).strip())
        empty = text.isna() | (text == "")
        value = pd.to_numeric(text.where(~empty), errors="coerce")
        if column in OHLCV:
            problems.add_rows(lines[empty], lambda _i, c=column: f"field {c!r} is empty")
        bad = value.isna() & ~empty
        shown = text[bad].tolist()
        problems.add_rows(lines[bad], lambda i, c=column, s=shown: f"field {c!r}: {s[i]!r} is not a number")
        infinite = value.isin([float("inf"), float("-inf")])
        problems.add_rows(lines[infinite], lambda _i, c=column: f"field {c!r} is not finite")
        negative = value < 0
        problems.add_rows(lines[negative & ~infinite], lambda _i, c=column: f"field {c!r} is negative")
        if column in PRICES:  # a price of zero is no price (volumes and counts may be zero)
            problems.add_rows(lines[value == 0], lambda _i, c=column: f"field {c!r} is zero: not a price")
        numbers[column] = value
        # Keep the file's own decimal text: bronze decides precision, raw never rounds.
        out[column] = text.where(~empty, None)
    o, h, lo, c = (numbers[k] for k in ("open", "high", "low", "close"))
    inconsistent = (h < lo) | (h < o) | (h < c) | (lo > o) | (lo > c)
    problems.add_rows(
        lines[inconsistent],
        lambda _i: "OHLC inconsistent (high below open/close/low, or low above open/close)",
    )
    if "trade_count" in table.columns:
        counts = pd.to_numeric(table["trade_count"], errors="coerce")
        bad = counts.isna() | (counts < 0) | (counts % 1 != 0)
        problems.add_rows(lines[bad], lambda _i: "field 'trade_count' is not a whole number")
        out["trade_count"] = counts.where(~bad).astype("Int64")
    else:
        out["trade_count"] = pd.array([None] * len(out), dtype="Int64")
    for column in OPTIONAL_NUMBERS:
        if column not in out.columns:
            out[column] = None  # not in the file: null, never invented
    intervals: dict[str, str] = {}
    for pair, group in out.groupby("symbol", sort=True):
        found = _interval(group["open_time"], named_interval)
        if found is None:
            problems.add(
                "rows",
                f"{pair}: cannot tell the interval from the row spacing; name the file <PAIR>-<interval>-...",
            )
        else:
            intervals[str(pair)] = found
    if len(intervals) < out["symbol"].nunique():
        problems.raise_if_any()  # without an interval there is no grid to check against
    out["interval"] = out["symbol"].map(intervals)
    step = out["interval"].map(INTERVAL_MS).astype("int64")
    off_grid = (out["open_time"] % step) != 0
    shown_ms = out["open_time"][off_grid].tolist()
    shown_interval = out["interval"][off_grid].tolist()
    problems.add_rows(
        lines[off_grid],
        lambda i: f"field {time_column!r}: {_iso(shown_ms[i])} is not on the {shown_interval[i]} grid",
    )
    duplicated = out.duplicated(["symbol", "open_time"], keep=False)
    if duplicated.any():
        for (pair, opened), group in lines[duplicated].groupby(
            [out["symbol"][duplicated], out["open_time"][duplicated]]
        ):
            problems.add(
                f"lines {', '.join(map(str, group.tolist()))}",
                f"{pair} {_iso(int(opened))} appears {len(group)} times",
            )
    problems.raise_if_any()
    out["close_time"] = out["open_time"] + step - 1
    out["source"] = f"file:{path.name}"
    out["ingested_at"] = pd.Timestamp(datetime.now(UTC)).tz_convert("UTC").tz_localize(None)
    return ParsedFile(
        path, venue, market, out[[f.name for f in RAW_KLINES_SCHEMA.fields]].reset_index(drop=True)
    )


# Futures quoting a multiple of the coin: 1000SHIBUSDT is the price of 1,000 SHIB.
_PER_MANY = re.compile(r"^(?P<many>1000000|1000|1M)(?P<pair>[A-Z][A-Z0-9]+)$")


def _refuse_per_thousand(path: Path, pair: str) -> None:
    """A per-1,000 contract's prices are 1,000x the coin's: stored beside the coin's pair they would
    read as its price x1,000, so such files are refused, saying why."""
    found = _PER_MANY.match(pair)
    if found:
        many = {"1M": "1,000,000", "1000000": "1,000,000", "1000": "1,000"}[found["many"]]
        raise ImportError_(
            f"{path}: {pair} is a per-{many} contract (one unit is {many} of the coin, as on Binance"
            f" futures): its prices are {many}x {found['pair']}'s. Such contracts are not imported:"
            f" their rows would read as the coin's price x{many}"
        )


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _unknown_pair(pair: str, venue: str, market: str, known: dict, field: str | None = None) -> str:
    where = f"field {field!r}: " if field else ""
    return (
        f"{where}{pair!r} is not a pair of {venue}/{market} in the universe ({len(known)} known, e.g."
        f" {', '.join(sorted(known)[:4])}); add it to crypto_assets/config/universe.yaml or pass --venue/--market"
    )


@dataclass(frozen=True)
class SeriesChange:
    """What an import does to one series (venue, market, pair, interval) of one file."""

    source: str
    venue: str
    market: str
    symbol: str
    interval: str
    first: str
    last: str
    rows: int
    replaced: int  # the same file's earlier rows inside the range, replaced
    shadowed: int  # other sources' rows at the same slots: kept in raw, bronze takes the newest


def plan_changes(existing: pd.DataFrame | None, files: Sequence[ParsedFile]) -> list[SeriesChange]:
    """Counts per series, computed before anything is written (``import --dry-run`` prints them)
    from the keys of the raw partitions the files touch (:func:`existing_keys`): pandas, no JVM."""
    series = ["source", "venue", "market", "symbol", "interval"]
    slots = ["venue", "market", "symbol", "interval", "open_time"]
    replaced: dict[tuple, int] = {}
    shadowed: dict[tuple, int] = {}
    if existing is not None and len(existing):
        covered = pd.Series(False, index=existing.index)
        for c in (c for f in files for c in f.coverages()):
            covered |= (
                (existing["source"] == c.source)
                & (existing["venue"] == c.venue)
                & (existing["market"] == c.market)
                & (existing["symbol"] == c.symbol)
                & (existing["interval"] == c.interval)
                & existing["open_time"].between(c.first_open_ms, c.last_open_ms)
            )
        replaced = existing[covered].groupby(series).size().to_dict()
        new = pd.concat([f.rows[[*series, "open_time"]] for f in files], ignore_index=True)
        others = existing[[*slots, "source"]].rename(columns={"source": "_other"})
        joined = new.merge(others, on=slots)
        joined = joined[joined["_other"] != joined["source"]]
        shadowed = joined.groupby(series)["open_time"].nunique().to_dict()
    changes = []
    for parsed in files:
        for coverage in parsed.coverages():
            key = (coverage.source, coverage.venue, coverage.market, coverage.symbol, coverage.interval)
            rows = parsed.rows
            count = int(((rows["symbol"] == coverage.symbol) & (rows["interval"] == coverage.interval)).sum())
            changes.append(
                SeriesChange(
                    *key,
                    first=_iso(coverage.first_open_ms),
                    last=_iso(coverage.last_open_ms),
                    rows=count,
                    replaced=int(replaced.get(key, 0)),
                    shadowed=int(shadowed.get(key, 0)),
                )
            )
    return changes


def import_files(
    files: list[Path],
    settings: Settings,
    *,
    symbol: str | None = None,
    venue: str = "binance",
    market: str | None = None,
    dry_run: bool = False,
    say: Callable[[str], None] = print,
) -> dict[str, object]:
    """Validate every file, then add their rows to raw_klines' daily partitions and record it in
    Dagster. Nothing lands unless every file is valid.

    Rows of other sources are never touched; a file imported again replaces only its own earlier
    rows of the same series inside the range it covers. Each touched day is swapped in atomically.
    """
    started = time.monotonic()
    universe = load_universe()
    parsed: list[ParsedFile] = []
    failures: list[str] = []
    for path in files:
        try:
            one = read_file(path, symbol, venue=venue, market=market, universe=universe)
        except ImportError_ as exc:
            failures.append(str(exc))
            continue
        intervals = ", ".join(sorted(one.rows["interval"].unique()))
        say(
            f"  {path.name}: {len(one.rows):,} rows, {one.rows['symbol'].nunique()} pair(s),"
            f" {one.venue}/{one.market}, interval {intervals}"
        )
        parsed.append(one)
    if failures:
        raise ImportError_("\n".join(failures))
    if not parsed:
        raise ImportError_("no files to import")
    sources = [p.source for p in parsed]
    duplicate_names = sorted({s for s in sources if sources.count(s) > 1})
    if duplicate_names:
        raise ImportError_(
            f"files with the same name are the same source and would replace each other: {duplicate_names};"
            " import them one at a time or rename them"
        )
    combined = pd.concat([p.rows for p in parsed], ignore_index=True)
    days = sorted({_iso(int(ms))[:10] for ms in combined["open_time"].unique()})
    if not dry_run:
        from resources.parquet_io import recover_partitions

        # A writer killed mid-swap left a day half-renamed: put it back before counting its rows.
        recover_partitions([settings.lake_root / "raw" / "raw_klines" / f"dt={day}" for day in days])
    changes = plan_changes(existing_keys(settings.lake_root, days), parsed)
    for change in changes:
        say(
            f"  {change.source} {change.venue}/{change.market} {change.symbol} {change.interval}"
            f" {change.first} .. {change.last}: {change.rows:,} rows; replaces {change.replaced:,} earlier"
            f" rows of the same file; {change.shadowed:,} slots also held by other sources (kept)"
        )
    report: dict[str, object] = {
        "rows": len(combined),
        "partitions": len(days),
        "first_day": days[0],
        "last_day": days[-1],
        "replaced": sum(c.replaced for c in changes),
        "shadowed": sum(c.shadowed for c in changes),
        "changes": changes,
        "dry_run": dry_run,
    }
    if not dry_run:  # Spark only to write: a dry run validates and plans without a JVM
        lake, spark = _lake(settings)
        new = spark.createDataFrame(combined, schema=RAW_KLINES_SCHEMA)
        existing = lake.read_partitions("raw", "raw_klines", days)
        existing = with_provenance(existing) if existing is not None else None
        _land(lake, existing, new, parsed, days, f"file import: {', '.join(sources)}")
    report["seconds"] = time.monotonic() - started
    return report


KEY_COLUMNS = ("venue", "market", "symbol", "interval", "open_time", "source")


def existing_keys(lake_root: Path, days: Sequence[str]) -> pd.DataFrame | None:
    """The raw rows' keys on ``days`` (finished partitions only), read with pyarrow; partitions
    written before venue and market were recorded are Binance spot."""
    import pyarrow.parquet as pq

    from crypto_assets.raw.schema import PROVENANCE_DEFAULTS

    frames = []
    for day in days:
        folder = Path(lake_root) / "raw" / "raw_klines" / f"dt={day}"
        for file in sorted(folder.glob("*.parquet")) if folder.is_dir() else []:
            present = set(pq.read_schema(file).names)
            table = pq.read_table(file, columns=[c for c in KEY_COLUMNS if c in present]).to_pandas()
            for column, value in PROVENANCE_DEFAULTS.items():
                if column not in table.columns:
                    table[column] = value
            frames.append(table[list(KEY_COLUMNS)])
    return pd.concat(frames, ignore_index=True) if frames else None


def _lake(settings: Settings) -> tuple[object, SparkSession]:
    from resources.parquet_io import LakeResource
    from resources.spark import build_spark_resource

    # The same lake and Spark resources the raw_klines asset uses, outside a Dagster run.
    lake = LakeResource(root=str(settings.lake_root), pyspark=build_spark_resource(settings))
    return lake, lake.pyspark.spark_session


def _land(lake, existing, new, parsed: Sequence[ParsedFile], days: list[str], description: str) -> None:  # noqa: ANN001
    from crypto_assets.raw.merge import covered_rows, merge_raw

    coverages = [c for f in parsed for c in f.coverages()]
    merged = merge_raw(existing, new, covered_rows(coverages)).localCheckpoint()
    _write_days(lake, merged, days, description, {"imported_files": [f.path.name for f in parsed]})


def _write_days(lake, frame, days: list[str], description: str, extra: dict) -> None:  # noqa: ANN001
    from dagster import AssetMaterialization, DagsterInstance, MetadataValue
    from pyspark.sql import functions as F

    from resources.parquet_io import write_partitions_atomically

    targets = {day: lake.partition_path("raw", "raw_klines", day) for day in days}
    write_partitions_atomically(frame, "open_time", targets)
    counts = {
        r["day"]: r["rows"]
        for r in frame.groupBy(F.date_format(F.timestamp_millis("open_time"), "yyyy-MM-dd").alias("day"))
        .agg(F.count("*").alias("rows"))
        .collect()
    }
    instance = DagsterInstance.get()
    for day in days:
        instance.report_runless_asset_event(
            AssetMaterialization(
                asset_key="raw_klines",
                partition=day,
                description=description,
                metadata={
                    "dagster/row_count": MetadataValue.int(int(counts.get(day, 0))),
                    **{k: MetadataValue.json(v) for k, v in extra.items()},
                },
            )
        )


def remove_source(
    sources: Sequence[str],
    settings: Settings,
    *,
    venue: str | None = None,
    market: str | None = None,
    imported_at: str | None = None,
    every_import: bool = False,
    dry_run: bool = False,
    say: Callable[[str], None] = print,
) -> dict[str, object]:
    """Undo imports: delete the raw rows of ``sources`` (e.g. ``file:BTCUSDT_1h.csv``), day by
    day, atomically. Rows of other sources they shadowed come back at the next refinement.

    A file name is not an import's identity: a spot and a futures file of the same name, or two
    imports of one file, are several. Each import is (source, venue, market, when it was imported);
    ``venue``, ``market`` and ``imported_at`` (a prefix of its UTC time, as listed) pick among
    them, and more than one match is refused unless ``every_import``."""
    from pyspark.sql import functions as F

    started = time.monotonic()
    lake, spark = _lake(settings)
    root = Path(settings.lake_root) / "raw" / "raw_klines"
    if not root.exists():
        raise ImportError_(f"{root}: the lake has no raw_klines yet")
    table = with_provenance(spark.read.parquet(str(root)))
    when = F.date_format("ingested_at", "yyyy-MM-dd HH:mm:ss")
    chosen = F.col("source").isin(list(sources))
    for column, value in (("venue", venue), ("market", market)):
        if value is not None:
            chosen &= F.col(column) == value
    if imported_at is not None:
        chosen &= when.startswith(imported_at)
    found = (
        table.where(chosen)
        .groupBy(
            F.col("dt").cast("string").alias("dt"), "source", "venue", "market", when.alias("imported_at")
        )
        .agg(F.count("*").alias("rows"))
        .collect()
    )
    if not found:
        raise ImportError_(
            f"no raw rows from {', '.join(sources)}"
            + (
                f" ({venue or '*'}/{market or '*'}, imported {imported_at or 'any time'})"
                if venue or market or imported_at
                else ""
            )
            + " (sources look like file:<file name>)"
        )
    imports: dict[tuple[str, str, str, str], int] = {}
    for row in found:
        key = (row["source"], row["venue"], row["market"], row["imported_at"])
        imports[key] = imports.get(key, 0) + row["rows"]
    listed = [f"{s} {v}/{m} imported {t} ({n:,} rows)" for (s, v, m, t), n in sorted(imports.items())]
    if len(imports) > 1 and not every_import:
        raise ImportError_(
            f"{len(imports)} imports match: "
            + "; ".join(listed)
            + ". Pick one with --venue, --market or --imported-at, or pass --all to remove every one"
        )
    for line in listed:
        say(f"  {line}")
    per_day: dict[str, int] = {}
    for row in found:
        day = str(row["dt"])[:10]
        per_day[day] = per_day.get(day, 0) + row["rows"]
    days = sorted(per_day)
    if not dry_run:
        existing = with_provenance(lake.read_partitions("raw", "raw_klines", days))
        kept = existing.where(~chosen).localCheckpoint()
        _write_days(lake, kept, days, f"removed {', '.join(sources)}", {"removed_sources": list(sources)})
    return {
        "rows": sum(per_day.values()),
        "partitions": len(days),
        "first_day": days[0],
        "last_day": days[-1],
        "dry_run": dry_run,
        "seconds": time.monotonic() - started,
    }
