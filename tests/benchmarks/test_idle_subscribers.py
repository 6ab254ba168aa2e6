"""``python -m benchmarks.idle_subscribers`` runs (tiny sizes; it times nothing here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.idle_subscribers import measure

pytestmark = pytest.mark.trio


async def test_idle_subscribers_drains_every_job_and_reads_their_events(tmp_path: Path) -> None:
    result = await measure(20, 3, tmp_path)
    assert result["jobs"] == 20 and result["subscribers"] == 3
    assert result["cpu_s"] >= 0 and result["gc_s"] >= 0
