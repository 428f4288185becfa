"""What a failed ``raw_klines`` had already fetched, kept so that its retry fetches only the rest.

A warm-up fetches hundreds of pair-periods; one source failing after the retries fails the run,
and the lake must not get a partial partition. So nothing is written to the partitions, but each
pair's period is kept here as soon as it is fetched: one small Parquet file per (source, interval,
period, pair), written to a temporary name and renamed (a kill leaves the file whole or absent).
The retry reads those and fetches only the pairs that are missing. A run that lands its
partitions discards what it used, so the next run of the same days fetches afresh; files older
than a day (an abandoned retry) and temporary files of a dead writer are swept on open.

Only closed periods are kept (every candle closed when it was fetched): an open period would
resume with candles missing. Pure Python (pandas, pyarrow): no Dagster.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

FOLDER = ".fetched"
MAX_AGE_SECONDS = 24 * 3600
_TMP = ".tmp-"
_STALE_TMP_SECONDS = 3600


@dataclass(frozen=True)
class Fetched:
    """One pair's klines of one period in the raw schema, where they came from, and why a
    fallback source was used (empty when the first choice delivered)."""

    frame: pd.DataFrame
    source: str
    fallback: str = ""


class FetchedPeriods:
    """The kept pair-periods of one set of sources (REST and archive URLs, archive use), under
    ``<lake>/.fetched/``. Thread-safe: each pair's file is its own."""

    def __init__(self, lake_root: str | Path, *sources: str) -> None:
        digest = hashlib.sha256("\n".join(sources).encode()).hexdigest()[:16]
        self.root = Path(lake_root) / FOLDER / digest
        self.used: set[Path] = set()
        self._sweep()

    def _path(self, pair: str, interval: str, start: datetime, end: datetime, monthly: bool) -> Path:
        period = f"{int(start.timestamp())}-{int(end.timestamp())}{'-monthly' if monthly else ''}"
        return self.root / interval / period / f"{pair}.parquet"

    def get(self, pair: str, interval: str, start: datetime, end: datetime, monthly: bool) -> Fetched | None:
        path = self._path(pair, interval, start, end, monthly)
        try:
            table = pq.read_table(path)
        except (FileNotFoundError, OSError, pa.ArrowInvalid):
            return None  # absent, or unreadable: fetched again
        meta = table.schema.metadata or {}
        self.used.add(path)
        return Fetched(
            table.replace_schema_metadata(None).to_pandas(),
            meta.get(b"source", b"").decode(),
            meta.get(b"fallback", b"").decode(),
        )

    def put(
        self, pair: str, interval: str, start: datetime, end: datetime, monthly: bool, fetched: Fetched
    ) -> None:
        path = self._path(pair, interval, start, end, monthly)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(fetched.frame, preserve_index=False)
        table = table.replace_schema_metadata(
            {b"source": fetched.source.encode(), b"fallback": fetched.fallback.encode()}
        )
        tmp = path.with_name(f"{_TMP}{uuid.uuid4().hex[:12]}-{path.name}")
        pq.write_table(table, tmp)
        os.replace(tmp, path)
        self.used.add(path)

    def discard_used(self) -> None:
        """Forget what this run read or wrote: its partitions hold it now."""
        for path in self.used:
            path.unlink(missing_ok=True)
            for folder in (path.parent, path.parent.parent, self.root):
                try:
                    folder.rmdir()  # only when empty
                except OSError:
                    break
        self.used.clear()

    def _sweep(self) -> None:
        if not self.root.parent.is_dir():
            return
        now = time.time()
        for path in self.root.parent.glob("*/*/*/*.parquet"):
            try:
                age = now - path.stat().st_mtime
            except FileNotFoundError:
                continue
            stale_tmp = path.name.startswith(_TMP) and age > _STALE_TMP_SECONDS
            if stale_tmp or age > MAX_AGE_SECONDS:
                path.unlink(missing_ok=True)
