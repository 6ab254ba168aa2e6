"""A write as the store writer sees it (``Op``) and as its caller waits for it
(``Pending``): settled once committed or failed, with the writer's counts."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
from sqlalchemy.engine import Connection

from actors import LoopEvent

log = logging.getLogger("callboard.store")


class Leader(Protocol):
    """A writer that lets the caller's task commit (``StoreWriter.submit(lead=True)``)."""

    async def _lead(self) -> None: ...


class Op(Protocol):
    """A write: runs inside the writer's transaction.

    An op may also say how many rows it touches, as ``inline_weight``
    (an int attribute or property): only such ops may commit on the event
    loop. An op without it always runs on a worker thread. A class may offer
    ``apply_many(conn, ops) -> results`` to apply neighbouring ops of its kind
    in one go. An op whose ``single_statement`` is true runs exactly one SQL
    statement: alone in a batch, it needs no transaction around it. An op
    whose ``keep_on_fault`` is true is kept through a storage fault and
    tried again rather than failed.
    """

    def apply(self, conn: Connection) -> Any: ...


Notices = Callable[[Any], Iterable[str]]
"""What a write tells other processes, given its result (see ``notifier``)."""


class Pending:
    """The answer to one submitted write."""

    __slots__ = (
        "_done",
        "_event",
        "_leader",
        "_on_settled",
        "_settled",
        "error",
        "notices",
        "op",
        "result",
    )

    def __init__(
        self,
        op: Op,
        event: Callable[[], LoopEvent] = anyio.Event,
        notices: Notices | None = None,
    ) -> None:
        self.op = op
        self.notices = notices
        self.result: Any = None
        self.error: BaseException | None = None
        self._settled = False
        self._event = event
        self._done: LoopEvent | None = None  # made only if someone waits before the commit
        self._on_settled: Callable[[Any, BaseException | None], None] | None = None
        self._leader: Leader | None = None  # commits it in the waiter's task (``lead``)

    @property
    def is_settled(self) -> bool:
        """Whether the write has been committed or has failed."""
        return self._settled

    def on_settled(self, callback: Callable[[Any, BaseException | None], None]) -> None:
        """Call ``callback(result, error)`` in the writer once the write is settled
        (committed or failed), before any waiter wakes. It must not raise."""
        self._on_settled = callback

    def _settle(self, result: Any, error: BaseException | None) -> None:
        self.result, self.error = result, error
        self._settled = True
        if self._on_settled is not None:
            try:
                self._on_settled(result, error)
            except Exception:  # a bad callback must not stop the writer
                log.exception("a write's settle callback failed")
        if self._done is not None:
            self._done.set()

    async def settled(self) -> None:
        """Wait until the write is settled, without raising its error."""
        leader, self._leader = self._leader, None
        if leader is not None:
            await leader._lead()
        if not self._settled:
            if self._done is None:
                self._done = self._event()
            await self._done.wait()

    async def wait(self) -> Any:
        await self.settled()
        if self.error is not None:
            raise self.error
        return self.result

    def __await__(self) -> Any:
        return self.wait().__await__()


@dataclass(frozen=True, slots=True)
class WriterStatistics:
    transactions: int
    operations: int
    progress_rows: int
    queued: int
    faults: int = 0  # batches a storage fault failed
    held: int = 0  # writes kept through the current fault, to try again
    led: int = 0  # batches committed in a caller's task (``submit(lead=True)``)
    alone: int = 0  # lone writes committed at once in a caller's task (``write_alone``)
