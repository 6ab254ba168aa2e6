"""The engine-overhead probe runs and drains every job (it times nothing here)."""

from __future__ import annotations

from benchmarks.engine_overhead import measure


def test_engine_overhead_drains_every_job() -> None:
    figures = measure(jobs=200, capacity=7)
    assert figures["jobs"] == 200
    assert figures["cpu_us_per_job"] > 0
