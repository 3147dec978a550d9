"""Endpoint figures: latency percentiles from histograms, prediction shares, and input drift (PSI)."""

from __future__ import annotations

from dljobs.controller.services.monitoring import StatsBook, percentile, psi, summarise

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


def test_percentiles_and_psi_edges() -> None:
    assert percentile({}, 0.5) is None
    assert percentile({"1": 98, "100": 2}, 0.5) == 1.0 and percentile({"1": 98, "100": 2}, 0.99) == 100.0
    assert psi([0.5, 0.5], [0, 0]) is None
    assert psi([0.5, 0.5], [50, 50]) == 0.0
