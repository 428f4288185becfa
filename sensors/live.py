"""``live_slice_sensor``: a run of the live slice (crypto_assets/live) for the hours whose stream
files are newer than its cursor, a few seconds after the stream flushes them."""

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from crypto_assets.jobs import live_job
from crypto_assets.live.assets import HOUR_FORMAT, freshness_sla_seconds, live_partitions
from resources.parquet_io import LakeResource

HOUR_MS = 3_600_000
IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]
# After the stream's last file, the sensor keeps running the current hour (so the freshness check
# names the silent tokens) for this long, then rests until the stream writes again.
QUIET_AFTER_SECONDS = 3600


def sensor_interval() -> int:
    raw = os.environ.get("LIVE_SENSOR_SECONDS", "").strip() or "10"
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"LIVE_SENSOR_SECONDS={raw!r}: expected whole seconds >= 1")
    return int(raw)


@dataclass(frozen=True)
class NewFiles:
    newest_ns: int  # the newest file's modification time (ns): the next cursor
    hours: set[str]  # the hour partitions their rows fall in
    latest_ns: int  # the newest stream file at all, new or not


def scan(lake_root: Path, seen_ns: int) -> NewFiles:
    """The klines and gaps files newer than ``seen_ns`` in the stream's two newest day folders
    (a kline repaired from REST lands in its own day's folder, also an old one: those come
    with the hours their names cover; a new gaps file re-runs the hour its repair landed in)."""
    newest, latest, hours = seen_ns, 0, set()
    for table in ("klines", "gaps"):
        folder = lake_root / "stream" / table
        days = sorted((d for d in folder.glob("dt=*") if d.is_dir()), reverse=True) if folder.exists() else []
        for day in days[:2]:
            with os.scandir(day) as entries:
                for entry in entries:
                    if not (entry.name.startswith("part-") and entry.name.endswith(".parquet")):
                        continue
                    modified = entry.stat().st_mtime_ns
                    latest = max(latest, modified)
                    if modified <= seen_ns:
                        continue
                    newest = max(newest, modified)
                    try:
                        low, high = (int(x) for x in entry.name.split("-")[1:3])
                    except ValueError:  # not the stream's naming: not a file of it
                        continue
                    if table == "gaps":
                        low = high = int(time.time() * 1000)
                        low -= HOUR_MS  # the repair may have filled the hour before
                    hours.update(
                        datetime.fromtimestamp(h * HOUR_MS / 1000, UTC).strftime(HOUR_FORMAT)
                        for h in range(low // HOUR_MS, high // HOUR_MS + 1)
                    )
    return NewFiles(newest, hours, latest)


@sensor(
    name="live_slice_sensor",
    job=live_job,
    minimum_interval_seconds=sensor_interval(),
    default_status=DefaultSensorStatus.RUNNING,
    description=(
        "Runs live_job for the hours the stream (`crypto-analytics stream`) wrote new closed minutes"
        " or repairs into, one run at a time: a run in flight makes the next tick wait, and the run"
        " after it takes everything that arrived meanwhile. While the stream is quiet it re-runs the"
        " current hour every LIVE_FRESHNESS_SLA seconds for an hour, so stream_fresh names the"
        " silent tokens."
    ),
)
def live_slice_sensor(context: SensorEvaluationContext, lake: LakeResource) -> SensorResult | SkipReason:
    cursor = json.loads(context.cursor) if context.cursor else {}
    seen_ns, launched = int(cursor.get("seen_ns", 0)), float(cursor.get("launched", 0.0))
    if context.instance.get_run_records(RunsFilter(job_name=live_job.name, statuses=IN_FLIGHT), limit=1):
        return SkipReason("a live_job run is in flight; the next one takes what arrives meanwhile")
    found = scan(Path(lake.root), seen_ns)
    if not found.latest_ns:
        return SkipReason(f"no stream files under {lake.root}/stream: start `crypto-analytics stream`")
    now = time.time()
    hours = sorted(h for h in found.hours if live_partitions.has_partition_key(h))
    if not hours:
        quiet = now - found.latest_ns / 1e9
        if quiet < freshness_sla_seconds() or now - launched < freshness_sla_seconds():
            return SkipReason("no new stream files")
        if quiet > QUIET_AFTER_SECONDS:
            return SkipReason(f"the stream has written nothing for {quiet / 60:.0f} min: resting")
        # Quiet beyond the SLA: run the current hour so stream_fresh says which tokens are silent.
        hours = [datetime.fromtimestamp(now, UTC).strftime(HOUR_FORMAT)]
    requests = [
        RunRequest(run_key=f"{hour}@{found.newest_ns}", partition_key=hour, tags={"live": "true"})
        for hour in hours
    ]
    return SensorResult(
        run_requests=requests,
        cursor=json.dumps({"seen_ns": found.newest_ns, "launched": now}),
    )
