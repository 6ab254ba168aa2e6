"""``SyncClient``: enqueue and read jobs from sync code (a Django or Flask view, a script).

It is a :class:`Runtime` with ``workers=False`` (it runs no jobs) on an
event loop of its own, in a background thread (anyio's blocking portal):
each call waits for the runtime's answer, so ``enqueue`` returns when the
job is durable, exactly as ``await rt.enqueue`` does. Async code uses
``Runtime(url, workers=False)`` directly (docs/recipes.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from types import TracebackType
from typing import Any, Self, Unpack

from anyio.from_thread import BlockingPortal, start_blocking_portal

from runtime.domain.models import Job
from runtime.enqueueing import JobTypeRef, Params
from runtime.jobs.enqueue import EnqueueOptions
from runtime.jobs.registry import Registry
from runtime.runtime import Runtime
from runtime.workflows.step_specs import Step


class SyncClient:
    """Enqueue and read jobs without ``await``: ``with SyncClient(url) as client``.

    ``registry`` holds the job types it may enqueue (the default one, which
    ``@job`` fills, unless given). Thread-safe: one client may serve every
    request thread of a web app. ``backend`` is the client's own loop
    (asyncio by default; it never touches the caller's).
    """

    def __init__(
        self,
        url: str,
        *,
        registry: Registry | None = None,
        backend: str = "asyncio",
        **runtime_options: Any,
    ) -> None:
        self._url, self._registry, self._backend = url, registry, backend
        self._options = runtime_options
        self._stack: ExitStack | None = None
        self._portal: BlockingPortal | None = None
        self._runtime: Runtime | None = None

    def open(self) -> None:
        """Start the client's loop and its runtime (``with`` does it for you)."""
        if self._stack is not None:
            return
        stack = ExitStack()
        try:
            portal = stack.enter_context(start_blocking_portal(self._backend))
            rt = portal.call(self._make_runtime)  # made on its loop: it makes loop objects
            self._runtime = stack.enter_context(portal.wrap_async_context_manager(rt))
        except BaseException:
            stack.close()
            raise
        self._stack, self._portal = stack, portal

    def _make_runtime(self) -> Runtime:
        return Runtime(self._url, registry=self._registry, workers=False, **self._options)

    def close(self) -> None:
        """Stop the runtime (committing what it holds) and its loop."""
        stack, self._stack, self._portal, self._runtime = self._stack, None, None, None
        if stack is not None:
            stack.close()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _open(self) -> tuple[BlockingPortal, Runtime]:
        if self._portal is None or self._runtime is None:
            raise RuntimeError("the SyncClient is not open: use `with SyncClient(url) as client`")
        return self._portal, self._runtime

    def enqueue(
        self,
        job_type: JobTypeRef,
        params: Params = None,
        *,
        idempotency_key: str | None = None,
        depends_on: Iterable[uuid.UUID | str] | None = None,
        run_on_failure: bool = False,
        **options: Unpack[EnqueueOptions],
    ) -> Job:
        """As :meth:`Runtime.enqueue`: the job is durable when this returns."""
        portal, rt = self._open()
        after = None if depends_on is None else list(depends_on)

        async def call() -> Job:
            return await rt.enqueue(
                job_type,
                params,
                idempotency_key=idempotency_key,
                depends_on=after,
                run_on_failure=run_on_failure,
                **options,
            )

        return portal.call(call)

    def enqueue_many(
        self,
        job_type: JobTypeRef,
        params: Iterable[Params],
        *,
        idempotency_keys: Sequence[str | None] | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> list[Job]:
        """As :meth:`Runtime.enqueue_many`: all or nothing, in one transaction."""
        portal, rt = self._open()
        rows = list(params)

        async def call() -> list[Job]:
            return await rt.enqueue_many(
                job_type, rows, idempotency_keys=idempotency_keys, **options
            )

        return portal.call(call)

    def enqueue_steps(
        self,
        steps: Sequence[Step | Mapping[str, Any]],
        *,
        step_defaults: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        **options: Unpack[EnqueueOptions],
    ) -> Job:
        """As :meth:`Runtime.enqueue_steps`: one multi-step job, durable on return."""
        portal, rt = self._open()
        given = list(steps)

        async def call() -> Job:
            return await rt.enqueue_steps(
                given, step_defaults=step_defaults, idempotency_key=idempotency_key, **options
            )

        return portal.call(call)

    def get(self, job_id: uuid.UUID | str, *, tenant_id: str | None = None) -> Job:
        """As :meth:`Runtime.get`."""
        portal, rt = self._open()

        async def call() -> Job:
            return await rt.get(job_id, tenant_id=tenant_id)

        return portal.call(call)

    def wait(
        self, job_id: uuid.UUID | str, *, timeout: float | None = None, tenant_id: str | None = None
    ) -> Job:
        """As :meth:`Runtime.wait`: block until the job is finished (or ``timeout``)."""
        portal, rt = self._open()

        async def call() -> Job:
            return await rt.wait(job_id, timeout=timeout, tenant_id=tenant_id)

        return portal.call(call)

    def cancel(
        self, job_id: uuid.UUID | str, *, reason: str | None = None, tenant_id: str | None = None
    ) -> Job:
        """As :meth:`Runtime.cancel`."""
        portal, rt = self._open()

        async def call() -> Job:
            return await rt.cancel(job_id, reason=reason, tenant_id=tenant_id)

        return portal.call(call)
