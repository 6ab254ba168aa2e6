"""The collector pause around bulk builds."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.gcpause import BULK_MIN_ITEMS, collector_paused

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def collector_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_a_bulk_build_pauses_the_collector_and_resumes_it() -> None:
    with collector_paused(BULK_MIN_ITEMS):
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_small_build_leaves_the_collector_alone() -> None:
    with collector_paused(BULK_MIN_ITEMS - 1):
        assert gc.isenabled()


def test_the_collector_resumes_after_an_error() -> None:
    with pytest.raises(ValueError), collector_paused(BULK_MIN_ITEMS):
        raise ValueError("bad item")
    assert gc.isenabled()


def test_a_collector_the_program_disabled_stays_disabled() -> None:
    gc.disable()
    with collector_paused(BULK_MIN_ITEMS):
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_freezing_start_up_objects_leaves_later_ones_to_the_collector() -> None:
    # In a process of its own: a freeze lasts as long as the process.
    script = textwrap.dedent(
        """
        import gc
        from runtime import freeze_startup_objects

        frozen = freeze_startup_objects()
        assert frozen > 10_000 and gc.get_freeze_count() == frozen, frozen
        later = [[] for _ in range(1_000)]
        for item in later:
            item.append(item)  # cyclic garbage made after the freeze
        del later, item
        assert gc.collect() >= 1_000
        assert gc.get_freeze_count() == frozen
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
