"""The supervisor: owns the queue actors and orchestrates shutdown.

Shutdown follows Oban's watchman: stop claiming everywhere, wait up to the
grace period for running jobs, then interrupt what is left and wait for the
interrupted jobs to record their outcome.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import anyio
from anyio.abc import TaskStatus

from actors._job_actor import JobHandle
from actors._messages import Claimed, Control
from actors._protocols import JobRunner, JobSource, OutcomeSink
from actors._queue_actor import CLAIM_BATCH_DEFAULT, POLL_INTERVAL_DEFAULT, QueueActor

GRACE_PERIOD_DEFAULT = 10.0


@dataclass(frozen=True, slots=True)
class ShutdownReport:
    """What a shutdown left: jobs interrupted after the grace period."""

    interrupted: tuple[Claimed, ...]


class Supervisor:
    def __init__(
        self,
        capacities: Mapping[str, int],
        *,
        source: JobSource,
        runner: JobRunner,
        sink: OutcomeSink,
        poll_interval: float = POLL_INTERVAL_DEFAULT,
        claim_batch: int = CLAIM_BATCH_DEFAULT,
    ) -> None:
        self._handles: dict[Hashable, JobHandle] = {}
        self.queues = {
            name: QueueActor(
                name,
                capacity,
                source=source,
                runner=runner,
                sink=sink,
                handles=self._handles,
                poll_interval=poll_interval,
                claim_batch=claim_batch,
            )
            for name, capacity in capacities.items()
        }
        self._stop = anyio.Event()
        self._grace = GRACE_PERIOD_DEFAULT
        self.report: ShutdownReport | None = None

    def wake(self, queue: str) -> None:
        actor = self.queues.get(queue)
        if actor is not None:
            actor.wake()

    def wake_all(self) -> None:
        for actor in self.queues.values():
            actor.wake()

    async def tell(self, job_id: Hashable, control: Control) -> bool:
        """Send a control request to a job running here, over its queue actor's
        control channel; False if it is not here or the request is not taken."""
        handle = self._handles.get(job_id)
        if handle is None:
            return False
        return await self.queues[handle.job.queue].tell(job_id, control)

    def running_ids(self) -> list[Hashable]:
        return list(self._handles)

    def stop(self, grace: float = GRACE_PERIOD_DEFAULT) -> None:
        """Begin a graceful shutdown; ``run`` returns once it is complete."""
        self._grace = grace
        self._stop.set()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tg:
            for actor in self.queues.values():
                await tg.start(actor.run)
            task_status.started()
            await self._stop.wait()
            with anyio.CancelScope(shield=True):
                self.report = await self._drain()

    async def _drain(self) -> ShutdownReport:
        for actor in self.queues.values():
            actor.stop_claiming()
        with anyio.move_on_after(self._grace):
            for actor in self.queues.values():
                await actor.finished.wait()
        left = [
            h for h in list(self._handles.values()) if await self.tell(h.job.id, Control.INTERRUPT)
        ]
        for actor in self.queues.values():
            await actor.finished.wait()
        return ShutdownReport(tuple(h.job for h in left))
