"""``python -m benchmarks.child_events`` runs (tiny sizes; it times nothing here)."""

from __future__ import annotations

from benchmarks.child_events import measure


def test_child_events_benchmark_delivers_one_child_event_per_watched_change() -> None:
    result = measure(50)
    assert result["events"] == 50
    assert result["child_events_delivered"] == 50
    assert result["plain_ratio"] == 1.0
