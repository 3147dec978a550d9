"""The reporting client against a real local HTTP server: batched, authenticated, buffered while the
controller is away, never in training's way, a no-op without an API URL."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dljobs.workloads.reporting import Reporter
from tests.support.ports import restartable_port

# --- a tiny real HTTP server that records requests (the controller's API stands in) ------------------


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class RecordingServer:
    port: int = field(default_factory=restartable_port)  # bound later, in start()
    requests: list[Recorded] = field(default_factory=list)
    fail_next: int = 0  # answer this many requests with 503
    status: int = 200
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> RecordingServer:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"null")
                with recorder._lock:
                    if recorder.fail_next > 0:
                        recorder.fail_next -= 1
                        status = 503
                    else:
                        status = recorder.status
                        recorder.requests.append(Recorded(self.path, dict(self.headers), body))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def points(self) -> list[dict[str, Any]]:
        with self._lock:
            return [p for r in self.requests if r.path.endswith("/metrics") for p in r.body["points"]]

    def artifacts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [a for r in self.requests if r.path.endswith("/artifacts") for a in r.body["artifacts"]]


@contextmanager
def recording_server() -> Iterator[RecordingServer]:
    server = RecordingServer().start()
    try:
        yield server
    finally:
        server.stop()


HANG_GUARD_S = 600.0  # only so that a broken run ends: not a performance limit


def wait_for(condition, timeout: float = HANG_GUARD_S) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_points_are_sent_in_batches_with_the_job_token() -> None:
    with recording_server() as server:
        reporter = Reporter(server.url, "42", "secret-token")
        for step in range(5):
            reporter.metrics(
                {"epoch": step + 1, "train_loss": 1.0 / (step + 1), "val_accuracy": 0.1 * step, "note": "x"},
                step=step,
                epoch=step + 1,
            )
        reporter.metric("test_accuracy", 0.9, step=5)
        assert wait_for(lambda: len(server.points()) == 11)
        reporter.close()
        request = server.requests[0]
        assert request.path == "/api/v1/jobs/42/metrics"
        assert request.headers["Authorization"] == "Bearer secret-token"
        assert len(server.requests) < 11  # batched, not one request per point
        points = server.points()
        assert points[0].keys() == {"step", "epoch", "name", "value", "ts"}
        assert [p["value"] for p in points if p["name"] == "train_loss"] == [1.0, 0.5, 1 / 3, 0.25, 0.2]
        assert points[-1]["name"] == "test_accuracy" and points[-1]["epoch"] is None
        assert all(isinstance(p["ts"], float) and p["ts"] > 1e9 for p in points)


def test_a_trial_sends_its_points_before_its_ray_report_a_plain_job_leaves_them_to_the_thread() -> None:
    with recording_server() as server:
        trial = Reporter(server.url, "42", "t", trial=3, flush_interval=3600)  # the thread never wakes alone
        job = Reporter(server.url, "43", "t", flush_interval=3600)
        try:
            for reporter in (trial, job):
                reporter.metrics({"val_accuracy": 0.5}, step=10, epoch=1)
                reporter.before_ray_report()
            assert [(p["name"], p["value"]) for p in server.points()] == [("val_accuracy", 0.5)]
            assert server.requests[0].body["trial"] == 3
            assert (trial.pending, job.pending) == (0, 1)
        finally:
            trial.close()
            job.close()


def test_points_wait_in_the_buffer_while_the_controller_is_unreachable() -> None:
    server = RecordingServer()  # not started yet: connections are refused
    reporter = Reporter(server.url, "7", "t", flush_interval=0.1)
    for step in range(100):
        reporter.metric("train_loss", float(step), step=step)  # returns at once: the thread does the sending
    time.sleep(0.5)
    assert reporter.pending == 100
    server.fail_next = 2  # then it comes up, answering 503 twice
    server.start()
    try:
        assert wait_for(lambda: len(server.points()) == 100)
        assert [p["value"] for p in server.points()] == [float(s) for s in range(100)]
        reporter.close()
    finally:
        server.stop()


def test_the_buffer_is_bounded_and_close_does_not_hang_without_a_controller() -> None:
    server = RecordingServer()
    reporter = Reporter(server.url, "7", "t", max_buffered=10)
    for step in range(25):
        reporter.metric("loss", float(step), step=step)
    assert reporter.pending == 10
    reporter.close(timeout=0.5)  # gives up on the unreachable controller instead of waiting for it
    assert reporter.pending == 10


def test_non_finite_values_and_names_the_api_refuses_are_left_out() -> None:
    with recording_server() as server:
        reporter = Reporter(server.url, "1", "t")
        reporter.metrics({"a": float("nan"), "b": float("inf"), "c": 2.0, "d": True, "bad name": 1.0}, step=1)
        reporter.close()
        assert [p["name"] for p in server.points()] == ["c"]


def test_artifacts_are_registered_and_a_refusal_is_not_retried_forever() -> None:
    artifact = {"name": "model.pt", "uri": "file:///x/model.pt", "size": 3, "sha256": "ab", "kind": "model"}
    with recording_server() as server:
        reporter = Reporter(server.url, "9", "tok")
        server.fail_next = 1
        assert reporter.register_artifacts([artifact]) is True
        assert server.artifacts() == [artifact]
        assert server.requests[-1].path == "/api/v1/jobs/9/artifacts"
        server.status = 403
        assert reporter.register_artifacts([artifact]) is False
        reporter.close()


def test_without_an_api_url_the_reporter_does_nothing() -> None:
    reporter = Reporter(None, "1", None)
    reporter.metric("loss", 1.0, step=1)
    assert reporter.pending == 0
    assert reporter.register_artifacts([{"name": "x"}]) is True
    reporter.close()
    assert Reporter.from_context("http://127.0.0.1:1", "1", "t", rank=1).enabled is False
