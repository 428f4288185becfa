"""The run-failure sensor, evaluated on a real failed run of an ephemeral instance."""

import json

from dagster import DagsterEventType, DagsterInstance, build_run_status_sensor_context, job, op

from sensors import sensors
from sensors.run_failures import run_failure_recorder


@op
def explode() -> None:
    raise ValueError("the exchange sent a malformed page (sensor test)")


@job
def exploding_job() -> None:
    explode()


def test_a_failed_run_is_recorded_with_its_partition_step_and_error(tmp_path, monkeypatch):
    monkeypatch.setenv("LAKE_ROOT", str(tmp_path / "lake"))
    instance = DagsterInstance.ephemeral()
    result = exploding_job.execute_in_process(
        instance=instance,
        raise_on_error=False,
        tags={"dagster/partition": "2024-03-01", "airflow/dag_id": "d"},
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.RUN_FAILURE)
    context = build_run_status_sensor_context(
        sensor_name="run_failure_recorder",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=failure,
    ).for_run_failure()
    run_failure_recorder(context)
    lines = (tmp_path / "lake" / "ops" / "run_failures.jsonl").read_text().splitlines()
    record = json.loads(lines[-1])
    assert record["run_id"] == result.run_id and record["job"] == "exploding_job"
    assert record["partition"] == "2024-03-01" and record["triggered_by"] == {"airflow/dag_id": "d"}
    assert record["steps"] == [
        {"step": "explode", "error": "ValueError: the exchange sent a malformed page (sensor test)"}
    ]
    assert "explode" in record["message"]


def test_the_recorder_is_on_by_default_in_the_code_location():
    from dagster import DefaultSensorStatus

    assert run_failure_recorder in sensors
    assert run_failure_recorder.default_status == DefaultSensorStatus.RUNNING
