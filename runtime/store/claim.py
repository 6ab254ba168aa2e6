"""The claim: pick the best due jobs of a queue that may start now.

In one transaction it skips a paused queue, jobs whose resource lock is
held, and job types at their concurrency or rate limit; takes at most one
job per lock key; marks the picks running; and parks the other waiting jobs
on the picked keys as ``locked``.

A lock key is the tenant's own: jobs of different tenants (a job without
one is of the tenant ``""``) never hold, wait on or name each other's keys.

On PostgreSQL several runtimes claim at once, each in its own READ COMMITTED
transaction, and none may wait for another in a cycle (see ``_Room`` and
``Claim._lock_keys``): a claim's reads lock candidate rows with ``SKIP
LOCKED`` (never waiting), a limited type's count and a lock key's pick are
guarded by transaction-level advisory locks, taken only for the limited types
and keys among the claim's candidates, and parking skips rows another claim
holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache, partial
from typing import Any

from sqlalchemy import (
    Integer,
    String,
    any_,
    bindparam,
    delete,
    func,
    insert,
    literal_column,
    select,
    text,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from runtime.domain.limits import RateLimit
from runtime.domain.status import JobStatus
from runtime.store import fast
from runtime.store.lock_keys import ACTIVE_VALUES, TENANT, tenant_is
from runtime.store.tables import ACTIVE_SQL, HOLDING_SQL, jobs, queue_states, type_starts

Row = dict[str, Any]
CLAIM_LOOKAHEAD_DEFAULT = 3  # candidates read per slot, for picks lost to locks and limits
CONTENDED_RETRY_DEFAULT = 0.05
"""Seconds after which a claim that met a type or key another claim was taking
looks again (that claim's commit wakes the queue too; this covers a claim that
then found nothing to take)."""
LIMIT_LOCK_PREFIX = "callboard:type-limit:"
KEY_LOCK_CLASS = 727276
"""The first half of a lock key's advisory lock (the leader's class is 727275)."""


@dataclass(frozen=True, slots=True)
class TypeLimit:
    max_concurrency: int | None = None
    rate: RateLimit | None = None


@dataclass(slots=True)
class ClaimResult:
    rows: list[Row]
    retry_at: float | None = None  # when a rate-limited type may start again
    parked: list[Row] = field(default_factory=list)  # waiting jobs now locked behind a pick


@dataclass(slots=True)
class Claim:
    queue: str
    limit: int
    worker: str
    now: float
    limits: Mapping[str, TypeLimit] = field(default_factory=dict)

    @property
    def inline_weight(self) -> int:
        return self.limit

    def apply(self, conn: Connection) -> ClaimResult:
        postgres = conn.dialect.name == "postgresql"
        room = _Room(self, conn, postgres)
        picks, short = self._pick(conn, room)
        if postgres and picks:
            picks = self._lock_keys(conn, picks, room)
        if short:  # PostgreSQL: start these and read on, in one pipeline
            rows, picks = self._start_reading_on(conn, picks, room)
        retry_at = self._rate_retry(room.windows, picks)
        if room.contended:  # another claim was taking a type or key we met: look again soon
            soon = self.now + CONTENDED_RETRY_DEFAULT
            retry_at = soon if retry_at is None else min(retry_at, soon)
        if not picks:
            return ClaimResult([], retry_at)
        if not short:
            rows = self._start(conn, [p["id"] for p in picks], postgres)
        if room.windows:
            self._record_starts(conn, rows)
        return ClaimResult(rows, retry_at, self._park_on_locks(conn, rows, postgres))

    def _lock_keys(self, conn: Connection, picks: list[Row], room: _Room) -> list[Row]:
        """PostgreSQL: hold the advisory lock of each picked lock key until the
        transaction ends, or drop the pick if another claim holds it (it is
        taking that key now; ``contended``). Never waits, so it cannot deadlock.

        Another claim's pick of a key commits before that claim lets its key
        lock go, so once this claim holds the lock, a statement that starts
        afterwards sees every committed holder: ``_start`` checks that none
        holds the key (this claim's read of candidates may predate the commit)."""
        keyed = [p for p in picks if p["lock_key"] is not None]
        if not keyed:
            return picks
        names = [f"{p['tenant']}\x1f{p['lock_key']}" for p in keyed]
        got = fast.dbapi(conn).execute(_TRY_KEY_LOCKS_SQL, (KEY_LOCK_CLASS, names)).fetchall()
        refused = {name for name, ok in got if not ok}
        if not refused:
            return picks
        room.contended = True
        lost = {id(p) for p, name in zip(keyed, names, strict=True) if name in refused}
        for p in keyed:
            if id(p) in lost:
                room.give_back(p["type"])
        return [p for p in picks if id(p) not in lost]

    def _rate_retry(self, windows: dict[str, tuple[int, float]], picks: list[Row]) -> float | None:
        """When the earliest rate-limited type that is now full may start again."""
        retry_at: float | None = None
        for name, (started, oldest) in windows.items():
            rate = self.limits[name].rate
            assert rate is not None
            if started + sum(1 for p in picks if p["type"] == name) >= rate.count:
                due = oldest + rate.period
                retry_at = due if retry_at is None else min(retry_at, due)
        return retry_at

    def _pick(self, conn: Connection, room: _Room) -> tuple[list[Row], bool]:
        """The picks of the first window of candidates, and on PostgreSQL whether
        that window was full and left them short of ``limit`` (the caller reads
        on: :meth:`_start_reading_on`)."""
        window = self._window
        values: Row = {"q": self.queue, "n": window}
        postgres = room.postgres
        picks: list[Row] = []
        # Read lazily: candidates past the last pick are never fetched (on
        # SQLite, never even looked up). Ids stay as stored, not UUID objects.
        build = partial(_candidates, not postgres, postgres)
        cursor = fast.prepared(conn, "pick", build).execute(conn, values)
        try:
            read = self._first_free(cursor, room, picks)
        finally:
            cursor.close()
        if postgres:
            return picks, read == window and len(picks) < self.limit
        # A full window that locks and limits left short of picks may hide due jobs
        # further down: read on past them. Every candidate a window skipped was
        # skipped for one of its own picks (a type it filled, a key it took), so
        # the next window, which leaves out the picks, the full types and the
        # taken keys, holds only candidates not seen yet (on PostgreSQL, rows this
        # transaction locked are not skipped). The common case, a window that
        # fills the picks or runs out, never gets here.
        while read == window and len(picks) < self.limit:
            query = _candidates(not postgres, postgres).where(
                *_unseen(picks, room.free, raw_ids=not postgres)
            )
            read = self._first_free(conn.execute(query, values), room, picks)
        return picks, False

    @property
    def _window(self) -> int:
        return self.limit * CLAIM_LOOKAHEAD_DEFAULT + 10

    def _start_reading_on(
        self, conn: Connection, picks: list[Row], room: _Room
    ) -> tuple[list[Row], list[Row]]:
        """PostgreSQL, after a full window of candidates that locks and limits left
        short of picks: start the picks and read the next window in one pipeline
        (one round trip; in the common case, a queue of one full type, the
        window comes back empty), and go on while windows come back full. The
        next window needs no list of what was seen: it runs after the start in
        the same transaction, so the picks are running and their keys held
        (which the candidates leave out); it leaves out the types now full.
        Returns the started rows and every pick."""
        raw = fast.dbapi(conn)
        window = self._window
        values: Row = {"q": self.queue, "n": window, "worker": self.worker, "now": self.now}
        rows: list[Row] = []
        taken: list[Row] = []
        batch = picks
        while True:
            full = [name for name, free in room.free.items() if free <= 0]
            reading = fast.prepared(conn, "pick_on", _candidates_on)
            with raw.pipeline():
                started = self._start_cursor(conn, batch) if batch else None
                cursor = reading.execute(conn, {**values, "full": full})
            if started is not None:
                rows.extend(started[0].rows(started[1]))
                taken.extend(batch)
            batch = []
            # Keys of earlier picks are held now: the window has none of them.
            read = self._first_free(cursor, room, batch, self.limit - len(taken))
            if batch:
                batch = self._lock_keys(conn, batch, room)
            if read < window or len(taken) + len(batch) >= self.limit:
                break
        if batch:
            rows.extend(self._start(conn, [p["id"] for p in batch], True))
            taken.extend(batch)
        rows.sort(key=_start_order)
        return rows, taken

    def _first_free(
        self,
        candidates: Iterable[Sequence[Any]],
        room: _Room,
        picks: list[Row],
        limit: int | None = None,
    ) -> int:
        """Add to ``picks`` the best candidates (id, type, lock key, tenant) that
        neither share a tenant's lock key nor exceed their type's room, up to
        ``limit`` picks (default: the claim's); return how many candidates
        were read."""
        limit = self.limit if limit is None else limit
        if limit <= 0:
            return 0
        keys = {(p["tenant"], p["lock_key"]) for p in picks if p["lock_key"] is not None}
        read = 0
        for job_id, job_type, key, tenant in candidates:
            read += 1
            if key is not None and (tenant, key) in keys:
                continue
            if not room.take(job_type):
                continue
            if key is not None:
                keys.add((tenant, key))
            picks.append({"id": job_id, "type": job_type, "lock_key": key, "tenant": tenant})
            if len(picks) == limit:
                break
        return read

    def _start(self, conn: Connection, ids: list[Any], postgres: bool) -> list[Row]:
        stmt, values = self._start_statement(conn, ids, postgres)
        rows = stmt.all(conn, values)
        rows.sort(key=_start_order)
        return rows

    def _start_cursor(self, conn: Connection, picks: list[Row]) -> tuple[fast.Prepared, Any]:
        """PostgreSQL: send the start of ``picks`` (:meth:`_start`); its statement
        and the cursor to read its rows from once the pipeline is through."""
        stmt, values = self._start_statement(conn, [p["id"] for p in picks], True)
        return stmt, stmt.execute(conn, values)

    def _start_statement(
        self, conn: Connection, ids: list[Any], postgres: bool
    ) -> tuple[fast.Prepared, Row]:
        if postgres:
            # One array of ids: one statement for claims of every size, which the
            # server plans once (IN lists of each size were each compiled here and
            # parsed and planned there, a few milliseconds a size on a claim's path).
            # Only jobs whose key is free as the statement starts (see _lock_keys).
            values: Row = {"ids": ids, "now": self.now, "worker": self.worker}
            return fast.prepared(conn, ("start", "any"), _start_update_any), values
        # Padded to a power of two with repeats (harmless in IN), so claims of any
        # size share a few statement shapes instead of compiling one per size.
        count = 1 << (len(ids) - 1).bit_length()
        values = {f"id{i}": ids[min(i, len(ids) - 1)] for i in range(count)}
        values.update(now=self.now, worker=self.worker)
        build = partial(_start_update, count, True, False)  # ids as SQLite returned them
        return fast.prepared(conn, ("start", count), build), values

    def _record_starts(self, conn: Connection, rows: list[Row]) -> None:
        """Store the starts of rate-limited types, which the rate limit counts, and
        drop those types' starts that have left their window (so the table holds
        about one window of starts per type). Other types write nothing here."""
        rated = {
            name: limit.rate.period for name, limit in self.limits.items() if limit.rate is not None
        }
        started = [{"type": r["type"], "started_at": self.now} for r in rows if r["type"] in rated]
        if not started:
            return
        types = {s["type"] for s in started}
        stale = [{"t": name, "before": self.now - rated[name]} for name in sorted(types)]
        conn.execute(
            delete(type_starts).where(
                type_starts.c.type == bindparam("t"),
                type_starts.c.started_at <= bindparam("before"),
            ),
            stale,
        )
        conn.execute(insert(type_starts), started)

    def _park_on_locks(self, conn: Connection, rows: list[Row], postgres: bool) -> list[Row]:
        """Lock the waiting jobs that share a pick's key behind it; return them.

        A status change like any: it bumps their revision, and the claimer
        announces them. A claim of jobs without lock keys does nothing here.

        On PostgreSQL it leaves alone the rows another claim has locked among
        its candidates (waiting for them could deadlock: that claim may be
        parking rows of ours). They stay waiting: no claim starts them while
        the key is held (the candidates leave out held keys), and the end of
        the job holding it wakes its queue."""
        parked: list[Row] = []
        for r in rows:
            if r["lock_key"] is None:
                continue
            waiting = [
                jobs.c.lock_key == r["lock_key"],
                tenant_is(r["tenant_id"]),
                jobs.c.status == "waiting",
            ]
            if postgres:
                free = select(jobs.c.id).where(*waiting).with_for_update(skip_locked=True)
                waiting = [jobs.c.id.in_(free.scalar_subquery())]
            # One statement per held key (RETURNING does not go with executemany).
            parked.extend(
                dict(found._mapping)
                for found in conn.execute(
                    update(jobs)
                    .where(*waiting)
                    .values(
                        status="locked",
                        locked_by=str(r["id"]),
                        updated_at=self.now,
                        revision=jobs.c.revision + 1,
                    )
                    .returning(*jobs.columns)
                )
            )
        return parked


_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext(%s))"
_TRY_LOCK_SQL = "SELECT pg_try_advisory_xact_lock(hashtext(%s))"
_ACTIVE_OF_TYPE_SQL = f"SELECT count(*) FROM {jobs.name} WHERE type = %s AND status IN {ACTIVE_SQL}"
_STARTS_OF_TYPE_SQL = (
    f"SELECT count(*), min(started_at) FROM {type_starts.name} WHERE type = %s AND started_at > %s"
)
_TRY_KEY_LOCKS_SQL = (
    "SELECT name, pg_try_advisory_xact_lock(%s, hashtext(name)) FROM unnest(%s::text[]) AS name"
)


@dataclass(slots=True)
class _Room:
    """How many more jobs each limited type among a claim's candidates may start,
    measured when the claim first meets a job of that type: a claim of jobs of
    unlimited types reads no count and takes no lock, whatever else is
    registered.

    On PostgreSQL, under READ COMMITTED, a claim's counts of active jobs and
    recent starts do not see another runtime's claim that has not committed
    yet, so two claims could each start the last free job of a type. A
    transaction-level advisory lock per type, taken before counting, makes the
    second count wait for the first claim's commit. Types are met in the
    candidates' order, not by name: a claim waits for a type's lock only if its
    name sorts after every type it holds, so waits between claims for type
    locks never form a cycle; for an earlier name it only tries, and a type it
    cannot lock counts as full for this claim (``contended``). Nothing else in
    a claim waits for another claim (its reads skip locked rows, its key locks
    and its parking only try), so a claim holding a type's lock always ends.
    """

    claim: Claim
    conn: Connection
    postgres: bool
    free: dict[str, int] = field(default_factory=dict)
    windows: dict[str, tuple[int, float]] = field(default_factory=dict)
    last_locked: str | None = None
    contended: bool = False

    def take(self, job_type: str) -> bool:
        """Whether one more job of ``job_type`` may start now (counting it if so)."""
        limit = self.claim.limits.get(job_type)
        if limit is None:
            return True
        free = self.free.get(job_type)
        if free is None:
            free = self._measure(job_type, limit)
        if free <= 0:
            self.free[job_type] = 0
            return False
        self.free[job_type] = free - 1
        return True

    def give_back(self, job_type: str) -> None:
        """A pick of ``job_type`` taken back: its room is free again."""
        if job_type in self.free:
            self.free[job_type] += 1

    def _measure(self, name: str, limit: TypeLimit) -> int:
        conn = self.conn
        if self.postgres:
            return self._measure_locked(name, limit)
        free = self.claim.limit
        if limit.max_concurrency is not None:
            active = conn.execute(
                select(func.count())
                .select_from(jobs)
                .where(jobs.c.type == name, jobs.c.status.in_(ACTIVE_VALUES))
            ).scalar_one()
            free = min(free, limit.max_concurrency - active)
        if limit.rate is not None:
            since = self.claim.now - limit.rate.period
            # Every start counts, a retried job's earlier ones too: its own
            # started_at keeps only the latest (see Claim._record_starts).
            started, oldest = conn.execute(
                select(func.count(), func.min(type_starts.c.started_at)).where(
                    type_starts.c.type == name, type_starts.c.started_at > since
                )
            ).one()
            free = min(free, limit.rate.count - started)
            self.windows[name] = (started, self.claim.now if oldest is None else oldest)
        return max(0, free)

    def _measure_locked(self, name: str, limit: TypeLimit) -> int:
        """PostgreSQL: take ``name``'s advisory lock (wait for it only if its name
        sorts after every type locked already, else try it) and count, in one
        pipeline: one round trip. The server runs the counts after the lock is
        held, each statement with a snapshot of its own, so they see every claim
        committed before it; if the lock was only tried and refused, the type
        counts as full for this claim (``contended``)."""
        wait = self.last_locked is None or name > self.last_locked
        raw = fast.dbapi(self.conn)
        with raw.pipeline():
            locked = raw.execute(_LOCK_SQL if wait else _TRY_LOCK_SQL, (LIMIT_LOCK_PREFIX + name,))
            active = None
            if limit.max_concurrency is not None:
                active = raw.execute(_ACTIVE_OF_TYPE_SQL, (name,))
            starts = None
            if limit.rate is not None:
                since = self.claim.now - limit.rate.period
                starts = raw.execute(_STARTS_OF_TYPE_SQL, (name, since))
        if wait:
            self.last_locked = name
        elif not locked.fetchone()[0]:
            self.contended = True
            return 0
        free = self.claim.limit
        if active is not None:
            assert limit.max_concurrency is not None
            free = min(free, limit.max_concurrency - int(active.fetchone()[0]))
        if starts is not None:
            assert limit.rate is not None
            started, oldest = starts.fetchone()
            free = min(free, limit.rate.count - int(started))
            self.windows[name] = (int(started), self.claim.now if oldest is None else oldest)
        return max(0, free)


@cache  # Core statements are immutable; building one costs
def _candidates(raw_ids: bool = False, skip_locked: bool = False) -> Any:
    """The due jobs of a queue, best first, whose lock key is free, unless the
    queue is paused (``raw_ids``: their ids as stored, unconverted;
    ``skip_locked``: PostgreSQL's ``FOR UPDATE SKIP LOCKED``)."""
    # Spelled as the partial index ux_callboard_jobs_tenant_lock is, so SQLite reads it.
    held = select(TENANT, jobs.c.lock_key).where(text(HOLDING_SQL))
    paused = select(queue_states.c.name).where(
        queue_states.c.name == bindparam("q"), queue_states.c.paused
    )
    job_id = type_coerce(jobs.c.id, String).label("id") if raw_ids else jobs.c.id
    query = (
        select(job_id, jobs.c.type, jobs.c.lock_key, TENANT)
        .where(jobs.c.queue == bindparam("q"), text("status = 'waiting'"))  # the index's words
        .where(jobs.c.lock_key.is_(None) | tuple_(TENANT, jobs.c.lock_key).not_in(held))
        .where(~paused.exists())
        .order_by(jobs.c.priority.desc(), jobs.c.scheduled_at, jobs.c.created_at, jobs.c.id)
        .limit(bindparam("n", type_=Integer))
    )
    return query.with_for_update(skip_locked=True) if skip_locked else query


def _candidates_on() -> Any:
    """PostgreSQL: the candidates after a claim's start, leaving out the types
    in ``full`` (its picks are running by then and their keys held)."""
    full = bindparam("full", type_=postgresql.ARRAY(String))
    return _candidates(False, True).where(jobs.c.type != func.all(full))


def _start_order(row: Row) -> tuple[Any, ...]:
    # A UUID's number orders as its text does, without making the text (jobs
    # enqueued together tie on everything before it).
    return (-row["priority"], row["scheduled_at"], row["created_at"], row["id"].int)


def _unseen(picks: list[Row], room: Mapping[str, int], raw_ids: bool) -> list[Any]:
    """Conditions on candidates that leave out ``picks``, the jobs of types
    without room and those sharing a picked lock key (``raw_ids``: the picks'
    ids are as stored)."""
    job_id = type_coerce(jobs.c.id, String) if raw_ids else jobs.c.id
    conditions = [job_id.not_in([p["id"] for p in picks])] if picks else []
    full = [name for name, free in room.items() if free <= 0]
    if full:
        conditions.append(jobs.c.type.not_in(full))
    keys = sorted({(p["tenant"], p["lock_key"]) for p in picks if p["lock_key"] is not None})
    if keys:
        taken = tuple_(TENANT, jobs.c.lock_key).not_in(keys)
        conditions.append(jobs.c.lock_key.is_(None) | taken)
    return conditions


def _start_update_any() -> Any:
    """PostgreSQL: :func:`_start_update` of the jobs whose ids are the array ``ids``."""
    ids = bindparam("ids", type_=postgresql.ARRAY(jobs.c.id.type))
    return _start_update(0, key_free=True, picked=jobs.c.id == any_(ids))


@lru_cache(maxsize=128)  # Core statements are immutable; building one costs
def _start_update(
    count: int, raw_ids: bool = False, key_free: bool = False, picked: Any = None
) -> Any:
    """Mark ``count`` picked jobs (binds ``id0``...; ``raw_ids``: as stored), or
    those ``picked`` names, running for ``worker`` at ``now`` (``key_free``: only
    those whose lock key no job holds as the statement starts)."""
    now = bindparam("now", type_=jobs.c.started_at.type)
    id_type = String() if raw_ids else jobs.c.id.type
    if picked is None:
        picked = jobs.c.id.in_([bindparam(f"id{i}", type_=id_type) for i in range(count)])
    if key_free:
        holder = jobs.alias("holder")
        held = (
            select(holder.c.id)
            .where(text(f"holder.lock_key IS NOT NULL AND holder.status IN {ACTIVE_SQL}"))
            .where(
                func.coalesce(holder.c.tenant_id, literal_column("''")) == TENANT,
                holder.c.lock_key == jobs.c.lock_key,
            )
        )
        picked = picked & (jobs.c.lock_key.is_(None) | ~held.exists())
    return (
        update(jobs)
        .where(picked)
        .values(
            status=JobStatus.RUNNING.value,
            attempt=jobs.c.attempt + 1,
            started_at=now,
            updated_at=now,
            worker_id=bindparam("worker", type_=jobs.c.worker_id.type),
            locked_by=None,
            revision=jobs.c.revision + 1,
        )
        .returning(*jobs.columns)
    )
