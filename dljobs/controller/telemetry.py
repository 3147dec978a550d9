"""What operators see: Prometheus metrics (`/metrics`) and logs, as text or JSON lines with request ids.

Every app has its own registry (no module-level metric objects), so several controllers in one process
(tests) never mix their figures.
"""

from __future__ import annotations

import contextvars
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("dljobs_request_id", default=None)

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ControllerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Histogram(
            "dljobs_api_request_duration_seconds",
            "API request latency",
            ["method", "route", "status"],
            registry=self.registry,
            buckets=_LATENCY_BUCKETS,
        )
        self.queue_depth = Gauge(
            "dljobs_queue_depth", "Jobs waiting to start", ["priority", "project"], registry=self.registry
        )
        self.jobs = Gauge("dljobs_jobs", "Jobs by status", ["status"], registry=self.registry)
        self.loop_duration = Histogram(
            "dljobs_loop_duration_seconds",
            "Duration of one pass of a background loop",
            ["loop"],
            registry=self.registry,
            buckets=_LATENCY_BUCKETS,
        )
        self.loop_errors = Counter(
            "dljobs_loop_errors_total",
            "Passes of a background loop that failed",
            ["loop"],
            registry=self.registry,
        )
        self.launch_errors = Counter(
            "dljobs_launch_errors_total", "Launches that failed", ["kind"], registry=self.registry
        )
        self.launches = Counter(
            "dljobs_launches_total", "Launches this controller made and Ray confirmed", registry=self.registry
        )
        self.reconciled = Counter(
            "dljobs_reconciled_total", "Jobs this controller checked against Ray", registry=self.registry
        )
        self.endpoint_requests = Counter(
            "dljobs_endpoint_requests_total",
            "Predict requests of callers the endpoint accepted, by answer status",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.endpoint_latency = Histogram(
            "dljobs_endpoint_request_duration_seconds",
            "Predict latency through the controller, answered with predictions",
            ["endpoint"],
            registry=self.registry,
            buckets=_LATENCY_BUCKETS,
        )
        self.webhook_deliveries = Counter(
            "dljobs_webhook_deliveries_total", "Webhook deliveries", ["outcome"], registry=self.registry
        )


class RequestTelemetry:
    """Pure ASGI middleware: the request id in a context variable (for logs), and the latency histogram
    labelled by route template (never by raw path, so ids do not explode the label set)."""

    def __init__(self, app: ASGIApp, metrics: ControllerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        token = request_id_var.set(scope.get("state", {}).get("request_id"))

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            if route != "/metrics":
                self.metrics.requests.labels(scope["method"], route, str(status)).observe(
                    time.perf_counter() - started
                )
            request_id_var.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, and any `extra` fields."""

    _STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, str | int | float | bool | None) else repr(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or "-"
        return True


def configure_logging(level: str, fmt: str) -> None:
    """Root logging for the controller process: `fmt` is "text" or "json"."""
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s")
        )
        handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Ray poll otherwise
