"""A small client for the Dagster webserver's GraphQL API: the only way Airflow talks to Dagster.

Pure httpx, no Airflow and nothing of the project: it runs in Airflow's own virtualenv (and in
tests) and knows Dagster only as a URL.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx

TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}

REPOSITORIES = """
query Repositories {
  repositoriesOrError {
    __typename
    ... on RepositoryConnection { nodes { name location { name } jobs { name } } }
    ... on PythonError { message }
  }
}
"""

PARTITION_KEYS = """
query PartitionKeys($selector: PipelineSelector!) {
  pipelineOrError(params: $selector) {
    __typename
    ... on Pipeline { partitionKeysOrError { partitionKeys } }
    ... on Error { message }
  }
}
"""

LAUNCH = """
mutation Launch($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""

STATUS = """
query Status($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status }
    ... on Error { message }
  }
}
"""

FAILURE = """
query Failure($runId: ID!) {
  logsForRun(runId: $runId) {
    __typename
    ... on EventConnection {
      events {
        __typename
        ... on ExecutionStepFailureEvent {
          stepKey error { className message cause { className message cause { className message } } }
        }
        ... on RunFailureEvent { message }
      }
    }
  }
}
"""

TERMINATE = """
mutation Terminate($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunSuccess { run { runId } }
    ... on TerminateRunFailure { message }
    ... on Error { message }
  }
}
"""


class DagsterError(RuntimeError):
    """Dagster refused a request or a run did not succeed; the message is Dagster's own."""


class DagsterUnreachable(DagsterError):
    """The webserver did not answer: transient (it restarts, the network comes back)."""


# A step failure worth another try: its cause is outside the job (an exchange, a service or the
# network that did not answer, a body cut on the way), not its code, config or data.
TRANSIENT_ERRORS = frozenset(
    {
        "Unavailable", "UnreadableBody", "ChecksumMismatch", "ServiceError", "ConnectionError",
        "ConnectError", "ConnectTimeout", "ReadTimeout", "TimeoutError", "OperationalError",
    }
)  # fmt: skip


@dataclass(frozen=True)
class RunFailure:
    """Why a run failed (Dagster's words) and whether trying again may help: yes when no step
    failed (the run itself died: its process, its start) or every failed step's error chain
    names a transient error."""

    message: str
    transient: bool


@dataclass
class DagsterClient:
    url: str
    location: str | None = None  # found from the job name when not given
    repository: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float = 30.0

    def _post(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        try:
            response = httpx.post(
                f"{self.url.rstrip('/')}/graphql",
                json={"query": query, "variables": variables or {}},
                headers=self.headers,
                timeout=self.timeout,
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            raise DagsterUnreachable(f"the Dagster webserver at {self.url} did not answer: {exc}") from exc
        body = response.json()
        if body.get("errors"):
            raise DagsterError(
                "Dagster GraphQL error: " + "; ".join(e.get("message", "") for e in body["errors"])
            )
        return body["data"]

    def selector(self, job: str) -> dict[str, str]:
        """Where ``job`` lives: the configured location and repository, or the only one that has it."""
        if self.location and self.repository:
            return {
                "repositoryLocationName": self.location,
                "repositoryName": self.repository,
                "jobName": job,
            }
        found = self._post(REPOSITORIES)["repositoriesOrError"]
        if found["__typename"] != "RepositoryConnection":
            raise DagsterError(f"cannot list Dagster's code locations: {found.get('message')}")
        matches = [
            (node["location"]["name"], node["name"])
            for node in found["nodes"]
            if any(j["name"] == job for j in node["jobs"])
            and (self.location is None or node["location"]["name"] == self.location)
        ]
        if len(matches) != 1:
            where = f" in location {self.location!r}" if self.location else ""
            raise DagsterError(
                f"job {job!r}{where}: {'not found' if not matches else 'in several locations ' + str(matches)}"
            )
        location, repository = matches[0]
        return {"repositoryLocationName": location, "repositoryName": repository, "jobName": job}

    def partition_keys(self, job: str) -> list[str]:
        selector = self.selector(job)
        pipeline_selector = {
            "repositoryLocationName": selector["repositoryLocationName"],
            "repositoryName": selector["repositoryName"],
            "pipelineName": job,
        }
        found = self._post(PARTITION_KEYS, {"selector": pipeline_selector})["pipelineOrError"]
        if "partitionKeysOrError" not in found:
            raise DagsterError(f"job {job!r}: {found.get('message', found['__typename'])}")
        return list(found["partitionKeysOrError"]["partitionKeys"])

    def validate_partition(self, job: str, key: str) -> None:
        """Dagster accepts an unknown partition key at submit time and fails the run later: check first."""
        keys = self.partition_keys(job)
        if not keys:
            raise DagsterError(f"job {job!r} is not partitioned; no partition key may be given")
        if key not in set(keys):
            raise DagsterError(
                f"job {job!r} has no partition {key!r} (its partitions run from {keys[0]} to {keys[-1]})"
            )

    def launch(self, job: str, partition: str | None, tags: dict[str, str]) -> str:
        all_tags = dict(tags)
        if partition is not None:
            all_tags["dagster/partition"] = partition
        params = {
            "selector": self.selector(job),
            "runConfigData": {},
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in all_tags.items()]},
        }
        result = self._post(LAUNCH, {"executionParams": params})["launchRun"]
        if result["__typename"] == "LaunchRunSuccess":
            return str(result["run"]["runId"])
        message = result.get("message") or "; ".join(e["message"] for e in result.get("errors", []))
        raise DagsterError(f"Dagster refused to launch {job}: {result['__typename']}: {message}")

    def status(self, run_id: str) -> str:
        found = self._post(STATUS, {"runId": run_id})["runOrError"]
        if found["__typename"] != "Run":
            raise DagsterError(f"run {run_id}: {found.get('message', found['__typename'])}")
        return str(found["status"])

    def failure(self, run_id: str) -> RunFailure:
        """Dagster's own account of why a run failed (each failed step's error, then the run's),
        and whether it is transient."""
        found = self._post(FAILURE, {"runId": run_id})["logsForRun"]
        messages = []
        steps_transient: list[bool] = []
        for event in found.get("events", []):
            if event["__typename"] == "ExecutionStepFailureEvent":
                # The step error wraps the user's exception: report the innermost cause.
                error = event["error"] or {}
                classes = {error.get("className")}
                while error.get("cause"):
                    error = error["cause"]
                    classes.add(error.get("className"))
                messages.append(f"step {event['stepKey']}: {str(error.get('message', '')).strip()}")
                steps_transient.append(bool(classes & TRANSIENT_ERRORS))
            elif event["__typename"] == "RunFailureEvent" and event.get("message"):
                messages.append(event["message"].strip())
        return RunFailure(" | ".join(messages) or "no failure event recorded", all(steps_transient))

    def terminate(self, run_id: str, *, settle: float = 30.0) -> str:
        """Ask Dagster to stop the run until it is stopping or over; returns its status then.
        (A run still starting can miss the first request, so it is repeated.)"""
        deadline = time.monotonic() + settle
        while True:
            result = self._post(TERMINATE, {"runId": run_id})["terminateRun"]
            time.sleep(1.0)
            status = self.status(run_id)
            if status in TERMINAL or status == "CANCELING":
                return status
            if time.monotonic() >= deadline:
                raise DagsterError(
                    f"run {run_id} is still {status} after asking Dagster to terminate it: "
                    f"{result.get('message', result['__typename'])}"
                )

    def wait(self, run_id: str, *, timeout: float, poll: float = 2.0) -> str:
        """Poll until the run ends; returns its status. On timeout the run is terminated."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(run_id)
            if status in TERMINAL:
                return status
            if time.monotonic() >= deadline:
                self.terminate(run_id)
                raise DagsterError(f"run {run_id} did not finish within {timeout:.0f} s: terminated it")
            time.sleep(poll)
