"""``benchmarks.scaleout`` at a tiny size, so it cannot rot. Nothing here is timed.

Callboard and the raw psycopg floor always run (on the server of
``CALLBOARD_TEST_POSTGRES_URL``; skipped without one); pgqueuer and
procrastinate only when their virtualenv is already installed.
"""

from __future__ import annotations

import os

import pytest
import trio

from benchmarks import scaleout

POSTGRES_ENV = "CALLBOARD_TEST_POSTGRES_URL"


def _systems() -> tuple[str, ...]:
    ready = [
        name
        for name, environment in scaleout.PEERS.items()
        if environment is None or environment.is_ready()
    ]
    return ("callboard", *ready)


@pytest.mark.timeout(600)  # some 25 worker processes start, one after another
def test_every_system_completes_every_workload() -> None:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: no PostgreSQL server")
    systems = _systems()
    which = ("pickup", "limit2", "unrelated", "drain")
    results = trio.run(scaleout.main, base, which, 40, systems, 1, 0.02)
    assert set(results) == {
        "pickup",
        "limit2_1p",
        "limit2_3p",
        "unrelated_3p_plain",
        "unrelated_3p_limited",
        "drain_1p",
        "drain_2p",
        "drain_4p",
    }
    for key, by_system in results.items():
        for system, rounds in by_system.items():
            (figures,) = rounds
            assert "error" not in figures, (key, system, figures)
            if "n/a" in figures:
                assert key.startswith("limit2") and system in ("procrastinate", "raw_psycopg")
                continue
            if key == "pickup":
                assert figures["p99_ms"] >= figures["p50_ms"] > 0
            else:
                assert figures["jobs_per_s"] > 0
            if key.startswith("limit2"):
                assert figures["max_running"] <= 2  # the limit held in every sample
    assert set(results["drain_1p"]) == set(systems)
