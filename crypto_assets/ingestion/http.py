"""The HTTP policy every exchange client shares: bounded retries, explicit failures, budgets.

- 429: wait ``Retry-After`` (the server's own instruction) and pause *every* caller sharing the
  budget, so concurrent workers slow down together instead of each earning its own 429;
- 418: the IP is banned; :class:`Banned` at once, never a retry;
- 5xx, timeouts, dropped connections: exponential backoff with full jitter, ``max_retries`` times;
- a 200 whose body cannot be read (cut JSON, a zip that is not a zip, a checksum that does not
  match): :class:`UnreadableBody`, retried like a 5xx (a cut connection or a corrupted download is
  transient on a real network), then raised;
- any other 4xx: :class:`RequestRejected` with the server's message;
- a body that reads but does not have the documented shape (a field of the wrong type, pages out
  of order): :class:`MalformedPayload` at once, since asking again returns the same thing.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

log = logging.getLogger(__name__)
T = TypeVar("T")


class SourceError(RuntimeError):
    """Base class: every failure of an ingestion client is one of these, never a bare httpx error."""


class Banned(SourceError):
    """HTTP 418: the IP is banned for ignoring 429s. Retrying would extend the ban."""


class RequestRejected(SourceError):
    """A 4xx that retrying cannot fix (bad symbol, bad interval, bad parameter)."""

    def __init__(self, status: int, code: int | None, msg: str, url: str) -> None:
        super().__init__(f"{url} was rejected with HTTP {status} (code {code}): {msg}")
        self.status, self.code, self.msg = status, code, msg


class Unavailable(SourceError):
    """Retries exhausted on 5xx / 429 / timeouts."""


class MalformedPayload(SourceError):
    """The response body is not what the endpoint documents."""


class UnreadableBody(MalformedPayload):
    """A body that could not be read at all (cut short, corrupted): transient, so retried."""


class NotFound(SourceError):
    """HTTP 404: the resource does not exist (yet), e.g. an archive file not published."""


class RequestBudget:
    """Requests (or request weight) allowed per window, shared by every thread of a client.

    ``acquire`` blocks until the cost fits in the current window. The server's own count
    (``observe``) wins over ours, since other clients on the same IP spend the same budget.
    ``pause`` stops everyone until a moment the server named (``Retry-After``).
    """

    def __init__(
        self,
        limit: int,
        window_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit <= 0:
            raise ValueError("a request budget needs a positive limit")
        self.limit = limit
        self.window_seconds = window_seconds
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._window = -1
        self._used = 0
        self._paused_until = 0.0
        self.waited_seconds = 0.0

    def _roll(self, now: float) -> None:
        window = int(now // self.window_seconds)
        if window != self._window:
            self._window, self._used = window, 0

    def acquire(self, cost: int) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._roll(now)
                if now >= self._paused_until and self._used + cost <= self.limit:
                    self._used += cost
                    return
                if now < self._paused_until:
                    wake = self._paused_until
                else:
                    wake = (self._window + 1) * self.window_seconds
            wait = max(0.01, wake - now)
            self.waited_seconds += wait
            self._sleep(wait)

    def observe(self, used_by_server: int) -> None:
        with self._lock:
            self._roll(self._clock())
            self._used = max(self._used, used_by_server)

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)


class RetryingHttp:
    """GET with the shared policy above, over one pooled ``httpx.Client``."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 10.0,
        max_retries: int = 5,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        budget: RequestBudget | None = None,
        headers: dict[str, str] | None = None,
        max_connections: int = 16,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.budget = budget
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": "crypto-analytics/0.1", **(headers or {})},
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )
        self.responses = 0
        self.rate_limited = 0
        self.unreadable = 0  # bodies retried because they could not be read

    def close(self) -> None:
        self._http.close()

    def get(
        self,
        path: str,
        params: dict[str, Any] | None = None,
        *,
        cost: int = 1,
        on_response: Callable[[httpx.Response], None] | None = None,
    ) -> httpx.Response:
        """The 200 response for ``path``; raises a :class:`SourceError` otherwise."""
        url = f"{self.base_url}{path}"
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            if self.budget is not None:
                self.budget.acquire(cost)
            try:
                response = self._http.get(path, params=params)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                if last:
                    raise Unavailable(
                        f"{url}: {type(exc).__name__} after {attempt + 1} attempts: {exc}"
                    ) from exc
                self._backoff(attempt, f"{type(exc).__name__} on {path}")
                continue
            self.responses += 1
            if on_response is not None:
                on_response(response)
            status = response.status_code
            if status == 200:
                return response
            if status == 418:
                raise Banned(
                    f"{url}: HTTP 418, this IP is banned by the server"
                    f" (Retry-After {response.headers.get('Retry-After', '?')} s). Stopping instead of retrying."
                )
            if status == 404:
                raise NotFound(f"{url}: HTTP 404")
            if status == 429 or status >= 500:
                if last:
                    raise Unavailable(f"{url}: HTTP {status} after {attempt + 1} attempts")
                if status == 429:
                    self.rate_limited += 1
                    wait = _retry_after(response, default=self.backoff_seconds * 2**attempt)
                    log.warning("HTTP 429 on %s: every worker waits %.1f s as Retry-After asks", path, wait)
                    if self.budget is not None:
                        self.budget.pause(wait)
                    else:
                        self._sleep(wait)
                else:
                    self._backoff(attempt, f"HTTP {status} on {path}")
                continue
            code, msg = _error_body(response)
            raise RequestRejected(status, code, msg, url)
        raise AssertionError("unreachable")  # pragma: no cover

    def get_json(self, path: str, params: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        """The decoded JSON body; a body that does not decode is fetched again (``read``)."""

        def decoded() -> Any:
            response = self.get(path, params, **kwargs)
            try:
                return response.json()
            except ValueError as exc:
                raise UnreadableBody(
                    f"{self.base_url}{path} returned HTTP 200 with a body that is not JSON:"
                    f" {response.text[:120]!r}"
                ) from exc

        return self.read(decoded)

    def read(self, fetch: Callable[[], T]) -> T:
        """``fetch()`` (which makes its own requests and reads their bodies), called again while
        it raises :class:`UnreadableBody`: ``max_retries`` times with the 5xx backoff, then the
        last error is raised, saying how many attempts were made. A body that reads but has the
        wrong shape (:class:`MalformedPayload`) is not retried: the server would send it again."""
        for attempt in range(self.max_retries + 1):
            try:
                return fetch()
            except UnreadableBody as exc:
                if attempt == self.max_retries:
                    raise type(exc)(f"{exc} (after {attempt + 1} attempts)") from exc
                self.unreadable += 1
                self._backoff(attempt, str(exc)[:200])
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int, why: str) -> None:
        # Full jitter: spreads retries of concurrent callers instead of synchronising them.
        wait = random.uniform(0, min(self.max_backoff_seconds, self.backoff_seconds * 2**attempt))
        log.warning("%s: retry %d/%d in %.2f s", why, attempt + 1, self.max_retries, wait)
        self._sleep(wait)


def _retry_after(response: httpx.Response, default: float) -> float:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


def _error_body(response: httpx.Response) -> tuple[int | None, str]:
    try:
        body = response.json()
        return body.get("code"), str(body.get("msg", body.get("error", "")))
    except (ValueError, AttributeError):
        return None, response.text[:200]
