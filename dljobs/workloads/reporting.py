"""Live metrics and artifact registration, sent to the controller.

    POST {api}/api/v1/jobs/{id}/metrics    {"points": [{"step", "epoch", "name", "value", "ts"}], "trial": N}
    POST {api}/api/v1/jobs/{id}/artifacts  {"artifacts": [{"name", "uri", "size", "sha256", "kind"}]}

both with `Authorization: Bearer {job token}`. Metrics are buffered and sent by a background thread at
least every `FLUSH_INTERVAL_S`; when the controller is unreachable they stay in the buffer (bounded: the
oldest points go first) and are retried, so training is never slowed down or stopped by reporting. With no
API URL the reporter is a no-op. Only rank 0 reports.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import httpx

from dljobs.spec.api import MetricName

logger = logging.getLogger(__name__)
# every request would otherwise be a line in the job's logs
logging.getLogger("httpx").setLevel(logging.WARNING)

FLUSH_INTERVAL_S = 1.0
MAX_BACKOFF_S = 2.0
MAX_BUFFERED_POINTS = 100_000
MAX_POINTS_PER_REQUEST = 1_000
REQUEST_TIMEOUT_S = 5.0
ARTIFACT_ATTEMPTS = 5
COORDINATES = ("step", "epoch")
VALID_NAME = re.compile(next(m.pattern for m in MetricName.__metadata__ if hasattr(m, "pattern")))


class Reporter:
    """Sends metric points from a background thread; `close()` flushes what is left (bounded wait)."""

    def __init__(
        self,
        api_url: str | None,
        job_id: str,
        token: str | None,
        *,
        flush_interval: float = FLUSH_INTERVAL_S,
        max_buffered: int = MAX_BUFFERED_POINTS,
        trial: int | None = None,
    ) -> None:
        self.enabled = bool(api_url)
        self.trial = trial  # a sweep's trial: its points are the trial's series
        self.base = f"{(api_url or '').rstrip('/')}/api/v1/jobs/{job_id}"
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.flush_interval = flush_interval
        self._points: deque[dict[str, Any]] = deque(maxlen=max_buffered)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closing = threading.Event()
        self._dropped = 0
        self._sent = 0
        self._refused_names: set[str] = set()
        self._client: httpx.Client | None = None
        self._thread: threading.Thread | None = None
        if self.enabled:
            self._client = httpx.Client(timeout=REQUEST_TIMEOUT_S, headers=self.headers)
            self._thread = threading.Thread(target=self._run, name="dljobs-reporter", daemon=True)
            self._thread.start()

    @classmethod
    def disabled(cls) -> Reporter:
        return cls(None, "", None)

    @classmethod
    def from_context(
        cls, api_url: str | None, job_id: str, token: str | None, *, rank: int = 0, trial: int | None = None
    ) -> Reporter:
        """A reporter for rank 0 (no-op on other ranks and without an API URL)."""
        return cls(api_url, job_id, token, trial=trial) if rank == 0 else cls.disabled()

    # -- metrics ------------------------------------------------------------------------------------------

    def metric(
        self, name: str, value: float, *, step: int, epoch: int | None = None, ts: float | None = None
    ) -> None:
        if not self.enabled:
            return
        try:
            number = float(value)
        except (TypeError, ValueError):
            return
        if not math.isfinite(number):
            return  # JSON has no NaN or infinity
        if not VALID_NAME.match(name):
            if name not in self._refused_names:
                self._refused_names.add(name)
                logger.warning("metric '%s' is not reported: names are letters, digits and _ . / -", name)
            return
        point = {
            "step": int(step),
            "epoch": epoch,
            "name": name,
            "value": number,
            "ts": time.time() if ts is None else ts,
        }
        with self._lock:
            if len(self._points) == self._points.maxlen:
                self._dropped += 1
            self._points.append(point)

    def metrics(self, values: Mapping[str, Any], *, step: int, epoch: int | None = None) -> None:
        """One point per numeric value (the `step` and `epoch` keys are coordinates, not metrics)."""
        now = time.time()
        for name, value in values.items():
            if name in COORDINATES:
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.metric(name, value, step=step, epoch=epoch, ts=now)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._points)

    def _take(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._points.popleft() for _ in range(min(len(self._points), MAX_POINTS_PER_REQUEST))]

    def _put_back(self, batch: list[dict[str, Any]]) -> None:
        with self._lock:
            room = (self._points.maxlen or 0) - len(self._points)
            keep = batch[-room:] if room > 0 else []
            self._dropped += len(batch) - len(keep)
            self._points.extendleft(reversed(keep))

    def _send_points(self, batch: list[dict[str, Any]]) -> bool:
        """True when the batch is done with (sent, or refused for good); False to retry it later."""
        assert self._client is not None
        try:
            body: dict[str, Any] = {"points": batch}
            if self.trial is not None:
                body["trial"] = self.trial
            response = self._client.post(f"{self.base}/metrics", json=body)
        except httpx.HTTPError:
            return False
        if response.status_code < 300:
            self._sent += len(batch)
            return True
        if response.status_code in (408, 425, 429) or response.status_code >= 500:
            return False
        logger.warning("the controller refused %d metric points: HTTP %d", len(batch), response.status_code)
        return True

    def _run(self) -> None:
        backoff = self.flush_interval
        while True:
            self._wake.wait(timeout=backoff)
            self._wake.clear()
            closing = self._closing.is_set()
            while batch := self._take():
                if not self._send_points(batch):
                    self._put_back(batch)
                    backoff = min(MAX_BACKOFF_S, max(backoff * 2, self.flush_interval))
                    break
                backoff = self.flush_interval
            if closing:
                return

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait (at most `timeout`) until every buffered point has been sent; True if none is left."""
        if not self.enabled:
            return True
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            self._wake.set()
            time.sleep(0.05)
        return not self.pending

    def before_ray_report(self) -> None:
        """Call between buffering an epoch's points and reporting it to Ray. A sweep's trial sends them now:
        its scheduler may stop the trial on that report, which ends its process at once. (Bounded: with the
        controller away, points stay buffered as ever and the trial goes on.)"""
        if self.trial is not None:
            self.flush(timeout=2.0)

    def close(self, timeout: float = 5.0) -> None:
        """Send what is buffered (giving up after `timeout`) and stop the thread."""
        if not self.enabled or self._thread is None:
            return
        self.flush(timeout)
        self._closing.set()
        self._wake.set()
        self._thread.join(timeout=timeout)
        if self._client is not None:
            self._client.close()
        if self.pending or self._dropped:
            logger.warning(
                "%d metric points were not delivered to the controller", self.pending + self._dropped
            )

    # -- artifacts ----------------------------------------------------------------------------------------

    def register_artifacts(self, artifacts: list[dict[str, Any]]) -> bool:
        """Register written artifacts (retried a few times); False when the controller never took them."""
        if not self.enabled or not artifacts:
            return True
        assert self._client is not None
        delay = 0.5
        for attempt in range(1, ARTIFACT_ATTEMPTS + 1):
            try:
                response = self._client.post(f"{self.base}/artifacts", json={"artifacts": artifacts})
                if response.status_code < 300:
                    return True
                if response.status_code < 500 and response.status_code not in (408, 425, 429):
                    logger.warning(
                        "the controller refused the artifacts: HTTP %d %s",
                        response.status_code,
                        response.text[:200],
                    )
                    return False
            except httpx.HTTPError:
                pass
            if attempt < ARTIFACT_ATTEMPTS:
                time.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF_S * 2)
        return False

    # -- trials (a sweep's driver) -------------------------------------------------------------------------

    def post_trials(self, trials: list[dict[str, Any]]) -> bool:
        """Send trial rows (the latest state of each); False when the controller did not take them."""
        if not self.enabled or not trials:
            return True
        assert self._client is not None
        try:
            response = self._client.post(f"{self.base}/trials", json={"trials": trials})
        except httpx.HTTPError:
            return False
        if response.status_code >= 300 and response.status_code < 500:
            logger.warning(
                "the controller refused trial rows: HTTP %d %s", response.status_code, response.text[:200]
            )
            return True  # refused for good: retrying would not help
        return response.status_code < 300
