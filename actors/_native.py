"""Trio's own primitives when the engine runs under trio; anyio's elsewhere.

The engine spawns a task and opens a cancel scope for every job, and the
store's writer makes an event for most writes. On trio,
anyio's wrappers around these cost more than the primitives themselves (its
task groups give each task a cancel scope of its own), so the per-job path
uses trio directly there. The semantics are trio's either way: anyio's trio
backend is these same objects underneath.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, Protocol, TypeVar

import anyio
import anyio.lowlevel
import sniffio
import trio

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)
T_co = TypeVar("T_co", covariant=True)


class CancelScope(AbstractContextManager[Any], Protocol):
    def cancel(self) -> None: ...

    @property
    def cancel_called(self) -> bool: ...

    @property
    def cancelled_caught(self) -> bool: ...


class TaskGroup(Protocol):
    def start_soon(
        self, func: Callable[..., Awaitable[Any]], *args: object, name: object = None
    ) -> None: ...

    @property
    def cancel_scope(self) -> CancelScope: ...


class Sender(Protocol[T_contra]):
    """The sending end of a memory channel (trio's, or anyio's memory object stream)."""

    async def send(self, value: T_contra, /) -> None: ...

    def send_nowait(self, value: T_contra, /) -> None: ...

    def close(self) -> None: ...


class Receiver(AbstractContextManager[Any], Protocol[T_co]):
    """The receiving end of a memory channel; closing it breaks the senders'."""

    async def receive(self) -> T_co: ...

    def receive_nowait(self) -> T_co: ...

    def close(self) -> None: ...


CLOSED_CHANNEL = (
    trio.BrokenResourceError,
    trio.ClosedResourceError,
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
)
"""What sending on a channel whose receiver is gone raises (trio's or anyio's)."""
WOULD_BLOCK = (trio.WouldBlock, anyio.WouldBlock)
"""What ``send_nowait`` on a full channel, or ``receive_nowait`` on an empty one, raises."""


def on_trio() -> bool:
    try:
        return sniffio.current_async_library() == "trio"
    except sniffio.AsyncLibraryNotFoundError:
        return False


def task_group() -> AbstractAsyncContextManager[TaskGroup]:
    """A task group for many short-lived tasks."""
    if on_trio():
        return trio.open_nursery()
    group: AbstractAsyncContextManager[Any] = anyio.create_task_group()
    return group


def memory_channel(size: int, item: type[T]) -> tuple[Sender[T], Receiver[T]]:
    """A bounded memory channel of the running loop: trio's own on trio (anyio's
    memory object streams wrap the same idea at a higher cost per message)."""
    if on_trio():
        send, receive = trio.open_memory_channel[T](size)
        return send, receive
    sender, receiver = anyio.create_memory_object_stream[T](size)
    return sender, receiver


def cancel_scope_factory() -> Callable[[float], CancelScope]:
    """Makes a cancel scope with a deadline on the running loop's clock."""
    if on_trio():
        return lambda deadline: trio.CancelScope(deadline=deadline)
    return lambda deadline: anyio.CancelScope(deadline=deadline)


class LoopEvent(Protocol):
    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    async def wait(self) -> None: ...


def event_factory() -> Callable[[], LoopEvent]:
    """Makes events of the running loop (on trio, ``trio.Event``: anyio's wrapper
    around it costs about as much again for every event made, set and waited)."""
    return trio.Event if on_trio() else anyio.Event


def checkpoints() -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    """The running loop's ``checkpoint_if_cancelled`` and ``cancel_shielded_checkpoint``
    (anyio's look the loop up on every call)."""
    if on_trio():
        return trio.lowlevel.checkpoint_if_cancelled, trio.lowlevel.cancel_shielded_checkpoint
    return anyio.lowlevel.checkpoint_if_cancelled, anyio.lowlevel.cancel_shielded_checkpoint


def clock() -> Callable[[], float]:
    """The running loop's clock (what cancel scope deadlines are measured on)."""
    return trio.current_time if on_trio() else anyio.current_time


def is_stray_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` is an ``asyncio.CancelledError`` that no cancellation of
    the running task raised: a handler awaited a future or task that something
    else cancelled. Call it only where ``exc`` was caught inside a cancel scope
    of one's own that was not cancelled.

    Under asyncio a real cancellation leaves a trace on the task (a pending
    ``Task.cancel()``) or on the cancel scopes around it (anyio delivers a
    scope's cancellation on the next turn of the loop, so a cancelled scope
    may not have reached the task yet). Under trio, ``trio.Cancelled`` is the
    loop's cancellation and an asyncio one is never the engine's.
    """
    if not isinstance(exc, asyncio.CancelledError):
        return False
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no asyncio loop runs here (trio)
        return True
    if task is None or task.cancelling():
        return False
    return anyio.current_effective_deadline() != -math.inf
