"""Endpoint figures: latency percentiles from histograms, prediction shares, input drift (PSI), and the
canary's judgement over them."""

from __future__ import annotations

from dljobs.controller.services.monitoring import StatsBook, canary_verdict, percentile, psi, summarise
from dljobs.spec.serving import ServingConfig

CARD = {
    "input": {"shape": [2]},
    "data": {
        "feature_summary": {
            "kind": "tabular",
            "features": [
                {"name": "a", "index": 0, "bins": [0.0, 1.0, 2.0, 3.0, 4.0], "fractions": [0.25] * 4},
                {"name": "b", "index": 1, "bins": [0.0, 1.0, 2.0, 3.0, 4.0], "fractions": [0.25] * 4},
            ],
        }
    },
}


def test_inputs_like_the_training_data_do_not_drift_and_shifted_ones_do() -> None:
    book = StatsBook()
    version = book.of(1, 7, CARD)
    # feature a spread like training; feature b all in the top bin
    inputs = [[0.5 + i % 4, 3.5] for i in range(400)]
    version.record(3.0, inputs, [{"class": "x"}] * 300 + [{"class": "y"}] * 100)
    version.record_error(40.0)
    (row,) = book.drain()
    assert book.drain() == []
    stats = summarise(1, row, CARD)
    assert stats.drift_psi["a"] < 0.01 and stats.drift_psi["b"] > 1.0
    assert stats.drift_psi_max == stats.drift_psi["b"]
    assert stats.predictions == {"x": 0.75, "y": 0.25}
    assert stats.requests == 2 and stats.errors == 1 and stats.error_rate == 0.5
    assert stats.latency_ms["p50"] == 3.0 and stats.latency_ms["p99"] == 50.0


def test_rows_put_back_come_first_in_the_next_drain_and_stay_bounded(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    book = StatsBook()
    book.of(1, 7, CARD).record(3.0, [[1.0, 1.0]], [{"class": "x"}])
    unwritten = book.drain()
    book.put_back(unwritten)
    book.of(1, 8, CARD).record(4.0, [[1.0, 1.0]], [{"class": "y"}])
    assert [row["version_id"] for row in book.drain()] == [7, 8]
    assert book.drain() == []
    monkeypatch.setattr(StatsBook, "MAX_UNWRITTEN", 2)
    book.put_back([{"version_id": v} for v in (1, 2, 3)])
    assert book.drain() == [{"version_id": 1}, {"version_id": 2}]


def test_percentiles_and_psi_edges() -> None:
    assert percentile({}, 0.5) is None
    assert percentile({"1": 98, "100": 2}, 0.5) == 1.0 and percentile({"1": 98, "100": 2}, 0.99) == 100.0
    assert psi([0.5, 0.5], [0, 0]) is None
    assert psi([0.5, 0.5], [50, 50]) == 0.0


def _canary_figures(latencies_ms: list[float], errors: int = 0) -> dict[str, object]:
    """A canary's figures as the gateway records them (one request per latency; the first `errors` fail)."""
    book = StatsBook()
    version = book.of(1, 9, CARD)
    for i, ms in enumerate(latencies_ms):
        if i < errors:
            version.record_error(ms)
        else:
            version.record(ms, [[1.0, 1.0]], [{"class": "x"}])
    (row,) = book.drain()
    return row


def test_a_canary_slower_than_its_p99_threshold_is_rolled_back_once_judged() -> None:
    config = ServingConfig(max_p99_ms=100, min_requests=20, max_error_rate=0.05)
    assert canary_verdict(config, None) is None  # no figures yet
    # slow from the start, but 19 requests are too few to judge by
    assert canary_verdict(config, _canary_figures([400.0] * 19)) is None
    verdict = canary_verdict(config, _canary_figures([400.0] * 20))
    assert verdict == "rolled back: the canary's p99 latency 500 ms is above 100 ms"
    # one slow request in a hundred is the 1% p99 leaves out; two are not
    assert canary_verdict(config, _canary_figures([5.0] * 99 + [400.0])) is None
    assert canary_verdict(config, _canary_figures([5.0] * 98 + [400.0] * 2)) is not None
    # at the threshold is not above it (latency buckets: 100 ms is the bucket 75..100)
    assert canary_verdict(config, _canary_figures([90.0] * 50)) is None
    assert canary_verdict(ServingConfig(max_p99_ms=99, min_requests=20), _canary_figures([90.0] * 50))


def test_a_canary_failing_too_often_is_rolled_back_before_its_latency_is_looked_at() -> None:
    config = ServingConfig(max_p99_ms=100, min_requests=20, max_error_rate=0.05)
    assert canary_verdict(config, _canary_figures([5.0] * 40, errors=2)) is None  # 5% is not above 5%
    verdict = canary_verdict(config, _canary_figures([400.0] * 40, errors=3))
    assert verdict == "rolled back: the canary's error rate 7.5% over 40 requests is above 5.0%"
