"""The ``callboard`` command: run the runtime and look at its jobs."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from runtime.demo import register_demo
from runtime.errors import CallboardError
from runtime.models import Job
from runtime.registry import default_registry
from runtime.runtime import DATABASE_URL_DEFAULT, Runtime

DEMO_INTERVAL_DEFAULT = 5.0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="callboard", description=__doc__)
    parser.add_argument("--db", default=DATABASE_URL_DEFAULT, help="database URL")
    parser.add_argument(
        "--app", action="append", default=[], help="module that registers job types (repeatable)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the workers until interrupted")
    serve.add_argument("--demo", action="store_true", help="register demo jobs and enqueue some")
    serve.add_argument("--queue", action="append", default=[], help="NAME=CAPACITY")
    enqueue = sub.add_parser("enqueue", help="store a job")
    enqueue.add_argument("type")
    enqueue.add_argument("params", nargs="?", default="{}", help="JSON object")
    enqueue.add_argument("--delay", type=float)
    enqueue.add_argument("--priority", type=int)
    enqueue.add_argument("--idempotency-key")
    listing = sub.add_parser("list", help="list jobs, newest first")
    listing.add_argument("--status", help="comma-separated statuses")
    listing.add_argument("--type")
    listing.add_argument("--limit", type=int, default=20)
    for name in ("get", "cancel", "wait"):
        cmd = sub.add_parser(name, help=f"{name} one job")
        cmd.add_argument("id")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for module in args.app:
        importlib.import_module(module)
    wants_demo = getattr(args, "demo", False) or args.command != "serve"
    if wants_demo and "demo.count" not in {t.name for t in default_registry.types()}:
        register_demo(default_registry)
    try:
        return anyio.run(_run, args, backend="trio")
    except CallboardError as err:
        print(f"callboard: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def _run(args: argparse.Namespace) -> int:
    if args.command == "serve":
        return await _serve(args)
    async with Runtime(args.db, workers=False) as rt:
        if args.command == "enqueue":
            job = await rt.enqueue(
                args.type,
                json.loads(args.params),
                delay=args.delay,
                priority=args.priority,
                idempotency_key=args.idempotency_key,
            )
            _print(job)
        elif args.command == "list":
            status = args.status.split(",") if args.status else None
            for job in await rt.list(status=status, type=args.type, limit=args.limit):
                print(f"{job.id}  {job.status:<10} {job.progress:5.1f}%  {job.type}")
        elif args.command == "get":
            _print(await rt.get(args.id))
        elif args.command == "cancel":
            _print(await rt.cancel(args.id))
        elif args.command == "wait":
            _print(await rt.wait(args.id))
    return 0


async def _serve(args: argparse.Namespace) -> int:
    queues = dict(_queue_spec(q) for q in args.queue)
    async with Runtime(args.db, queues=queues) as rt:
        print(f"callboard: serving {args.db} as {rt.worker_id}; Ctrl+C stops", flush=True)
        async with anyio.create_task_group() as tg:
            tg.start_soon(_log_events, rt)
            if args.demo:
                tg.start_soon(_feed_demo, rt)
            await _until_signalled()
            print("callboard: stopping: running jobs get the grace period", flush=True)
            tg.cancel_scope.cancel()
    return 0


async def _until_signalled() -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def _feed_demo(rt: Runtime) -> None:
    while True:
        await rt.enqueue("demo.count", {"to": 20})
        await rt.enqueue("demo.flaky", {"success_rate": 0.5})
        await anyio.sleep(DEMO_INTERVAL_DEFAULT)


async def _log_events(rt: Runtime) -> None:
    with rt.subscribe() as events:
        async for event in events:
            if event.kind == "status":
                print(f"{event.job_id} {event.type:<12} {event.status}", flush=True)


def _queue_spec(text: str) -> tuple[str, int]:
    name, _, capacity = text.partition("=")
    if not name or not capacity.isdigit():
        raise SystemExit(f"callboard: --queue wants NAME=CAPACITY, got {text!r}")
    return name, int(capacity)


def _print(job: Job) -> None:
    data: dict[str, Any] = job.model_dump(mode="json")
    print(json.dumps(data, indent=2))


if __name__ == "__main__":
    raise SystemExit(main())
