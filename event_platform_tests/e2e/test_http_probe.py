"""The container health check `python -m event_platform.http_probe URL`, against a real server."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from benchmarks.servers import free_port


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 200 if self.path == "/health" else 503
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "event_platform.http_probe", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_2xx_answer_is_healthy(server: int) -> None:
    completed = probe(f"http://127.0.0.1:{server}/health")
    assert (completed.returncode, completed.stderr) == (0, "")


def test_an_error_status_is_unhealthy_in_one_line(server: int) -> None:
    completed = probe(f"http://127.0.0.1:{server}/ready")
    assert completed.returncode == 1
    assert completed.stderr == f"unhealthy: http://127.0.0.1:{server}/ready answered 503\n"


def test_nothing_listening_is_unhealthy_without_a_traceback() -> None:
    completed = probe(f"http://127.0.0.1:{free_port()}/health")
    assert completed.returncode == 1
    assert completed.stderr.startswith("unhealthy: ") and "is unreachable" in completed.stderr
    assert "Traceback" not in completed.stderr and completed.stderr.count("\n") == 1


def test_bad_usage_is_named() -> None:
    assert probe().returncode == 2
    not_http = probe("file:///etc/passwd")
    assert not_http.returncode == 1
    assert "not an http(s) URL" in not_http.stderr
