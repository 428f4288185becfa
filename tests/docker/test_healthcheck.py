"""The containers' health check (docker/healthcheck.py) on each kind of target, for real."""

import http.server
import importlib.util
import os
import socket
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("healthcheck", REPO / "docker" / "healthcheck.py")
assert spec is not None and spec.loader is not None
healthcheck = importlib.util.module_from_spec(spec)
spec.loader.exec_module(healthcheck)


@pytest.fixture
def server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/ok" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_http_passes_only_on_the_accepted_statuses(server):
    assert healthcheck.main([f"http://{server}/ok"]) == 0
    assert healthcheck.main([f"http://{server}/missing"]) == 1
    assert healthcheck.main([f"http://{server}/missing", "--status", "200,404"]) == 0


def test_tcp_passes_when_the_port_accepts_and_fails_when_closed(server):
    assert healthcheck.main([f"tcp://{server}"]) == 0
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert healthcheck.main([f"tcp://127.0.0.1:{closed}", "--timeout", "1"]) == 1


def test_a_file_must_be_fresh(tmp_path: Path):
    beat = tmp_path / "beat.json"
    assert healthcheck.main([f"file://{beat}"]) == 1  # never written
    beat.write_text("{}")
    assert healthcheck.main([f"file://{beat}", "--max-age", "30"]) == 0
    old = time.time() - 120
    os.utime(beat, (old, old))
    assert healthcheck.main([f"file://{beat}", "--max-age", "30"]) == 1
    assert healthcheck.main(["ftp://x"]) == 1
