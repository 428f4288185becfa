"""Every failed run, recorded where people look: one JSON line per run in the lake
(``<LAKE_ROOT>/ops/run_failures.jsonl``), with its job, partition, failed steps and errors. The
dashboard's data-health page reads it; it needs neither the Dagster UI nor the warehouse (which may
well be what failed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dagster import (
    DagsterEventType,
    DefaultSensorStatus,
    RunFailureSensorContext,
    run_failure_sensor,
)

from resources.settings import Settings


def _innermost(error: Any) -> str:
    while error is not None and getattr(error, "cause", None) is not None:
        error = error.cause
    return str(getattr(error, "message", "") or "").strip()


def failure_record(context: RunFailureSensorContext) -> dict[str, Any]:
    """The run, its partition, and each failed step with its innermost error."""
    run = context.dagster_run
    steps = []
    for entry in context.instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE):
        event = entry.dagster_event
        error = getattr(event.event_specific_data, "error", None) if event else None
        steps.append({"step": event.step_key if event else None, "error": _innermost(error)})
    tags = run.tags
    partition = tags.get("dagster/partition") or (
        f"{tags['dagster/asset_partition_range_start']}..{tags['dagster/asset_partition_range_end']}"
        if "dagster/asset_partition_range_start" in tags
        else None
    )
    return {
        "run_id": run.run_id,
        "job": run.job_name,
        "partition": partition,
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "message": (context.failure_event.message or "").strip(),
        "steps": steps,
        "triggered_by": {
            k: v for k, v in tags.items() if k.startswith("airflow/") or k == "dagster/schedule_name"
        },
    }


def record_failure(path: Path, record: dict[str, Any]) -> None:
    """Append one line (a single write: a reader never sees half a record)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, default=str) + "\n")


@run_failure_sensor(
    name="run_failure_recorder",
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
)
def run_failure_recorder(context: RunFailureSensorContext) -> None:
    """Records every failed run of this code location (job, partition, failed steps, errors) in
    the lake's ops/run_failures.jsonl, where the dashboard's data-health page lists them."""
    record = failure_record(context)
    record_failure(Settings.from_env().run_failures_path, record)
    context.log.info(f"recorded failed run {record['run_id']} of {record['job']}")
