"""Shared helpers for the benchmarks: an emulator on a free port, timing, the token universe."""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crypto_assets.services import _emulator_ready, free_port, start_service
from crypto_assets.universe import load_universe


@contextlib.contextmanager
def emulator(*args: str) -> Iterator[str]:
    port = free_port()
    with tempfile.TemporaryDirectory() as logs:
        service = start_service(
            "emulator",
            ["emulator", "--port", str(port), *args],
            lambda: _emulator_ready("127.0.0.1", port),
            Path(logs),
        )
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            service.stop()


def pairs_for(start: datetime, end: datetime) -> list[str]:
    return sorted(load_universe().active_pairs(start, end))


def days(first: str, count: int) -> list[tuple[datetime, datetime]]:
    start = datetime.fromisoformat(first).replace(tzinfo=UTC)
    return [(start + timedelta(days=i), start + timedelta(days=i + 1)) for i in range(count)]


class Timer:
    def __enter__(self) -> Timer:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self.started
