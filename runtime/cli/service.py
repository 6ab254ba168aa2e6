"""``callboard serve`` and ``callboard worker``: the processes that run jobs.

Both stop gracefully on Ctrl-C or SIGTERM: the API (if any) stops taking
requests, then the runtime stops claiming, gives running jobs their grace
period and persists what is left. A second signal skips the wait for
in-flight requests.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
import trio

from runtime.api.app import RouteAdder
from runtime.api.auth import TokenEntry
from runtime.api.hooks import Hooks, HookSettings
from runtime.api.server import check_bind, serve_api
from runtime.api.state import ApiConfig
from runtime.cli.demo import DEMO_SCHEDULES
from runtime.domain.errors import CallboardError
from runtime.jobs.registry import Registry
from runtime.runtime import Runtime

DEMO_INTERVAL_DEFAULT = 10.0  # without schedules: how often the demo feeder enqueues


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


def say(text: str) -> None:
    print(f"callboard: {text}", file=sys.stderr, flush=True)


def make_hooks(registry: Registry, env: Mapping[str, str]) -> Hooks:
    """Register the status-hook delivery type (and its ``hooks`` queue) in ``registry``."""
    return Hooks(registry, HookSettings.from_env(dict(env)))


async def run_service(registry: Registry, hooks: Hooks, options: ServeOptions) -> int:
    """Run the runtime (and the API when ``options.bind``) until a signal."""
    config_fields: dict[str, Any] = {"tokens": options.tokens}
    if options.body_limit is not None:
        config_fields["body_limit"] = options.body_limit
    config = ApiConfig(**config_fields)
    if options.bind is not None:
        check_bind(options.bind, has_tokens=bool(options.tokens), insecure=options.insecure)
    async with Runtime(options.db, registry=registry, queues=options.queues) as rt:
        stop = anyio.Event()
        api_done = anyio.Event()
        async with trio.open_nursery() as tg:
            tg.start_soon(_until_signalled, stop, tg)
            await tg.start(hooks.run, rt)
            tg.start_soon(_log_events, rt)
            if options.bind is not None:
                urls = await tg.start(_api, rt, options, config, stop, api_done)
                say(f"API on {', '.join(urls)}; database {options.db}; Ctrl-C stops")
            else:
                api_done.set()
                say(f"worker {rt.worker_id} on {options.db}; Ctrl-C stops")
            if options.demo:
                await _start_demo(rt, tg)
            await stop.wait()
            say("stopping: no new requests; running jobs get their grace period")
            await api_done.wait()
            tg.cancel_scope.cancel()
    say("stopped")
    return 0


async def _api(
    rt: Runtime,
    options: ServeOptions,
    config: ApiConfig,
    stop: anyio.Event,
    done: anyio.Event,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    assert options.bind is not None
    try:
        await serve_api(
            rt,
            bind=options.bind,
            config=config,
            insecure=options.insecure,
            shutdown=stop.wait,
            extra_routes=options.routes,
            task_status=task_status,
        )
    finally:
        done.set()


async def _until_signalled(stop: anyio.Event, tg: trio.Nursery) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            if stop.is_set():  # a second signal: do not wait for open requests
                tg.cancel_scope.cancel()
                return
            stop.set()


async def _log_events(rt: Runtime) -> None:
    with rt.subscribe() as events:
        async for event in events:
            if event.kind == "status":
                say(f"{event.job_id} {event.type:<14} {event.status}")


async def _start_demo(rt: Runtime, tg: trio.Nursery) -> None:
    if not hasattr(rt, "add_schedule"):
        tg.start_soon(_feed_demo, rt)
        return
    for name, job_type, params, every in DEMO_SCHEDULES:
        try:
            await rt.get_schedule(name)
        except CallboardError:
            start = datetime.now(UTC)  # the first jobs come at once
            await rt.add_schedule(job_type, params, every=every, name=name, start=start)
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
