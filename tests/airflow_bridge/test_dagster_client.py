"""The bridge's client decides what Airflow may retry: Dagster unreachable, or a run whose failure
is transient; never an unknown partition or a step that failed on its code or data."""

import httpx
import pytest

from airflow_bridge.dagster_client import DagsterClient, DagsterError, DagsterUnreachable


def _step(step: str, *chain: tuple[str, str]) -> dict:
    error: dict | None = None
    for class_name, message in reversed(chain):
        error = {"className": class_name, "message": message, "cause": error}
    return {"__typename": "ExecutionStepFailureEvent", "stepKey": step, "error": error}


def _client(monkeypatch: pytest.MonkeyPatch, events: list[dict]) -> DagsterClient:
    def post(url: str, **_: object) -> httpx.Response:
        body = {"data": {"logsForRun": {"__typename": "EventConnection", "events": events}}}
        return httpx.Response(200, json=body, request=httpx.Request("POST", url))

    monkeypatch.setattr(httpx, "post", post)
    return DagsterClient(url="http://dagster.test")


WRAPPER = ("DagsterExecutionStepExecutionError", 'Error occurred while executing op "raw_klines"')


@pytest.mark.parametrize(
    ("events", "transient"),
    [
        ([_step("raw_klines", WRAPPER, ("Unavailable", "…/api/v3/klines: HTTP 503 after 6 attempts"))], True),
        (
            [
                _step(
                    "raw_klines",
                    WRAPPER,
                    ("ChecksumMismatch", "x.zip (after 6 attempts)"),
                    ("ChecksumMismatch", "x.zip"),
                )
            ],
            True,
        ),
        ([_step("load", WRAPPER, ("ConnectionError", "the warehouse did not answer"))], True),
        ([{"__typename": "RunFailureEvent", "message": "the run worker exited unexpectedly"}], True),
        ([_step("refuse", WRAPPER, ("RuntimeError", "quota exceeded"))], False),
        ([_step("bronze", WRAPPER, ("ValueError", "bad row"))], False),
        ([_step("a", WRAPPER, ("Unavailable", "x")), _step("b", WRAPPER, ("KeyError", "y"))], False),
    ],
)
def test_a_run_failure_is_transient_only_when_its_cause_is_outside_the_job(monkeypatch, events, transient):
    failure = _client(monkeypatch, events).failure("run-1")
    assert failure.transient is transient


def test_the_innermost_message_is_reported(monkeypatch):
    events = [_step("raw_klines", WRAPPER, ("Unavailable", "…/api/v3/klines: HTTP 503 after 6 attempts"))]
    assert (
        _client(monkeypatch, events).failure("r").message
        == "step raw_klines: …/api/v3/klines: HTTP 503 after 6 attempts"
    )


def test_an_unreachable_webserver_is_its_own_error():
    client = DagsterClient(url="http://127.0.0.1:9", timeout=2)
    with pytest.raises(DagsterUnreachable, match="did not answer"):
        client.status("run-1")
    assert issubclass(DagsterUnreachable, DagsterError)
