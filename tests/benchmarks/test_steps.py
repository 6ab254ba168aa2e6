"""``python -m benchmarks.steps`` runs (tiny sizes; it times nothing here)."""

from __future__ import annotations

from pathlib import Path

from benchmarks.steps import measure


def test_the_steps_benchmark_drains_both_workloads(tmp_path: Path) -> None:
    result = measure(steps=20, per_job=5, folder=tmp_path)
    assert (result["steps"], result["per_job"]) == (20, 5)
    assert result["chain_steps_us"] > 0 and result["drain_jobs_us"] > 0
