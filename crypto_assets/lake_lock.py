"""One writer per lake: `crypto-analytics run`, `import` and `lake remove` hold an exclusive lock
on ``<LAKE_ROOT>/.writer.lock`` while they write.

Two runs over the same days would interleave their writes to the same partitions, and two Spark
sessions on local[*] only fight over the cores; a second writer therefore waits (``--wait``) or is
refused with who holds the lake. The lock is an OS file lock (flock): it is released when its
process ends, however it ends, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

LOCK_FILE = ".writer.lock"
# Set by a writer for the child processes it starts as part of its own work (e.g. the CLI's
# background CoinGecko run): a child whose parent holds the lock writes under it.
PARENT_ENV = "CRYPTO_ANALYTICS_LAKE_WRITER"


def child_env(lake_root: Path) -> dict[str, str]:
    """The environment for a child process that writes as part of this process's locked work."""
    return {**os.environ, PARENT_ENV: f"{os.getpid()}:{lake_root.resolve()}"}


class LakeBusy(RuntimeError):
    """Another process is writing this lake."""


def _holder(handle: TextIO) -> dict[str, Any]:
    handle.seek(0)
    try:
        return json.loads(handle.read() or "{}")
    except ValueError:
        return {}


def _overlap(holder: dict[str, Any], days: tuple[str, str] | None) -> bool | None:
    """Whether the holder's days overlap ``days``; None when either side names no days."""
    if not days or not holder.get("first_day"):
        return None
    return not (days[1] < holder["first_day"] or days[0] > holder["last_day"])


def _describe(holder: dict[str, Any], days: tuple[str, str] | None) -> str:
    if not holder:
        return "another process"
    span = (
        f"{holder.get('first_day')}..{holder.get('last_day')}" if holder.get("first_day") else "no day range"
    )
    text = f"`{holder.get('command', '?')}` (pid {holder.get('pid')}, {span}, since {holder.get('since')})"
    if _overlap(holder, days):
        text += ", whose days overlap these"
    return text


def _why_one_writer(holder: dict[str, Any], days: tuple[str, str] | None) -> str:
    if _overlap(holder, days):
        return "Running both would interleave writes to the same partitions"
    # Other days: the partitions differ, but the look-back reads, staging sweeps, Spark's cores and
    # the Dagster instance do not.
    return "One writer at a time keeps every partition whole, whatever its days"


@contextmanager
def lake_writer(
    lake_root: Path,
    command: str,
    days: tuple[str, str] | None = None,
    *,
    wait: bool = False,
    timeout: float = 6 * 3600,
    say: Callable[[str], None] = print,
    poll: float = 2.0,
) -> Iterator[None]:
    """Hold the lake's writer lock for the block; wait for it or raise LakeBusy."""
    if os.environ.get(PARENT_ENV) == f"{os.getppid()}:{lake_root.resolve()}":
        yield  # our parent holds this lake's lock for the work we are part of
        return
    lake_root.mkdir(parents=True, exist_ok=True)
    path = lake_root / LOCK_FILE
    handle = path.open("a+", encoding="utf-8")
    try:
        deadline = time.monotonic() + timeout
        announced = False
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                found = _holder(handle)
                holder = _describe(found, days)
                if not wait:
                    raise LakeBusy(
                        f"the lake {lake_root} is being written by {holder}. {_why_one_writer(found, days)}:"
                        " wait for it to finish, or pass --wait to queue behind it."
                    ) from None
                if time.monotonic() >= deadline:
                    raise LakeBusy(f"gave up after {timeout:.0f} s waiting for {holder}") from None
                if not announced:
                    say(f"waiting for {holder} to finish writing {lake_root}")
                    announced = True
                time.sleep(poll)
        handle.seek(0)
        handle.truncate()
        record = {
            "pid": os.getpid(),
            "command": command,
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if days:
            record.update(first_day=days[0], last_day=days[1])
        handle.write(json.dumps(record))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    finally:
        handle.close()
