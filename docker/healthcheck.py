"""A container's health check, in the standard library only (the images have no curl).

    healthcheck.py http://127.0.0.1:8765/api/v3/ping [--status 200,404]
    healthcheck.py tcp://127.0.0.1:5432
    healthcheck.py file:///data/lake/stream/.heartbeat.json --max-age 60

Exits 0 when healthy, 1 with one line saying why otherwise. An HTTP check passes on the given
statuses (default 200); a TCP check when the port accepts a connection; a file check when the
file was written less than ``--max-age`` seconds ago (a service without a port that keeps
writing a heartbeat).
"""

import argparse
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlparse


def check(target: str, statuses: set[int], max_age: float, timeout: float) -> str | None:
    """None when healthy, else why not."""
    url = urlparse(target)
    if url.scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(target, timeout=timeout) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError) as exc:
            return f"{target}: {exc}"
        return None if status in statuses else f"{target}: HTTP {status}"
    if url.scheme == "tcp":
        try:
            with socket.create_connection((url.hostname or "127.0.0.1", url.port or 0), timeout=timeout):
                return None
        except OSError as exc:
            return f"{target}: {exc}"
    if url.scheme == "file":
        try:
            age = time.time() - os.stat(url.path).st_mtime
        except OSError as exc:
            return f"{url.path}: {exc}"
        return None if age <= max_age else f"{url.path}: last written {age:.0f} s ago"
    return f"{target}: unknown scheme (http, https, tcp or file)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target")
    parser.add_argument("--status", default="200", help="HTTP statuses that mean healthy (comma-separated)")
    parser.add_argument("--max-age", type=float, default=60.0, help="file checks: seconds")
    parser.add_argument("--timeout", type=float, default=4.0)
    args = parser.parse_args(argv)
    why = check(args.target, {int(s) for s in args.status.split(",")}, args.max_age, args.timeout)
    if why:
        print(f"unhealthy: {why}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
