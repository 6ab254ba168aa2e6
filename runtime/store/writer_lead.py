"""Commits a caller leads in its own task instead of the writer's (mixed into
``StoreWriter``): ``submit(lead=True)`` commits what is queued, as the writer
would, after a pass of the loop that lets a batch form; ``write_alone``
commits a lone write at once when nothing shows a batch forming."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from anyio.abc import TaskGroup
from sqlalchemy.engine import Connection

from actors import LoopEvent
from runtime.store.faults import rollback
from runtime.store.pending import Op, Pending

ALONE_PASS_EVERY = 0.001
"""Seconds a producer of lone writes may hold the event loop (``write_alone``)."""


class CallerCommits:
    """See the module's docstring."""

    if TYPE_CHECKING:  # provided by StoreWriter
        _queue: deque[Pending]
        _ready: LoopEvent | None
        _leading: bool
        _held: list[Pending]
        _inline_max: int
        _inline: bool
        _conn: Connection | None
        _tg: TaskGroup | None
        _checkpoints: tuple[Callable[[], Any], Callable[[], Any]] | None
        _last_batch: int
        _batch_max: int
        _led: int
        _alone_writes: int
        _alone_passing: int
        _alone_passed_at: float
        _lead_done: LoopEvent | None
        _closed: bool
        _fault_since: float | None

        async def _commit_queued(self, conn: Connection, tg: TaskGroup) -> None: ...
        def _wake(self) -> None: ...
        def _busy_timeout(self, conn: Connection, ms: int) -> None: ...
        def _count(self, transactions: int, operations: int) -> None: ...
        def _recovered(self) -> None: ...
        def _maybe_checkpoint(self, tg: TaskGroup) -> None: ...

    def _may_lead(self, op: Op, *, queued: int) -> bool:
        """Whether a caller may commit ``op`` itself: the writer waits for writes
        (none queued but ``queued``, none kept through a fault) on SQLite."""
        return (
            self._ready is not None
            and not self._leading
            and len(self._queue) == queued
            and not self._held
            and self._inline_max >= 0
            and getattr(op, "inline_weight", None) is not None
        )

    async def _lead(self) -> None:
        """Commit the queued writes in the calling task, as the writer would."""
        assert self._conn is not None and self._tg is not None and self._checkpoints is not None
        if_cancelled, one_pass = self._checkpoints
        try:
            await if_cancelled()  # cancelled here, the writer commits it
            # Writes that were runnable join; while they keep coming, a batch is
            # forming. A pass may run the leader before the writers woken with
            # it (trio runs a batch of tasks in either order): after a shared
            # commit, when more are likely to come, it waits two passes.
            queue, passes, seen = self._queue, 0, 0
            least = 2 if self._last_batch > 1 else 1
            while (passes < least or seen < len(queue)) and len(queue) < self._batch_max:
                seen = len(queue)
                passes += 1
                await one_pass()
            self._led += 1
            await self._commit_queued(self._conn, self._tg)
        finally:
            self._leading = False
            if self._lead_done is not None:
                self._lead_done.set()
            if self._queue or self._closed:
                self._wake()

    async def write_alone(self, op: Op) -> tuple[bool, Any]:
        """Commit a lone write at once in the caller's task: ``(True, result)``,
        or ``(False, None)`` when it is not taken (then nothing was stored and
        the caller submits it as usual; the writer's path handles faults).

        Taken on SQLite for a single-statement write when the writer is idle and
        nothing shows a batch forming: the last batch was a lone write and no
        other caller of this method is in its pass of the loop after its commit
        (its writes were alone; a write that comes meanwhile is a neighbour, and
        leads a batch instead: ``submit(lead=True)``). The pass of the loop after
        the commit lets other tasks run; a producer that writes alone again and
        again takes it once per :data:`ALONE_PASS_EVERY` (each pass costs an
        ``epoll_wait``, as much as a fifth of the write here), so it holds the
        loop that long at most. Every call is a cancellation point.
        """
        if not (
            self._alone_passing == 0
            and self._last_batch <= 1
            and getattr(op, "single_statement", False)
            and self._may_lead(op, queued=0)
        ):
            return False, None
        assert self._conn is not None and self._tg is not None and self._checkpoints is not None
        if_cancelled, one_pass = self._checkpoints
        await if_cancelled()  # no pass of the loop unless cancelled: still idle after it
        conn = self._conn
        if not self._inline:
            self._busy_timeout(conn, 0)
            self._inline = True
        try:  # in SQLite's own autocommit transaction, as _sqlite_autocommit
            result = op.apply(conn)
            if conn.in_transaction():  # a Core statement began one
                conn.commit()
        except Exception:  # busy, a fault, a bad row: the writer's path decides
            rollback(conn)
            return False, None
        self._alone_writes += 1
        self._last_batch = 1
        self._count(1, 1)
        if self._fault_since is not None:
            self._recovered()
        self._maybe_checkpoint(self._tg)
        if time.monotonic() - self._alone_passed_at < ALONE_PASS_EVERY:
            return True, result
        self._alone_passing += 1
        try:
            await one_pass()
        finally:
            self._alone_passing -= 1
            self._alone_passed_at = time.monotonic()
        return True, result
