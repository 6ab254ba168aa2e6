"""Open event streams per token: the limit, and every way a place comes back."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator

import pytest

from runtime.api.auth import Principal, Role
from runtime.api.errors import ApiError
from runtime.api.streams import StreamSlots

ALICE = Principal("alice", "acme", Role.VIEWER)
BOB = Principal("bob", "acme", Role.VIEWER)


async def _body() -> AsyncIterator[bytes]:
    yield b"one"


@pytest.mark.trio
async def test_past_the_limit_is_429_and_each_token_counts_alone() -> None:
    slots = StreamSlots(2)
    held = [slots.hold(ALICE, _body()) for _ in range(2)]
    with pytest.raises(ApiError) as refused:
        slots.hold(ALICE, _body())
    assert (refused.value.status, refused.value.code) == (429, "too_many_requests")
    bobs = slots.hold(BOB, _body())
    assert slots.open_for(ALICE) == 2 and slots.open_for(BOB) == 1, bobs
    await held[0].aclose()
    await held[0].aclose()  # closing twice frees one place, once
    assert slots.open_for(ALICE) == 1


@pytest.mark.trio
async def test_a_place_comes_back_when_the_stream_ends_or_is_dropped() -> None:
    slots = StreamSlots(1)
    stream = slots.hold(ALICE, _body())
    assert [chunk async for chunk in stream] == [b"one"]
    assert slots.open_for(ALICE) == 0
    slots.hold(ALICE, _body())  # never iterated nor closed: dropped
    gc.collect()
    assert slots.open_for(ALICE) == 0
