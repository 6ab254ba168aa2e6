"""The store writer: one actor owns every write and commits them in groups.

Writes arrive in a queue. The writer takes all that are queued and applies
them in one transaction (group commit).
Nothing waits on a timer: under load the batch grows by itself while the
previous commit runs, and before each commit the writer lets the tasks that
are already runnable add their writes (one pass of the event loop). Each
caller is answered once its write is durable.

Where the transaction runs: a small batch of hot writes (enqueues, claims,
outcomes, logs: each op says how many rows it touches) commits inline on the
event-loop thread, because on SQLite in WAL mode with ``synchronous=NORMAL``
a commit costs less than a worker-thread hop. Everything else (big inserts,
periodic sweeps whose size is unknown) runs on a worker thread so the loop
is never blocked for long. Inline, the connection never waits in SQLite's
busy handler: it begins with a zero busy timeout, and if another process
holds the write lock the batch moves to a thread that waits as usual.

Storage faults (a full disk, an I/O error, a lost connection; see
``faults``) roll the transaction back and fail the batch's writes with
:class:`StorageUnavailable`, except the writes nobody could redo (an op
with ``keep_on_fault``, a job's outcome): those are kept and tried again,
with backoff, until the database takes writes again or the writer closes.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from actors import LoopEvent, checkpoints, event_factory
from runtime.store import fast, notifier, threads
from runtime.store.engine import SQLITE_BUSY_TIMEOUT_MS_DEFAULT, writer_connection
from runtime.store.faults import describe, is_storage_fault, rollback, unavailable
from runtime.store.pending import Notices, Op, Pending, WriterStatistics
from runtime.store.writer_lead import CallerCommits

log = logging.getLogger("callboard.store")

WRITER_BATCH_MAX_DEFAULT = 512
INLINE_WEIGHT_MAX_DEFAULT = 1000
"""Rows a batch may touch and still commit on the event-loop thread."""
CHECKPOINT_EVERY_DEFAULT = 50
"""Transactions between two WAL checkpoints on a worker thread (SQLite)."""
CHECKPOINT_INTERVAL_MIN = 0.05
"""Seconds between two of them at least: a checkpoint (its copy and its fsync)
costs a lone enqueue's worth of CPU or more, and thousands of lone enqueues
commit in a second; the WAL holds at most this long's commits beyond it."""
WAL_AUTOCHECKPOINT_PAGES_DEFAULT = 20_000
"""The writer's own checkpoint, inline, only if the WAL grows this many pages anyway."""
FAULT_RETRY_MIN_DEFAULT = 0.1
FAULT_RETRY_MAX_DEFAULT = 5.0
"""Seconds between two tries of the writes kept through a storage fault (doubling)."""
FAULT_LOG_EVERY_DEFAULT = 60.0
"""Seconds between two storage faults the log tells of (the others are counted)."""


class _Busy(Exception):
    """Another connection holds the write lock (inline only: we do not wait for it)."""


class StoreWriter(CallerCommits):
    def __init__(
        self,
        engine: Engine,
        *,
        batch_max: int = WRITER_BATCH_MAX_DEFAULT,
        inline_weight_max: int = INLINE_WEIGHT_MAX_DEFAULT,
    ) -> None:
        self._engine = engine
        self._batch_max = batch_max
        # Inline commits are for SQLite, where a commit is cheaper than a thread hop.
        self._inline_max = inline_weight_max if engine.dialect.name == "sqlite" else -1
        self._inline = False  # whether the connection is set up for the loop thread now
        self._checkpointing = False
        self._checkpointed = 0  # transactions counted at the last checkpoint
        self._checkpointed_at = -math.inf  # when it began (time.monotonic)
        self._queue: deque[Pending] = deque()
        self._closed = False
        self._event: Callable[[], LoopEvent] = anyio.Event  # the running loop's own, once run
        self._ready: LoopEvent | None = None  # while the writer waits for writes
        self._leading = False  # a caller's task commits the queue (``submit(lead=True)``)
        self._led = 0
        self._alone_writes = 0  # writes committed at once by ``write_alone``
        self._alone_passing = 0  # callers of ``write_alone`` in their pass after the commit
        self._alone_passed_at = -math.inf  # when the last of those passes ended (monotonic)
        self._last_batch = 0  # writes in the last batch committed
        self._lead_done: LoopEvent | None = None  # set as a caller's lead ends, if awaited
        self._conn: Connection | None = None
        self._tg: TaskGroup | None = None
        self._checkpoints: tuple[Callable[[], Any], Callable[[], Any]] | None = None
        self._transactions = 0
        self._operations = 0
        self.progress_rows = 0
        self.channel: str | None = None  # PostgreSQL: where notices go (see notifier)
        self._faults = 0
        self._fault_since: float | None = None  # when the current storage fault began
        self._fault_told = False  # whether the log heard of the current one
        self._fault_logged_at = -math.inf
        self._held: list[Pending] = []  # kept through the fault, tried again later
        self._retry_in = FAULT_RETRY_MIN_DEFAULT
        self._retry_at: float | None = None  # when the kept writes are tried next

    def submit(self, op: Op, notices: Notices | None = None, *, lead: bool = False) -> Pending:
        """Queue a write now; await the returned object for its result.

        ``notices(result)``: what to tell the runtimes listening on the store's
        channel, sent in the write's transaction (so only if it commits).

        ``lead``: the caller awaits the result at once (it must). If the writer
        is idle, that await commits the write in the caller's own task instead
        of a round trip through the writer's: one pass of the event loop first,
        repeated while other writes keep joining, so writes submitted meanwhile
        share the commit as they would the writer's (group commit). SQLite only,
        for writes that may commit on the event loop (``inline_weight``).
        """
        if self._closed:
            raise anyio.ClosedResourceError("the store writer is closed")
        pending = Pending(op, self._event, notices)
        self._queue.append(pending)
        if lead and self._may_lead(op, queued=1):
            self._leading = True
            pending._leader = self
        else:
            self._wake()
        return pending

    async def write(self, op: Op, notices: Notices | None = None) -> Any:
        return await self.submit(op, notices).wait()

    def close(self) -> None:
        """No more writes: ``run`` returns after committing what is queued."""
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        """Wake the writer if it waits for writes (not while a caller leads: it
        wakes the writer when it is done)."""
        if self._ready is not None and not self._leading:
            self._ready.set()
            self._ready = None

    def statistics(self) -> WriterStatistics:
        return WriterStatistics(
            transactions=self._transactions,
            operations=self._operations,
            progress_rows=self.progress_rows,
            queued=len(self._queue),
            faults=self._faults,
            held=len(self._held),
            led=self._led,
            alone=self._alone_writes,
        )

    @property
    def storage_fault(self) -> bool:
        """Whether the last write failed on a storage fault (and none succeeded since)."""
        return self._fault_since is not None

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self._event = event_factory()
        conn = await threads.run_sync(writer_connection, self._engine)
        try:
            if self._inline_max >= 0:
                # Checkpoints (and their fsync) run on a worker thread, below; this
                # connection checkpoints itself only if those fall far behind.
                fast.dbapi(conn).execute(
                    f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES_DEFAULT}"
                )
            async with anyio.create_task_group() as tg:
                self._conn, self._tg = conn, tg
                self._checkpoints = checkpoints()
                task_status.started()
                await self._serve(conn, tg)
        finally:
            with anyio.CancelScope(shield=True):
                if self._leading:  # a caller's commit on this connection ends first
                    self._lead_done = done = self._event()
                    await done.wait()
                self._conn = None
                await threads.run_sync(conn.close)

    async def _serve(self, conn: Connection, tg: TaskGroup) -> None:
        queue = self._queue
        if_cancelled, one_pass = checkpoints()
        while True:
            if not queue:
                if self._held and self._closed:
                    queue.extend(self._take_held())  # one last try; then they fail
                    continue
                if self._closed:
                    return
                self._ready = ready = self._event()
                if self._held:
                    # Tried again on their own clock, not with every new write.
                    if self._retry_at is None:
                        self._retry_at = anyio.current_time() + self._retry_in
                    with anyio.move_on_at(self._retry_at):
                        await ready.wait()
                    if anyio.current_time() >= self._retry_at:
                        self._retry_at = None
                        self._retry_in = min(2 * self._retry_in, FAULT_RETRY_MAX_DEFAULT)
                        queue.extendleft(reversed(self._take_held()))
                    continue
                await ready.wait()
                continue
            await if_cancelled()
            # One pass of the loop first: tasks already runnable (jobs that
            # finished in the same tick, a claim about to be asked) add their
            # writes to this commit instead of each starting the next one.
            await one_pass()
            if self._leading:  # a caller took the queue meanwhile; it wakes us after
                continue
            await self._commit_queued(conn, tg)

    async def _commit_queued(self, conn: Connection, tg: TaskGroup) -> None:
        """Commit a batch of the queued writes and answer them."""
        batch = self._light_first(self._take())
        self._last_batch = len(batch)
        light = self._inline_prefix(batch)
        done = self._commit_inline(conn, batch[:light]) if light else []
        self._settle(batch, done)
        if len(done) < len(batch):
            rest = batch[len(done) :]
            # Shielded: a batch once started always commits and answers.
            with anyio.CancelScope(shield=True):
                outcomes = await threads.run_sync(self._commit_in_thread, conn, rest)
            self._settle(rest, outcomes)
        self._maybe_checkpoint(tg)

    def _take_held(self) -> list[Pending]:
        held, self._held = self._held, []
        return held

    def _maybe_checkpoint(self, tg: TaskGroup) -> None:
        due = self._transactions - self._checkpointed >= CHECKPOINT_EVERY_DEFAULT
        if due and not self._checkpointing and self._inline_max >= 0:
            now = time.monotonic()
            if now - self._checkpointed_at < CHECKPOINT_INTERVAL_MIN:
                return
            self._checkpointing = True
            self._checkpointed = self._transactions
            self._checkpointed_at = now
            tg.start_soon(self._checkpoint)

    async def _checkpoint(self) -> None:
        """Copy the WAL into the database on a worker thread, beside the writer.

        PASSIVE: it never blocks the writer or readers, and it changes nothing
        about durability (a commit is durable once it is in the WAL). One that
        fails (a full disk) is logged and tried again after the next
        ``CHECKPOINT_EVERY_DEFAULT`` transactions.
        """
        try:
            with anyio.CancelScope(shield=True):
                await threads.run_sync(_checkpoint, self._engine)
        except Exception as err:
            log.warning("WAL checkpoint failed, will try again later: %s", describe(err))
        finally:
            self._checkpointing = False

    def _take(self) -> list[Pending]:
        """The queued writes, at most ``batch_max`` of them, oldest first."""
        queue = self._queue
        if len(queue) <= self._batch_max:
            batch = list(queue)
            queue.clear()
            return batch
        return [queue.popleft() for _ in range(self._batch_max)]

    def _settle(
        self, batch: list[Pending], outcomes: list[tuple[Any, BaseException | None]]
    ) -> None:
        faulted = False
        for pending, (result, error) in zip(batch, outcomes, strict=False):
            if error is not None and is_storage_fault(error):
                faulted = True
                if not self._closed and getattr(pending.op, "keep_on_fault", False):
                    self._held.append(pending)
                    continue
                error = unavailable(error)
            pending._settle(result, error)
        if faulted:
            self._faulted(outcomes)
        elif outcomes and self._fault_since is not None:
            self._recovered()

    def _faulted(self, outcomes: list[tuple[Any, BaseException | None]]) -> None:
        self._faults += 1
        if self._fault_since is not None:
            return
        self._fault_since = now = self._now()
        # A nearly full disk takes some writes and not others: say it once a while.
        self._fault_told = not now - self._fault_logged_at < FAULT_LOG_EVERY_DEFAULT
        if self._fault_told:
            self._fault_logged_at = now
            error = next(e for _, e in outcomes if e is not None and is_storage_fault(e))
            log.error(
                "storage fault: %s; writes fail with StorageUnavailable (job outcomes are "
                "kept and tried again) until the database takes writes again",
                describe(error),
            )

    def _recovered(self) -> None:
        assert self._fault_since is not None
        if self._fault_told:
            log.warning(
                "the database takes writes again after %.1f s; trying %d kept writes",
                self._now() - self._fault_since,
                len(self._held),
            )
        self._fault_since = None
        self._retry_in = FAULT_RETRY_MIN_DEFAULT
        self._retry_at = None
        self._queue.extendleft(reversed(self._take_held()))

    @staticmethod
    def _now() -> float:
        try:
            return anyio.current_time()
        except Exception:  # outside the loop (a batch run by hand in a test)
            return math.nan

    @staticmethod
    def _light_first(batch: list[Pending]) -> list[Pending]:
        """Small writes before heavy ones (a sweep batch, a bulk insert): a claim or
        a completion queued beside a heavy write must not wait for it. The writes
        of one batch come from different callers, so their order is free."""
        light = [p for p in batch if getattr(p.op, "inline_weight", None) is not None]
        if len(light) in (0, len(batch)):
            return batch
        return light + [p for p in batch if getattr(p.op, "inline_weight", None) is None]

    def _inline_prefix(self, batch: list[Pending]) -> int:
        """How many writes from the front of ``batch`` commit on the loop thread."""
        weight = 0
        for count, pending in enumerate(batch):
            rows = getattr(pending.op, "inline_weight", None)
            if rows is None or weight + rows > self._inline_max:
                return count
            weight += rows
        return len(batch)

    def _commit_inline(
        self, conn: Connection, batch: list[Pending]
    ) -> list[tuple[Any, BaseException | None]]:
        """Commit on the loop thread; returns the outcomes of the prefix it got to
        (all of it unless another process held the write lock)."""
        if not self._inline:
            self._busy_timeout(conn, 0)
            self._inline = True
        return self._commit(conn, batch)

    def _commit_in_thread(
        self, conn: Connection, batch: list[Pending]
    ) -> list[tuple[Any, BaseException | None]]:
        if self._inline:
            self._busy_timeout(conn, SQLITE_BUSY_TIMEOUT_MS_DEFAULT)
            self._inline = False
        return self._commit(conn, batch)

    @staticmethod
    def _busy_timeout(conn: Connection, ms: int) -> None:
        # On the DBAPI connection: through ``conn`` it would begin a transaction.
        fast.dbapi(conn).execute(f"PRAGMA busy_timeout={ms}")

    @staticmethod
    @contextmanager
    def _autocommit(conn: Connection, on: bool) -> Iterator[None]:
        """PostgreSQL: run a lone single-statement write in autocommit mode, one
        round trip instead of three (``BEGIN``, the statement, ``COMMIT``). A single
        statement is atomic on its own; SQLAlchemy's begin and commit around it
        then send nothing."""
        if not on:
            yield
            return
        raw = fast.dbapi(conn)
        raw.autocommit = True
        try:
            yield
        finally:
            raw.autocommit = False

    @contextmanager
    def _pipelined(self, conn: Connection, single: bool, batch: list[Pending]) -> Iterator[None]:
        """PostgreSQL: a lone single-statement write with notices sends its
        statement and its ``pg_notify`` in one pipeline: one round trip, one
        implicit transaction (autocommit; ``_autocommit``), so the notices are
        delivered as the write commits, and neither without the other."""
        if not (single and self.channel is not None and batch[0].notices is not None):
            yield
            return
        with fast.dbapi(conn).pipeline():
            yield

    @contextmanager
    def _transaction(self, conn: Connection, single: bool = False) -> Iterator[None]:
        """One transaction. On SQLite it is begun and ended on the DBAPI connection
        (SQLAlchemy's bookkeeping costs more than the commit); a Core statement
        inside joins it (see ``engine._tune_sqlite``). ``single``: the transaction
        is one write that runs a single statement (see ``Op``)."""
        if self._inline_max < 0:
            with self._autocommit(conn, single), conn.begin():
                yield
            return
        raw = fast.dbapi(conn)
        if single:
            with self._sqlite_autocommit(conn):
                yield
            return
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as err:
            if self._inline and _is_busy(err):
                raise _Busy from err
            raise
        try:
            yield
            # A failed COMMIT (a full disk) leaves the transaction open: it is
            # rolled back like any other failure, or every later write fails.
            if conn.in_transaction():
                conn.commit()
            else:
                raw.commit()
        except BaseException:
            rollback(conn)
            raise

    @contextmanager
    def _sqlite_autocommit(self, conn: Connection) -> Iterator[None]:
        """SQLite: a lone single-statement write runs in SQLite's own autocommit
        transaction (no ``BEGIN`` and ``COMMIT`` of ours around it)."""
        try:
            yield
            if conn.in_transaction():  # a Core statement began one (see engine._tune_sqlite)
                conn.commit()
        except sqlite3.OperationalError as err:
            rollback(conn)
            if self._inline and _is_busy(err):
                raise _Busy from err
            raise
        except BaseException:
            rollback(conn)
            raise

    def _commit(
        self, conn: Connection, batch: list[Pending]
    ) -> list[tuple[Any, BaseException | None]]:
        single = len(batch) == 1 and getattr(batch[0].op, "single_statement", False)
        try:
            with self._transaction(conn, single), self._pipelined(conn, single, batch):
                results = _apply_all(conn, batch)
                self._notify(conn, batch, results)
        except _Busy:
            return []
        except Exception as err:
            if is_storage_fault(err):  # not the writes' fault: each alone would fail too
                self._reconnect(conn)
                return [(None, err)] * len(batch)
            # One bad write must not fail its neighbours: retry each on its own.
            outcomes = []
            for pending in batch:
                try:
                    outcomes.append(self._alone(conn, pending))
                except _Busy:
                    break
            return outcomes
        self._count(1, len(batch))
        return results

    def _alone(self, conn: Connection, pending: Pending) -> tuple[Any, BaseException | None]:
        try:
            with self._transaction(conn):
                result = pending.op.apply(conn)
                self._notify(conn, [pending], [(result, None)])
        except _Busy:
            raise
        except Exception as exc:
            if is_storage_fault(exc):
                self._reconnect(conn)
            return None, exc
        self._count(1, 1)
        return result, None

    def _notify(
        self,
        conn: Connection,
        batch: list[Pending],
        results: list[tuple[Any, BaseException | None]],
    ) -> None:
        """Send the batch's notices in its transaction, last, in one pipeline
        with its ``COMMIT``. A lone single-statement write runs in autocommit,
        with its notices in the pipeline of its statement (``_pipelined``):
        they commit together."""
        if self.channel is None:
            return
        payloads: list[str] = []
        for pending, (result, error) in zip(batch, results, strict=True):
            if pending.notices is not None and error is None:
                payloads.extend(pending.notices(result))
        if not payloads:
            return
        raw = fast.dbapi(conn)
        if raw.autocommit or raw.pgconn.pipeline_status:
            notifier.send(conn, self.channel, payloads)
            return
        # The notices and the COMMIT in one pipeline: one round trip, not two.
        # The transaction's own commit after this finds nothing left to do.
        with raw.pipeline():
            notifier.send(conn, self.channel, payloads)
            raw.commit()

    def _reconnect(self, conn: Connection) -> None:
        """PostgreSQL: after a fault, the next batch takes a fresh connection
        (this one may be closed under us). SQLite's stays: it was rolled back."""
        if self._inline_max < 0:
            rollback(conn)
            try:
                conn.invalidate()
            except Exception as err:  # already closed: the next use reconnects anyway
                log.debug("invalidating the writer's connection failed: %s", describe(err))

    def _count(self, transactions: int, operations: int) -> None:
        self._transactions += transactions
        self._operations += operations


def _apply_all(conn: Connection, batch: list[Pending]) -> list[tuple[Any, BaseException | None]]:
    """Apply ``batch`` in order. A run of neighbouring ops of one class that has
    ``apply_many(conn, ops)`` (finishes, say) is applied in one call, which may
    share statements between them; their order is kept."""
    results: list[tuple[Any, BaseException | None]] = []
    index = 0
    while index < len(batch):
        op = batch[index].op
        apply_many = getattr(type(op), "apply_many", None)
        end = index + 1
        if apply_many is not None:
            while end < len(batch) and type(batch[end].op) is type(op):
                end += 1
        if apply_many is not None and end - index > 1:
            answers = apply_many(conn, [p.op for p in batch[index:end]])
            results.extend((answer, None) for answer in answers)
        else:
            results.append((op.apply(conn), None))
        index = end
    return results


def _is_busy(err: Exception) -> bool:
    text = str(err).lower()
    return "locked" in text or "busy" in text


def _checkpoint(engine: Engine) -> None:
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")  # type: ignore[union-attr]
    finally:
        raw.close()
