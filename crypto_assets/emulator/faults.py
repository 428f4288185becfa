"""Faults on demand, so every failure path of the ingestion is tested for real over HTTP.

Armed through the admin route ``POST /_emulator/faults``, each fault hits the next ``count``
requests whose path starts with ``route``, after letting the first ``after`` of them through (a
source that fails half-way through a run).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

KINDS = ("429", "418", "500", "502", "503", "504", "slow", "truncated", "bad_checksum")


@dataclass
class Fault:
    route: str
    kind: str
    count: int = 1
    retry_after: int = 1
    delay: float = 2.0
    after: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {KINDS}")
        if self.count < 1:
            raise ValueError("count must be >= 1")
        if self.after < 0:
            raise ValueError("after must be >= 0")


class FaultBook:
    """Armed faults, consumed in order by matching requests (thread-safe)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.fired: dict[str, int] = {}

    def arm(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if path.startswith(fault.route):
                    if fault.after > 0:
                        fault.after -= 1
                        return None
                    fault.count -= 1
                    if fault.count == 0:
                        self._faults.remove(fault)
                    self.fired[fault.kind] = self.fired.get(fault.kind, 0) + 1
                    return fault
        return None

    def armed(self) -> list[dict]:
        with self._lock:
            return [f.__dict__.copy() for f in self._faults]


async def before(fault: Fault | None) -> Response | None:
    """A response that replaces the real one, or None to go on (after any delay)."""
    if fault is None:
        return None
    if fault.kind == "slow":
        await asyncio.sleep(fault.delay)
        return None
    if fault.kind == "429":
        return JSONResponse(
            {"code": -1003, "msg": "Too many requests; please use WebSocket streams for live updates."},
            status_code=429,
            headers={"Retry-After": str(fault.retry_after)},
        )
    if fault.kind == "418":
        return JSONResponse(
            {"code": -1003, "msg": "Way too much request weight used; IP banned until later."},
            status_code=418,
            headers={"Retry-After": str(fault.retry_after)},
        )
    if fault.kind in ("500", "502", "503", "504"):
        return Response("<html><body>Service unavailable</body></html>", status_code=int(fault.kind))
    return None


def after(fault: Fault | None, response: Response) -> Response:
    """Damage a real response: cut its body in half, or change one digit of a checksum."""
    if fault is None or fault.kind not in ("truncated", "bad_checksum"):
        return response
    body = bytes(response.body)
    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    if fault.kind == "truncated":
        damaged = body[: len(body) // 2]
    else:  # a published checksum that does not match the file
        damaged = (b"f" if body[:1] != b"f" else b"0") + body[1:]
    return Response(damaged, status_code=response.status_code, headers=headers)


async def admin(request: Request, book: FaultBook) -> JSONResponse:
    if request.method == "DELETE":
        book.clear()
        return JSONResponse({"armed": []})
    if request.method == "POST":
        try:
            payload = await request.json()
            book.arm(Fault(**payload))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse({"armed": book.armed(), "fired": book.fired})
