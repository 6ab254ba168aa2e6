"""``callboard serve`` and ``callboard worker``: the processes that run jobs.

Both stop gracefully on Ctrl-C or SIGTERM: the API (if any) stops taking
requests, then the runtime stops claiming, gives running jobs their grace
period and persists what is left. A second signal skips the wait for
open requests, nothing else: running jobs are still interrupted and stored.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
import anyio.abc

from runtime.api.app import RouteAdder
from runtime.api.auth import TokenEntry
from runtime.api.hooks import Hooks, HookSettings
from runtime.api.server import check_bind, serve_api
from runtime.api.state import ApiConfig
from runtime.cli.demo import DEMO_SCHEDULES
from runtime.domain.errors import CallboardError
from runtime.jobs.registry import Registry
from runtime.jobs.sweeper import JobRetention
from runtime.runtime import Runtime

EXIT_STORE = 7  # the database cannot be opened or written at start-up
DEMO_INTERVAL_DEFAULT = 10.0  # without schedules: how often the demo feeder enqueues
LOOPS = ("trio", "asyncio")  # --loop: the event loop the service runs on (trio by default)


@dataclass(slots=True)
class ServeOptions:
    db: str
    bind: str | None  # None: no API (a worker)
    tokens: tuple[TokenEntry, ...] = ()
    insecure: bool = False
    demo: bool = False
    body_limit: int | None = None
    queues: dict[str, int] = field(default_factory=dict)
    routes: tuple[RouteAdder, ...] = ()  # from --app modules that define ``api_routes``
    grace_period: float | None = None
    lease: float | None = None
    heartbeat_interval: float | None = None
    retention: JobRetention | None = None  # None: the runtime's default
    sweep_interval: float | None = None
    header_timeout: float | None = None
    body_timeout: float | None = None
    send_timeout: float | None = None
    streams_per_token: int | None = None
    poll_interval: float | None = None
    migrate: bool = True
    otel: bool = False  # OpenTelemetry spans through the global tracer provider

    def runtime_fields(self) -> dict[str, Any]:
        """The Runtime settings given (the others keep their defaults)."""
        names = ("grace_period", "poll_interval", "lease", "heartbeat_interval", "sweep_interval")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def api_fields(self) -> dict[str, Any]:
        """The :class:`ApiConfig` fields these options set (the rest keep their defaults)."""
        given = {
            "body_limit": self.body_limit,
            "header_timeout": self.header_timeout,
            "body_timeout": self.body_timeout,
            "send_timeout": self.send_timeout,
            "streams_per_token": self.streams_per_token,
        }
        return {"tokens": self.tokens} | {k: v for k, v in given.items() if v is not None}


log = logging.getLogger("callboard.service")


def say(text: str) -> None:
    """A line about the service's life (started, stopping...), at info."""
    log.info(text)


def make_hooks(registry: Registry, env: Mapping[str, str], allow: Iterable[str] = ()) -> Hooks:
    """Register the status-hook delivery type (and its ``hooks`` queue) in ``registry``;
    hooks may reach public addresses and what ``allow`` (and the environment) names."""
    return Hooks(registry, HookSettings.from_env(dict(env), allow=allow))


async def run_service(registry: Registry, hooks: Hooks, options: ServeOptions) -> int:
    """Run the runtime (and the API when ``options.bind``) until a signal.

    The signals are caught from before the runtime starts until after it has
    stopped: a second one during the shutdown only skips the wait for open
    HTTP requests; the jobs are still interrupted and stored. Exit code 0.
    """
    # One policy for hook URLs: checked at enqueue and again at send.
    config = ApiConfig(**options.api_fields(), hook_policy=hooks.settings.policy)
    if options.bind is not None:
        check_bind(options.bind, has_tokens=bool(options.tokens), insecure=options.insecure)
    stop, hurry = anyio.Event(), anyio.Event()
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with anyio.create_task_group() as watch:
            watch.start_soon(_watch_signals, signals, stop, hurry)
            await _run(registry, hooks, options, config, stop, hurry)
            watch.cancel_scope.cancel()
    say("stopped")
    return 0


async def _run(
    registry: Registry,
    hooks: Hooks,
    options: ServeOptions,
    config: ApiConfig,
    stop: anyio.Event,
    hurry: anyio.Event,
) -> None:
    runtime_fields: dict[str, Any] = {"retention": options.retention, **options.runtime_fields()}
    async with Runtime(
        options.db,
        registry=registry,
        queues=options.queues,
        migrate=options.migrate,
        otel=options.otel,
        **runtime_fields,
    ) as rt:
        api_done = anyio.Event()
        async with anyio.create_task_group() as tg:
            await tg.start(hooks.run, rt)
            tg.start_soon(_log_events, rt)
            if options.bind is not None:
                urls = await tg.start(_api, rt, options, config, stop, hurry, api_done)
                say(f"API on {', '.join(urls)}; database {options.db}; Ctrl-C stops")
                say(f"dashboard on {urls[0]}/ (API docs on {urls[0]}/docs)")
            else:
                api_done.set()
                say(f"worker {rt.worker_id} on {options.db}; Ctrl-C stops")
            if options.demo:
                await _start_demo(rt, tg)
            await stop.wait()
            say("stopping: no new requests; running jobs get their grace period")
            await api_done.wait()
            tg.cancel_scope.cancel()
        # Leaving the runtime: its grace period for running jobs, then it stores the rest.


async def _api(
    rt: Runtime,
    options: ServeOptions,
    config: ApiConfig,
    stop: anyio.Event,
    hurry: anyio.Event,
    done: anyio.Event,
    *,
    task_status: anyio.abc.TaskStatus[list[str]] = anyio.TASK_STATUS_IGNORED,
) -> None:
    assert options.bind is not None
    try:
        async with anyio.create_task_group() as tg:

            async def skip_the_wait() -> None:
                await hurry.wait()
                tg.cancel_scope.cancel()  # open requests are dropped, not waited for

            tg.start_soon(skip_the_wait)
            await serve_api(
                rt,
                bind=options.bind,
                config=config,
                insecure=options.insecure,
                shutdown=stop.wait,
                extra_routes=options.routes,
                task_status=task_status,
            )
            tg.cancel_scope.cancel()
    finally:
        done.set()


async def _watch_signals(
    signals: AsyncIterator[int], stop: anyio.Event, hurry: anyio.Event
) -> None:
    async for _ in signals:
        if not stop.is_set():
            stop.set()
        elif not hurry.is_set():
            hurry.set()
            say("second signal: not waiting for open requests; jobs are still stored")
        else:
            say("already stopping")


async def _log_events(rt: Runtime) -> None:
    with rt.subscribe() as events:
        async for event in events:
            if event.kind == "status":
                # At debug: one line per change is noise at real throughput.
                log.debug("%s %s %s", event.job_id, event.type, event.status)


async def _start_demo(rt: Runtime, tg: anyio.abc.TaskGroup) -> None:
    if not hasattr(rt, "add_schedule"):
        tg.start_soon(_feed_demo, rt)
        return
    for name, job_type, params, every in DEMO_SCHEDULES:
        try:
            await rt.get_schedule(name)
        except CallboardError:
            start = datetime.now(UTC)
            made = await rt.add_schedule(job_type, params, every=every, name=name, start=start)
            await rt.trigger_schedule(made.id)  # a newcomer sees jobs at once, not a slot later
            say(f"demo schedule {name!r}: {job_type} every {every}")


async def _feed_demo(rt: Runtime) -> None:
    while True:
        for _, job_type, params, _ in DEMO_SCHEDULES:
            await rt.enqueue(job_type, params)
        await anyio.sleep(DEMO_INTERVAL_DEFAULT)


def worker_queues(registry: Registry, names: list[str] | None) -> dict[str, int]:
    """Capacities that run only ``names`` (``NAME`` or ``NAME=CAPACITY``); all when None."""
    if names is None:
        return {}
    wanted: dict[str, int | None] = {}
    for item in names:
        name, sep, number = item.partition("=")
        if not name or (sep and not number.isdigit()):
            raise ValueError(f"--queues wants NAME or NAME=CAPACITY items, got {item!r}")
        wanted[name] = int(number) if sep else None
    known = {q.name: q.capacity for q in registry.queues()}
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise ValueError(f"unknown queue {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    capacities = {name: 0 for name in known}
    for name, capacity in wanted.items():
        capacities[name] = known[name] if capacity is None else capacity
    return capacities
