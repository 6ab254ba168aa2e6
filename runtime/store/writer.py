"""The store writer: one actor owns every write and commits them in groups.

Writes arrive on a memory channel. The writer takes the first, then all that
are already queued, and applies them in one transaction on one worker-thread
hop (group commit). Nothing waits on purpose: under load the batch grows by
itself while the previous commit runs. Each caller is answered once its
write is durable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
from anyio.abc import TaskStatus
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from runtime.store import threads
from runtime.store.engine import writer_connection

WRITER_BATCH_MAX_DEFAULT = 512


class Op(Protocol):
    """A write: runs in the writer's thread inside a transaction."""

    def apply(self, conn: Connection) -> Any: ...


class Pending:
    """The answer to one submitted write."""

    __slots__ = ("_done", "error", "op", "result")

    def __init__(self, op: Op) -> None:
        self.op = op
        self.result: Any = None
        self.error: BaseException | None = None
        self._done = anyio.Event()

    def _settle(self, result: Any, error: BaseException | None) -> None:
        self.result, self.error = result, error
        self._done.set()

    async def wait(self) -> Any:
        await self._done.wait()
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


class StoreWriter:
    def __init__(self, engine: Engine, *, batch_max: int = WRITER_BATCH_MAX_DEFAULT) -> None:
        self._engine = engine
        self._batch_max = batch_max
        self._send, self._receive = anyio.create_memory_object_stream[Pending](math.inf)
        self._transactions = 0
        self._operations = 0
        self.progress_rows = 0

    def submit(self, op: Op) -> Pending:
        """Queue a write now; await the returned object for its result."""
        pending = Pending(op)
        self._send.send_nowait(pending)
        return pending

    async def write(self, op: Op) -> Any:
        return await self.submit(op).wait()

    def close(self) -> None:
        """No more writes: ``run`` returns after committing what is queued."""
        self._send.close()

    def statistics(self) -> WriterStatistics:
        return WriterStatistics(
            transactions=self._transactions,
            operations=self._operations,
            progress_rows=self.progress_rows,
            queued=self._receive.statistics().current_buffer_used,
        )

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        conn = await threads.run_sync(writer_connection, self._engine)
        try:
            task_status.started()
            async with self._receive:
                async for first in self._receive:
                    batch = [first, *self._more()]
                    # Shielded: a batch once started always commits and answers.
                    with anyio.CancelScope(shield=True):
                        outcomes = await threads.run_sync(self._commit, conn, batch)
                    for pending, (result, error) in zip(batch, outcomes, strict=True):
                        pending._settle(result, error)
        finally:
            with anyio.CancelScope(shield=True):
                await threads.run_sync(conn.close)

    def _more(self) -> list[Pending]:
        more: list[Pending] = []
        while len(more) < self._batch_max - 1:
            try:
                more.append(self._receive.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream):
                break
        return more

    def _commit(
        self, conn: Connection, batch: list[Pending]
    ) -> list[tuple[Any, BaseException | None]]:
        try:
            with conn.begin():
                results: list[tuple[Any, BaseException | None]] = [
                    (p.op.apply(conn), None) for p in batch
                ]
        except Exception:
            # One bad write must not fail its neighbours: retry each on its own.
            return [self._alone(conn, p) for p in batch]
        self._count(1, len(batch))
        return results

    def _alone(self, conn: Connection, pending: Pending) -> tuple[Any, BaseException | None]:
        try:
            with conn.begin():
                result = pending.op.apply(conn)
        except Exception as exc:
            return None, exc
        self._count(1, 1)
        return result, None

    def _count(self, transactions: int, operations: int) -> None:
        self._transactions += transactions
        self._operations += operations
