"""DagsterJobOperator: launch one Dagster job (for the partition of the Airflow data interval),
wait for it, and fail with Dagster's own message. Nothing else happens in Airflow.

Only what may succeed on another try is left to Airflow's retries: Dagster unreachable, or a run
that failed for a transient reason (its process died; a source or service did not answer).
Everything else fails at once, without a retry: an unknown partition or job, a launch Dagster
refused, a run canceled on purpose in Dagster, a run that timed out, and a step that failed on
its code, config or data."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseHook, BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airflow_bridge.dagster_client import DagsterClient, DagsterError, DagsterUnreachable

DEFAULT_CONN_ID = "dagster_default"
DEFAULT_URL = "http://127.0.0.1:3000"


class DagsterJobFailed(RuntimeError):
    """The Dagster run failed for a transient reason, or Dagster did not answer: retried."""


class DagsterJobRefused(AirflowFailException):
    """The run cannot succeed by trying again (Dagster's reason inside): failed without a retry."""


def _fail(exc: DagsterError) -> Exception:
    return DagsterJobFailed(str(exc)) if isinstance(exc, DagsterUnreachable) else DagsterJobRefused(str(exc))


def client_from(conn_id: str) -> DagsterClient:
    """Dagster's URL, code location and an optional auth header: from the Airflow connection
    ``conn_id`` when it exists (host = URL; extra: location, repository, auth_header), else from
    the environment (DAGSTER_URL, DAGSTER_LOCATION, DAGSTER_REPOSITORY, DAGSTER_AUTH_HEADER)."""
    url = os.getenv("DAGSTER_URL", DEFAULT_URL)
    location = os.getenv("DAGSTER_LOCATION") or None
    repository = os.getenv("DAGSTER_REPOSITORY") or None
    auth = os.getenv("DAGSTER_AUTH_HEADER") or None
    try:
        connection = BaseHook.get_connection(conn_id)
    except Exception:  # no such connection: the environment decides (Airflow raises its own type)
        connection = None
    if connection is not None and connection.host:
        host = connection.host
        url = host if "://" in host else f"{connection.schema or 'http'}://{host}:{connection.port or 3000}"
        extra = json.loads(connection.extra or "{}")
        location = extra.get("location", location)
        repository = extra.get("repository", repository)
        auth = extra.get("auth_header", auth)
    headers = {}
    if auth:
        name, _, value = auth.partition(":")
        headers[name.strip()] = value.strip()
    return DagsterClient(url=url, location=location, repository=repository, headers=headers)


class DagsterJobOperator(BaseOperator):
    """Launch ``job_name`` in Dagster and wait for it.

    - partitioned jobs run the partition of the data interval (``partition_format`` of its start);
      the key is checked against the job's partitions before anything is launched;
    - the run is tagged with the Airflow DAG, run, task and try, so the Dagster UI shows who
      triggered it; a retry launches a new run of the same partition (partitions are idempotent);
    - ``dagster_timeout`` (seconds) bounds the wait; on timeout, and when Airflow kills the task
      or its ``execution_timeout`` fires, the Dagster run is terminated.
    """

    template_fields: Sequence[str] = ("job_name", "partition_key")
    ui_color = "#4f43dd"

    def __init__(
        self,
        *,
        job_name: str,
        partitioned: bool = True,
        partition_key: str | None = None,
        partition_format: str = "%Y-%m-%d",
        dagster_conn_id: str = DEFAULT_CONN_ID,
        dagster_timeout: float = 6 * 3600,
        poll_interval: float = 5.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name
        self.partitioned = partitioned
        self.partition_key = partition_key
        self.partition_format = partition_format
        self.dagster_conn_id = dagster_conn_id
        self.dagster_timeout = dagster_timeout
        self.poll_interval = poll_interval
        self.run_id: str | None = None
        self._client: DagsterClient | None = None

    def _partition(self, context: Any) -> str | None:
        if not self.partitioned:
            return None
        if self.partition_key:
            return self.partition_key
        start = context["data_interval_start"]
        return start.strftime(self.partition_format)

    def execute(self, context: Any) -> str:
        client = self._client = client_from(self.dagster_conn_id)
        partition = self._partition(context)
        try:
            if partition is not None:
                client.validate_partition(self.job_name, partition)
            ti = context["ti"]
            tags = {
                "airflow/dag_id": str(ti.dag_id),
                "airflow/run_id": str(context["run_id"]),
                "airflow/task_id": str(ti.task_id),
                "airflow/try_number": str(ti.try_number),
            }
            self.run_id = client.launch(self.job_name, partition, tags)
        except DagsterError as exc:
            raise _fail(exc) from None
        self.log.info(
            "Dagster run %s of %s (partition %s): %s/runs/%s",
            self.run_id,
            self.job_name,
            partition,
            client.url,
            self.run_id,
        )
        try:
            status = client.wait(self.run_id, timeout=self.dagster_timeout, poll=self.poll_interval)
        except DagsterError as exc:
            raise _fail(exc) from None
        except BaseException:
            # Airflow's execution_timeout or a kill arrives here as an exception: stop the run too.
            self._terminate()
            raise
        if status == "CANCELED":
            raise DagsterJobRefused(
                f"Dagster run {self.run_id} of {self.job_name} was canceled in Dagster: not retried"
            )
        if status != "SUCCESS":
            failure = client.failure(self.run_id)
            message = f"Dagster run {self.run_id} of {self.job_name} {status}: {failure.message}"
            if failure.transient:
                raise DagsterJobFailed(f"{message} (transient: Airflow retries it)")
            raise DagsterJobRefused(f"{message} (not transient: not retried)")
        return self.run_id

    def _terminate(self) -> None:
        if self._client is not None and self.run_id is not None:
            try:
                outcome = self._client.terminate(self.run_id)
                self.log.warning("terminated Dagster run %s: %s", self.run_id, outcome)
            except DagsterError as exc:
                self.log.error("could not terminate Dagster run %s: %s", self.run_id, exc)

    def on_kill(self) -> None:
        self._terminate()
