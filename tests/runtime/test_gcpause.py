"""The collector pause around bulk builds."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from runtime.gcpause import BULK_MIN_ITEMS, collector_paused


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
