"""``callboard schedules``: list, show, add, pause, resume, trigger, remove."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

from runtime.cli.client import EXIT_OK, EXIT_USAGE, ApiClient, ClientError
from runtime.cli.commands import parse_params
from runtime.cli.render import dump, table, when

COLUMNS = [
    ("ID", lambda s: s["id"]),
    ("NAME", lambda s: s["name"]),
    ("TYPE", lambda s: s["job_type"]),
    ("TRIGGER", lambda s: _trigger(s.get("trigger") or {})),
    ("PAUSED", lambda s: "yes" if s.get("paused") else "no"),
    ("NEXT", lambda s: when(s.get("next_fire_at"))),
    ("LAST", lambda s: when(s.get("last_fire_at"))),
]


def _trigger(trigger: dict[str, Any]) -> str:
    kind = trigger.get("kind")
    if kind == "interval":
        every = trigger.get("every")
        return "continuous" if every is None else f"every {every}s"
    if kind == "cron":
        return f"cron {trigger.get('expression')} ({trigger.get('tz', 'UTC')})"
    if kind == "date":
        return f"at {when(trigger.get('at'))}"
    return json.dumps(trigger, default=str)


def add_parser(sub: Any, client: argparse.ArgumentParser) -> None:
    schedules = sub.add_parser("schedules", parents=[client], help="schedules that make jobs")
    actions = schedules.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("list", parents=[client]).add_argument("--type")
    for action in ("show", "pause", "resume", "trigger", "remove"):
        actions.add_parser(action, parents=[client]).add_argument("id", help="id or name")
    add = actions.add_parser("add", parents=[client], help="create a schedule")
    add.add_argument("type")
    add.add_argument("--params", help="params as a JSON object")
    add.add_argument("-p", "--param", action="append", help="one param: key=value")
    when_ = add.add_mutually_exclusive_group(required=True)
    when_.add_argument("--every", help='"15 minutes", "2 days", "continuous" or seconds')
    when_.add_argument("--cron", help='five or six cron fields, e.g. "0 9 * * mon-fri"')
    when_.add_argument("--at", help="one run at this ISO time (with a zone)")
    when_.add_argument("--fields", help='calendar fields as JSON, e.g. {"hour": 9}')
    add.add_argument(
        "--cron-seconds", choices=["first", "last"], help="where a six-field --cron has seconds"
    )
    add.add_argument("--name")
    add.add_argument("--tz", help="IANA time zone (default UTC)")
    add.add_argument("--start")
    add.add_argument("--end")
    add.add_argument("--overlap", choices=["skip", "queue", "allow"])
    add.add_argument("--misfire", choices=["skip", "run_once", "run_all"])
    add.add_argument("--max-catch-up", type=int)
    add.add_argument("--paused", action="store_true")
    add.add_argument("--queue", help="the queue its jobs go to (default: their type's)")


def run(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    action = args.action or "list"
    if action == "list":
        _, page = client.call("GET", "/schedules", params={"job_type": getattr(args, "type", None)})
        _print(out, args, page, table(page["schedules"], COLUMNS))
        return EXIT_OK
    if action == "add":
        _, schedule = client.call("POST", "/schedules", json_body=_body(args))
    elif action == "show":
        _, schedule = client.call("GET", f"/schedules/{args.id}")
    elif action == "remove":
        client.call("DELETE", f"/schedules/{args.id}")
        _print(out, args, {"id": args.id, "removed": True}, f"{args.id}  removed")
        return EXIT_OK
    elif action == "trigger":
        _, job = client.call("POST", f"/schedules/{args.id}/trigger")
        _print(out, args, job, f"{job['id']}  {job['status']}  (made by {args.id})")
        return EXIT_OK
    else:
        _, schedule = client.call("POST", f"/schedules/{args.id}/{action}")
    _print(out, args, schedule, table([schedule], COLUMNS))
    return EXIT_OK


def _body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"job_type": args.type, "params": parse_params(args)}
    if args.every is not None:
        body["every"] = float(args.every) if _is_number(args.every) else args.every
    if args.fields is not None:
        try:
            body["fields"] = json.loads(args.fields)
        except ValueError as err:
            raise ClientError(f"--fields is not JSON: {err}", EXIT_USAGE) from None
    names = ("cron", "at", "name", "tz", "start", "end", "overlap", "misfire", "max_catch_up")
    for name in (*names, "queue", "cron_seconds"):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    if args.paused:
        body["paused"] = True
    return body


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _print(out: TextIO, args: argparse.Namespace, data: Any, text: str) -> None:
    out.write((dump(data) if args.json else text) + "\n")
