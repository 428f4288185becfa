"""Runs inside Airflow's own virtualenv (never imported by pytest): `python airflow_side.py
COMMAND ...`, prints one JSON line. Commands: `dags FOLDER` (import every DAG file, report DAG
ids, timetables, import errors) and `test FILE DAY DAG_ID...` (dag.test() of each for that logical date)."""

import json
import runpy
import sys
import traceback
from datetime import UTC, datetime
from pathlib import Path


def dags(folder: str) -> dict:
    found, errors = {}, {}
    for path in sorted(Path(folder).glob("*.py")):
        try:
            namespace = runpy.run_path(str(path))
        except Exception:
            errors[path.name] = traceback.format_exc(limit=3)
            continue
        from airflow.sdk import DAG

        for value in namespace.values():
            if isinstance(value, DAG):
                task = value.tasks[0]
                found[value.dag_id] = {
                    "timetable": type(value.timetable).__name__,
                    "tasks": [t.task_id for t in value.tasks],
                    "job": getattr(task, "job_name", None),
                    "partitioned": getattr(task, "partitioned", None),
                    "start_date": str(value.start_date),
                    "default_start_date": str((value.default_args or {}).get("start_date")),
                    "doc": bool(value.doc_md and "Which partition a run processes" in value.doc_md),
                }
    return {"dags": found, "errors": errors}


def test(file: str, day: str, *dag_ids: str) -> dict:
    """dag.test() of each DAG in turn (one Airflow start-up for all), with its task logs."""
    import os
    import time

    namespace = runpy.run_path(file)
    results = {}
    for dag_id in dag_ids:
        dag = next(v for v in namespace.values() if getattr(v, "dag_id", None) == dag_id)
        started = time.monotonic()
        run = dag.test(logical_date=datetime.fromisoformat(day).replace(tzinfo=UTC))
        logs = sorted(Path(os.environ["AIRFLOW_HOME"], "logs").glob(f"dag_id={dag_id}/**/*.log"))
        results[dag_id] = {
            "state": str(run.state),
            "data_interval_start": str(run.data_interval_start),
            "seconds": round(time.monotonic() - started, 1),
            "log": "\n".join(p.read_text() for p in logs),
            "tries": max((ti.try_number for ti in run.get_task_instances()), default=0),
        }
    return results


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    result = dags(*args) if command == "dags" else test(*args)
    print("RESULT " + json.dumps(result))
