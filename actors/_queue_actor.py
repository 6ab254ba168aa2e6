"""The queue actor: claims due jobs in batches and runs up to ``capacity``.

It sleeps until something can change its mind: a slot frees, an enqueue in
this process wakes it, or the poll interval passes (jobs written by other
processes). It never busy-polls.

Control requests for its jobs (cancel, suspend, interrupt) reach it over its
own bounded control channel, and it cancels the job's scope: one channel per
queue, not per job, whose cost per job is nothing.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import Callable, Hashable, MutableMapping

import anyio
from anyio.abc import TaskStatus

from actors import _native as native
from actors._job_actor import JobHandle, run_job
from actors._messages import Control, Ended, Outcome
from actors._protocols import JobRunner, JobSource, OutcomeSink

POLL_INTERVAL_DEFAULT = 1.0
CLAIM_BATCH_DEFAULT = 10
"""Most jobs one claim takes while the queue's jobs take much longer than a claim.

Jobs claimed together start together, and if they take about as long they
finish together: the queue then runs in waves, idle while all of them wait
and saturated while all of them are finished and replaced at once. Freed
slots refilled in small claims, one after another, break the waves up, so
the store work of some jobs overlaps the running time of others. That pays
only while a claim is quick next to a job (``CLAIM_RUN_RATIO``): jobs that
end before a few claims could follow one another cannot form waves, and for
them small claims only cost transactions and leave slots empty, so the queue
claims every free slot."""
CLAIM_RUN_RATIO = 5.0
"""Small claims while the mean run takes at least this many mean claims."""
CLAIM_AHEAD_MAX = 50
"""Most jobs a queue holds claimed ahead of its free slots (fewer if its capacity is lower).

A queue of short jobs refills a slot the moment it frees from the jobs it
claimed ahead, instead of waiting for a claim's commit: claims then overlap
the running jobs instead of standing between them. A job claimed ahead is
claimed in the store (``running``, its ``started_at`` the claim's time, on
this worker's lease) while it waits for a slot; a cancel or suspend request
reaches it at once, a shutdown or a lower capacity gives it back (``waiting``,
its attempt not counted), and a crash leaves it to the rescue of the
worker's running jobs."""
CLAIM_AHEAD_RUN_MAX = 0.05
"""Claim ahead only while the queue's mean run takes at most this many seconds:
a job claimed ahead then waits about a mean run at most, and a queue of long
jobs leaves its waiting jobs to other workers."""
CONTROL_BUFFER = 64
"""Control requests a queue's channel holds before a sender waits (they are rare)."""
_SMOOTHING = 0.1  # weight of the newest sample in a running mean


class QueueActor:
    """Producer and foreman of one queue."""

    def __init__(
        self,
        name: str,
        capacity: int,
        *,
        source: JobSource,
        runner: JobRunner,
        sink: OutcomeSink,
        handles: MutableMapping[Hashable, JobHandle],
        poll_interval: float = POLL_INTERVAL_DEFAULT,
        claim_batch: int = CLAIM_BATCH_DEFAULT,
    ) -> None:
        check_capacity(name, capacity)
        self.name = name
        self.capacity = capacity
        self._source, self._runner, self._sink = source, runner, sink
        self._handles = handles
        self._poll_interval = poll_interval if poll_interval > 0 else math.inf
        if claim_batch < 1:
            raise ValueError(f"queue {name!r}: claim_batch must be >= 1, got {claim_batch}")
        self._claim_batch = claim_batch
        self._mean_run: float | None = None  # seconds; None until a job has run
        self._mean_claim: float | None = None  # seconds a claim takes (loop's clock)
        self._running = 0
        self._ready: deque[JobHandle] = deque()  # claimed ahead, waiting for a slot
        self._tg: native.TaskGroup | None = None
        self._more = True  # the store may hold due jobs we have not claimed
        self._claiming = True
        self._wake: native.LoopEvent = anyio.Event()
        self._event: Callable[[], native.LoopEvent] = anyio.Event
        self.finished = anyio.Event()
        self._cancel_scope: Callable[[float], native.CancelScope] | None = None
        self._clock: Callable[[], float] | None = None
        self._controls: native.Sender[tuple[Hashable, Control]] | None = None

    @property
    def running(self) -> int:
        return self._running

    def wake(self) -> None:
        """Tell the actor that due jobs may be waiting (an enqueue, a promotion)."""
        self._more = True
        self._wake.set()

    def set_capacity(self, capacity: int) -> None:
        check_capacity(self.name, capacity)
        self.capacity = capacity
        self.wake()

    def stop_claiming(self) -> None:
        self._claiming = False
        self._wake.set()

    async def tell(self, job_id: Hashable, control: Control) -> bool:
        """Send a control request for one of this queue's jobs over the control
        channel. Whether it is taken is decided at once (the first request wins,
        except that a cancel overrides a suspend); False if it is not, or if the
        job is not one of ours."""
        handle = self._handles.get(job_id)
        if handle is None or handle.job.queue != self.name or not handle.take(control):
            return False
        if self._controls is not None:
            with contextlib.suppress(*native.CLOSED_CHANNEL):  # ended, its jobs with it
                await self._controls.send((job_id, control))
        return True

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        self._cancel_scope = native.cancel_scope_factory()
        self._clock = native.clock()
        self._event = native.event_factory()
        self._controls, requests = native.memory_channel(CONTROL_BUFFER, tuple[Hashable, Control])
        try:
            async with native.task_group() as controls:
                controls.start_soon(self._obey, requests)
                async with native.task_group() as tg:
                    task_status.started()
                    await self._produce(tg)
                controls.cancel_scope.cancel()  # every job has ended: none left to tell
        finally:
            self._controls.close()
            requests.close()
            # A job whose task never ran (its group torn down first) left its
            # handle behind: nothing runs it here any more.
            for job_id, handle in list(self._handles.items()):
                if handle.job.queue == self.name:
                    del self._handles[job_id]
            self.finished.set()

    async def _produce(self, tg: native.TaskGroup) -> None:
        self._tg = tg
        while True:
            self._wake = self._event()  # before the checks: a wake after them is not lost
            if not self._claiming:
                self._give_back(len(self._ready))
                return
            self._start_ready()
            # A lower capacity gives back what it cannot hold; runs grown longer
            # only stop further claims ahead (the jobs held start as slots free).
            self._give_back(len(self._ready) - min(self.capacity, CLAIM_AHEAD_MAX))
            room = self.capacity - self._running + self._ahead() - len(self._ready)
            if room > 0 and self._more:
                self._more = False
                want = min(room, self._claim_batch) if self._small_claims() else room
                asked = self._now()
                jobs = await self._source.claim(self.name, want)
                self._mean_claim = _mean(self._mean_claim, self._now() - asked)
                if len(jobs) >= want:
                    self._more = True
                for job in jobs:
                    # Its handle first: a cancel or suspend committed after the
                    # claim reaches the job even before its task has started.
                    self._ready.append(JobHandle(job))
                    self._handles[job.id] = self._ready[-1]
                continue
            assert self._cancel_scope is not None
            with self._cancel_scope(self._now() + self._poll_interval) as timer:
                await self._wake.wait()
            if timer.cancelled_caught:
                self._more = True

    async def _obey(self, requests: native.Receiver[tuple[Hashable, Control]]) -> None:
        """Cancel the scope of each job a control request names, if it still runs;
        a job claimed ahead starts at once, to end as its request says."""
        with requests:
            while True:
                job_id, _control = await requests.receive()
                handle = self._handles.get(job_id)
                if handle is None:
                    continue
                if handle in self._ready:
                    self._ready.remove(handle)
                    self._spawn(handle)
                handle.cancel()

    def _ahead(self) -> int:
        """How many jobs to hold claimed ahead of the free slots (see CLAIM_AHEAD_MAX)."""
        if self._mean_run is None or self._mean_run > CLAIM_AHEAD_RUN_MAX:
            return 0
        return min(self.capacity, CLAIM_AHEAD_MAX)

    def _start_ready(self) -> None:
        """Start jobs claimed ahead in the free slots."""
        while self._ready and self._running < self.capacity:
            self._spawn(self._ready.popleft())

    def _give_back(self, count: int) -> None:
        """Give the last ``count`` jobs claimed ahead back to the store: each
        starts told to stop (its handler never runs), which records it waiting
        with its attempt not counted, as a shutdown does for a running job."""
        for _ in range(max(0, count)):
            handle = self._ready.pop()
            handle.take(Control.INTERRUPT)  # or the request it was already told
            self._spawn(handle)

    def _spawn(self, handle: JobHandle) -> None:
        assert self._tg is not None
        self._running += 1
        # Unnamed: a name per job (its id as text) costs as much as a tenth of
        # the spawn; ``handles`` maps ids to running jobs.
        self._tg.start_soon(self._run_one, handle)

    def _small_claims(self) -> bool:
        """Whether runs are long enough next to claims for small claims to pay."""
        if self._mean_run is None or self._mean_claim is None:
            return True  # nothing known yet: start small
        return self._mean_run >= CLAIM_RUN_RATIO * self._mean_claim

    def _now(self) -> float:
        assert self._clock is not None
        return self._clock()

    async def _run_one(self, handle: JobHandle) -> None:
        job = handle.job
        try:
            outcome = await run_job(
                job, self._runner, handle, cancel_scope=self._cancel_scope, clock=self._clock
            )
        except BaseException as exc:
            # run_job raises only when the engine itself is torn down (a crash
            # elsewhere cancels the tree; a shutdown interrupts jobs through their
            # scopes instead) or on a bug. Free the slot either way; a cancelled
            # engine's writer goes down with it, and the job's lease hands it to a
            # rescue, so only what is not a cancellation is recorded here.
            self._handles.pop(job.id, None)
            self._running -= 1
            self._wake.set()
            if not isinstance(exc, anyio.get_cancelled_exc_class()):
                durable = self._sink.finish(Outcome(job, Ended.RAISED, error=exc))
                if durable is not None:
                    await durable
            raise
        self._handles.pop(job.id, None)
        self._mean_run = _mean(self._mean_run, outcome.duration)
        durable = self._sink.finish(outcome)
        self._running -= 1  # free the slot first: the next claim can share the commit
        if self._claiming:  # else the jobs claimed ahead are being given back
            self._start_ready()
        self._wake.set()
        if durable is not None:
            await durable


def _mean(mean: float | None, sample: float) -> float:
    """A running mean that follows change within a few dozen samples."""
    return sample if mean is None else mean + _SMOOTHING * (sample - mean)


def check_capacity(name: str, capacity: object) -> None:
    """Raise ``ValueError`` unless ``capacity`` is an int >= 0 (not a bool, float or NaN):
    NaN and floats compare oddly against the running count; only ints count slots."""
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
        raise ValueError(f"queue {name!r}: capacity must be >= 0 (an int), got {capacity!r}")
