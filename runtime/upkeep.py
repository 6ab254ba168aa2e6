"""A runtime's upkeep: leading its store (firing schedules and sweeping while
it holds the lead), renewing its worker lease, rescuing the jobs of lost
workers and warning of queues no worker serves. Mixed into the Runtime."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus

from actors import Control, Supervisor, Ticker
from runtime.domain.clock import Clock
from runtime.domain.status import JobStatus
from runtime.jobs.outages import through_outages
from runtime.jobs.sweeper import JobRetention
from runtime.jobs.wakeups import Wakeups
from runtime.schedules.scheduler import Scheduler
from runtime.store import Store, threads
from runtime.store.leader import LEADER_CHECK_DEFAULT, Leadership
from runtime.store.worker_ops import Heartbeat, Rescue
from runtime.store.worker_reads import unserved_queues

log = logging.getLogger("callboard.runtime")


class UpkeepMethods:
    """The Runtime's background upkeep (see the module's docstring)."""

    if TYPE_CHECKING:  # provided by Runtime and its other mixins
        worker_id: str
        clock: Clock
        leading: bool
        _supervisor: Supervisor | None
        _wakeups: Wakeups
        _lease: float
        _started_at: float
        _sweep_interval: float
        _unserved_told: set[str]
        _scheduler: Scheduler | None

        @property
        def store(self) -> Store: ...

        def _capacities(self) -> dict[str, int]: ...

        def _status_changed(self, row: Mapping[str, Any]) -> None: ...

        def _publish(self, row: Mapping[str, Any]) -> None: ...

        async def _run_scheduler(self, *, task_status: TaskStatus[None]) -> None: ...

        async def prune(self, retention: JobRetention | None = None) -> dict[str, int]: ...

    async def _lead(self, *, task_status: TaskStatus[None]) -> None:
        """Fire schedules and sweep while this runtime leads its store; try for
        the lead every ``LEADER_CHECK_DEFAULT`` seconds while another does.

        Started once the first try is decided, so a runtime that may lead
        leads as ``async with`` returns (on SQLite, always: no more checks).
        """
        leadership = Leadership(self.store.engine)
        started = False

        def start() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        try:
            while True:
                if await threads.run_sync(leadership.try_lead):
                    await self._run_as_leader(leadership, start)
                start()
                await anyio.sleep(LEADER_CHECK_DEFAULT)
        finally:
            with anyio.CancelScope(shield=True):
                await threads.run_sync(leadership.resign)

    async def _run_as_leader(self, leadership: Leadership, started: Callable[[], None]) -> None:
        log.info("runtime %s leads: it fires schedules and sweeps", self.worker_id)
        self.leading = True
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(Ticker(self._sweep, self._sweep_interval).run)
                await tg.start(self._run_scheduler)
                started()
                if leadership.permanent:
                    await anyio.sleep_forever()
                while True:  # the lock lives in the server: asking is the only way
                    await anyio.sleep(LEADER_CHECK_DEFAULT)
                    if not await threads.run_sync(leadership.still_leading):
                        break
                tg.cancel_scope.cancel()
        except Exception:
            if leadership.permanent:
                raise
            # The server went away under a read (a restart, say): step down and
            # try again, rather than take the workers down with the scheduler.
            log.exception("leading failed: stepping down, trying again in a while")
            await threads.run_sync(leadership.resign)
        finally:
            self.leading = False
            self._scheduler = None

    async def _sweep(self) -> None:
        counts = await through_outages("pruning finished jobs", self.prune)
        if counts:
            log.info("pruned finished jobs: %s", counts)

    async def _tick(self) -> None:
        await through_outages("renewing the worker lease", self._renew_lease)
        await through_outages("rescuing the jobs of lost workers", self._rescue)
        await through_outages("looking for queues no worker serves", self._warn_unserved)

    async def _renew_lease(self) -> None:
        stopping = await self.store.write(
            Heartbeat(
                self.worker_id,
                socket.gethostname(),
                os.getpid(),
                self.clock.now(),
                self._started_at,
                self._served_queues(),
            )
        )
        for job_id, status in stopping:
            control = Control.CANCEL if status == JobStatus.CANCELING.value else Control.SUSPEND
            if self._supervisor is not None:
                await self._supervisor.tell(job_id, control)

    def _served_queues(self) -> list[str]:
        """The queues this runtime runs jobs of now (capacity > 0, changes included)."""
        if self._supervisor is not None:
            actors = self._supervisor.queues
            return sorted(name for name, actor in actors.items() if actor.capacity > 0)
        return sorted(name for name, capacity in self._capacities().items() if capacity > 0)

    async def unserved_queues(self) -> dict[str, int]:
        """Queues whose waiting jobs no live worker serves, with how many wait:
        they wait until a worker that serves the queue starts."""
        since = self.clock.now() - self._lease
        return await self.store.read(unserved_queues, since)

    async def _warn_unserved(self) -> None:
        found = await self.unserved_queues()
        for queue in sorted(found.keys() - self._unserved_told):
            log.warning(
                "%d jobs wait on queue %r, which no live worker serves: start a worker "
                "that serves it (callboard worker --queues %s)",
                found[queue],
                queue,
                queue,
            )
        self._unserved_told = set(found)

    async def _rescue(self) -> None:
        pending = self.store.submit(
            Rescue(self.worker_id, socket.gethostname(), self.clock.now(), self._lease),
            self._wakeups.for_rescue,
        )
        pending.on_settled(self._publish_rescued)
        for job in await pending.wait():
            if job.status is JobStatus.WAITING and self._supervisor is not None:
                self._supervisor.wake(job.queue)
            elif job.status is JobStatus.SCHEDULED and job.row is not None:
                self._status_changed(job.row)  # a dependent released, due later

    def _publish_rescued(self, rescued: Any, error: BaseException | None) -> None:
        if error is None:
            for job in rescued:
                if job.row is not None:
                    self._publish(job.row)
