"""The client commands: each talks to a server and prints a table or JSON."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

from runtime.cli.client import (
    EXIT_JOB_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    ApiClient,
    ClientError,
)
from runtime.cli.render import JOB_COLUMNS, dump, job_detail, table, when
from runtime.cli.watch import watch_all, watch_job

WAIT_STEP_MAX = 300.0  # the server's longest wait per call
FILTERS = ("status", "type", "group", "queue", "schedule_id", "idempotency_key")

Command = Callable[[ApiClient, argparse.Namespace, TextIO], int]


def _emit(out: TextIO, args: argparse.Namespace, data: Any, text: str) -> None:
    out.write((dump(data) if args.json else text) + "\n")


def _job_exit(job: dict[str, Any]) -> int:
    return EXIT_OK if job.get("status") == "completed" else EXIT_JOB_FAILED


def parse_params(args: argparse.Namespace) -> dict[str, Any]:
    """``--params JSON`` and ``-p key=value`` (a value is JSON if it parses, else text)."""
    params: dict[str, Any] = {}
    if args.params:
        try:
            given = json.loads(args.params)
        except ValueError as err:
            raise ClientError(f"--params is not JSON: {err}", EXIT_USAGE) from None
        if not isinstance(given, dict):
            raise ClientError("--params must be a JSON object", EXIT_USAGE)
        params.update(given)
    for item in args.param or []:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ClientError(f"-p wants key=value, got {item!r}", EXIT_USAGE)
        try:
            params[key] = json.loads(text)
        except ValueError:
            params[key] = text
    return params


def enqueue(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    body: dict[str, Any] = {"type": args.type, "params": parse_params(args)}
    for name in ("queue", "priority", "delay", "at", "idempotency_key", "timeout"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    for name in ("max_retries", "lock_key", "status_hook", "retry_delay", "description"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    status, job = client.call("POST", "/jobs", json_body=body)
    if not args.wait:
        note = "enqueued" if status == 201 else "already known (idempotency key)"
        _emit(out, args, job, f"{job['id']}  {job['status']}  {note}")
        return EXIT_OK
    return _wait(client, args, out, job["id"], args.wait_timeout)


def _wait(
    client: ApiClient, args: argparse.Namespace, out: TextIO, job_id: str, timeout: float | None
) -> int:
    left = timeout
    while True:
        step = WAIT_STEP_MAX if left is None else min(left, WAIT_STEP_MAX)
        status, job = client.call(
            "GET", f"/jobs/{job_id}/wait", params={"timeout": step}, timeout=step + 30
        )
        if status == 200:
            _emit(out, args, job, job_detail(job))
            return _job_exit(job)
        if left is not None:
            left -= step
            if left <= 0:
                _emit(out, args, job, f"{job_id}  still {job['status']} (timed out)")
                return EXIT_TIMEOUT


def jobs_list(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    params = {name: getattr(args, name) for name in FILTERS}
    params.update(page=args.page, page_size=args.page_size)
    _, page = client.call("GET", "/jobs", params=params)
    footer = f"page {page['page']}, {len(page['jobs'])} of {page['total']} jobs"
    _emit(out, args, page, table(page["jobs"], JOB_COLUMNS) + "\n" + footer)
    return EXIT_OK


def jobs_show(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    _, job = client.call("GET", f"/jobs/{args.id}")
    _emit(out, args, job, job_detail(job))
    return EXIT_OK


def jobs_control(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    if args.action == "delete":
        client.call("DELETE", f"/jobs/{args.id}")
        _emit(out, args, {"id": args.id, "deleted": True}, f"{args.id}  deleted")
        return EXIT_OK
    reason = getattr(args, "reason", None)
    body = {"reason": reason} if reason is not None else None
    _, job = client.call("POST", f"/jobs/{args.id}/{args.action}", json_body=body)
    _emit(out, args, job, f"{job['id']}  {job['status']}")
    return EXIT_OK


def jobs_bulk(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    """One action on every job matching the filters; counts of changed and skipped."""
    body: dict[str, Any] = {name: getattr(args, name) for name in (*FILTERS, "search", "tenant")}
    body = {name: value for name, value in body.items() if value is not None}
    if args.limit is not None:
        body["limit"] = args.limit
    if args.dry_run:
        body["dry_run"] = True
    _, done = client.call("POST", f"/jobs/bulk/{args.bulk_action}", json_body=body)
    if done["dry_run"]:
        text = f"{done['matched']} jobs match; {args.bulk_action} would act on {done['selected']}"
    else:
        reasons = ", ".join(f"{k}: {v}" for k, v in done["skipped_by_status"].items())
        text = (
            f"{args.bulk_action}: {done['changed']} changed, {done['skipped']} skipped"
            + (f" ({reasons})" if reasons else "")
            + (f"; {done['remaining']} more match (raise --limit)" if done["remaining"] else "")
        )
    _emit(out, args, done, text)
    return EXIT_OK


def jobs_logs(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    params = {"level": args.level, "since": args.since, "limit": args.limit}
    _, log = client.call("GET", f"/jobs/{args.id}/logs", params=params)
    lines = [
        f"{when(r['at'])}  {r['level_name']:<8} {r['message']}"
        + (f"  {json.dumps(r['extra'])}" if r.get("extra") else "")
        for r in log["records"]
    ]
    _emit(out, args, log, "\n".join(lines) or "(no records)")
    return EXIT_OK


def jobs_wait(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    return _wait(client, args, out, args.id, args.timeout)


def jobs_watch(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    tty = out.isatty() and not args.json
    if args.id:
        return watch_job(client, args.id, out, tty)
    filters = {name: getattr(args, name) for name in FILTERS}
    return watch_all(client, filters, out, tty, limit=args.limit)


QUEUE_COLUMNS = [
    ("QUEUE", lambda q: q["name"]),
    ("CAPACITY", lambda q: q["capacity"]),
    ("PAUSED", lambda q: "yes" if q["paused"] else "no"),
    ("WAITING", lambda q: q.get("waiting")),
    ("RUNNING", lambda q: q.get("running")),
    ("SCHEDULED", lambda q: q.get("scheduled")),
    ("LOCKED", lambda q: q.get("locked")),
    ("SUSPENDED", lambda q: q.get("suspended")),
    ("DONE/1M", lambda q: q.get("completed_last_minute")),
    ("FAILED/1M", lambda q: q.get("failed_last_minute")),
]


def queues(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    action = args.action or "list"
    if action == "list":
        _, body = client.call("GET", "/queues")
        _emit(out, args, body, table(body["queues"], QUEUE_COLUMNS))
        return EXIT_OK
    if action == "show":
        _, queue = client.call("GET", f"/queues/{args.name}")
    elif action == "set-capacity":
        body = {"capacity": args.capacity}
        _, queue = client.call("PATCH", f"/queues/{args.name}", json_body=body)
    else:
        _, queue = client.call("POST", f"/queues/{args.name}/{action}")
    _emit(out, args, queue, table([queue], QUEUE_COLUMNS))
    return EXIT_OK


TYPE_COLUMNS = [
    ("TYPE", lambda t: t["name"]),
    ("GROUP", lambda t: t["group"]),
    ("QUEUE", lambda t: t["queue"]),
    ("RETRIES", lambda t: t["max_retries"]),
    ("TIMEOUT", lambda t: t.get("timeout")),
    ("DESCRIPTION", lambda t: (t.get("description") or "").split("\n")[0]),
]


def types(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    if args.name:
        _, info = client.call("GET", f"/job-types/{args.name}")
        text = table([info], TYPE_COLUMNS) + "\nparams schema:\n" + dump(info["params_schema"])
        _emit(out, args, info, text)
        return EXIT_OK
    _, body = client.call("GET", "/job-types")
    _emit(out, args, body, table(body["types"], TYPE_COLUMNS))
    return EXIT_OK


def fail(message: str, code: int, err: TextIO | None = None) -> int:
    (err or sys.stderr).write(f"callboard: {message}\n")
    return code
