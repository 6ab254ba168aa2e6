"""``callboard``: run the service, and talk to it.

Server side: ``serve`` (API + workers + scheduler) and ``worker`` (workers
only). Client side (over HTTP; ``--url`` or ``CALLBOARD_URL``, ``--token``
or ``CALLBOARD_TOKEN``): ``enqueue``, ``jobs``, ``queues``, ``schedules``,
``types``. Tables for people, ``--json`` for scripts. Exit codes: 0 done,
1 the job failed, 2 bad input, 3 auth, 4 not found, 5 conflict,
6 no server, 7 the database cannot be used (``serve``, ``worker``),
124 still running after ``--timeout``, 130 interrupted.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import inspect
import ipaddress
import os
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any, TextIO

import anyio
from pydantic import ValidationError

from actors import GRACE_PERIOD_DEFAULT, POLL_INTERVAL_DEFAULT
from runtime.api.app import RouteAdder
from runtime.api.auth import AuthConfigError, load_tokens
from runtime.api.hook_policy import HOOK_ALLOW_ENV
from runtime.api.server import BIND_DEFAULT, InsecureBind
from runtime.api.state import (
    BODY_TIMEOUT_DEFAULT,
    HEADER_TIMEOUT_DEFAULT,
    SEND_TIMEOUT_DEFAULT,
    STREAMS_PER_TOKEN_DEFAULT,
)
from runtime.cli import commands, retention, schedules
from runtime.cli.client import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    TOKEN_ENV,
    URL_DEFAULT,
    URL_ENV,
    ApiClient,
    ClientError,
)
from runtime.cli.demo import register_demo
from runtime.cli.logs import configure_logging
from runtime.cli.service import (
    EXIT_STORE,
    LOOPS,
    ServeOptions,
    make_hooks,
    run_service,
    worker_queues,
)
from runtime.cli.settings import CONFIG_ENV, LOG_LEVELS, ServiceSettings, load_settings
from runtime.domain.errors import CallboardError, StorageUnavailable, StoreUnusable
from runtime.domain.extras import MissingExtra
from runtime.gcpause import freeze_startup_objects
from runtime.jobs.registry import Registry, default_registry
from runtime.runtime import (
    DATABASE_URL_DEFAULT,
    HEARTBEAT_INTERVAL_DEFAULT,
    LEASE_DEFAULT,
    POSTGRES_POLL_INTERVAL_DEFAULT,
    Runtime,
)
from runtime.settings import check_settings
from runtime.store.engine import migrate_store

EXIT_LISTEN = 8  # serve: the API cannot listen on its address
CONTROL_ACTIONS = ("cancel", "suspend", "resume", "retry", "delete")
BULK_ACTIONS = ("retry", "cancel", "delete")


def _client_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help=f"server URL (${URL_ENV}; default {URL_DEFAULT})")
    common.add_argument("--token", help=f"bearer token (${TOKEN_ENV})")
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    return common


def _runtime_options() -> argparse.ArgumentParser:
    # Defaults are None: an absent flag leaves the setting to the environment,
    # the config file or the default (runtime.cli.settings).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help=f"TOML settings file (${CONFIG_ENV})")
    common.add_argument(
        "--db",
        help=f"database URL ($CALLBOARD_DB or $DATABASE_URL; default {DATABASE_URL_DEFAULT})",
    )
    common.add_argument(
        "--app",
        action="append",
        dest="apps",
        help="module with job types (@job or register(registry)), maybe api_routes (repeatable)",
    )
    retention.add_options(common)
    common.add_argument(
        "--hook-allow-network",
        action="append",
        dest="hook_allow",
        type=_network,
        metavar="CIDR",
        help="let status hooks reach this non-public network, e.g. 127.0.0.0/8 (repeatable; "
        f"also ${HOOK_ALLOW_ENV}, comma-separated)",
    )
    common.add_argument(
        "--hook-allow-host",
        action="append",
        dest="hook_allow",
        metavar="NAME",
        help="let status hooks reach this host name, whatever it resolves to (repeatable)",
    )
    common.add_argument(
        "--grace-period",
        type=float,
        help=f"seconds running jobs get to finish on shutdown (default {GRACE_PERIOD_DEFAULT:g})",
    )
    common.add_argument(
        "--lease",
        type=float,
        help=f"seconds without a heartbeat before another process rescues this one's jobs "
        f"(default {LEASE_DEFAULT:g})",
    )
    common.add_argument(
        "--heartbeat-interval",
        type=float,
        help="seconds between heartbeats and rescue scans "
        f"(default {HEARTBEAT_INTERVAL_DEFAULT:g})",
    )
    common.add_argument(
        "--poll-interval",
        type=float,
        help=f"seconds between looks for due jobs (default {POLL_INTERVAL_DEFAULT:g} on SQLite, "
        f"{POSTGRES_POLL_INTERVAL_DEFAULT:g} on PostgreSQL, where notices wake workers)",
    )
    common.add_argument(
        "--no-migrate",
        dest="migrate",
        action="store_false",
        default=None,
        help="refuse a database schema that is not current instead of upgrading it",
    )
    common.add_argument("--log-level", choices=LOG_LEVELS, help="default info")
    common.add_argument("--log-format", choices=("text", "json"), help="default text")
    common.add_argument(
        "--otel",
        action="store_true",
        default=None,
        help="OpenTelemetry spans for enqueue and each attempt, through the global tracer "
        "provider (the otel extra; docs/operations.md)",
    )
    return common


def _network(text: str) -> str:
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a network such as 10.0.0.0/8: {text!r}") from None


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", help="comma-separated statuses")
    parser.add_argument("--type")
    parser.add_argument("--group")
    parser.add_argument("--queue")
    parser.add_argument("--schedule-id")
    parser.add_argument("--idempotency-key")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callboard",
        description=plain(__doc__ or ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"callboard {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    client, rt_opts = _client_options(), _runtime_options()

    serve = sub.add_parser("serve", parents=[rt_opts], help="API, workers and scheduler")
    serve.add_argument("--bind", help=f"HOST:PORT (default {BIND_DEFAULT})")
    serve.add_argument(
        "--demo", action="store_true", default=None, help="demo job types and schedules"
    )
    serve.add_argument(
        "--tokens", dest="tokens_file", help="TOML file of bearer tokens (or $CALLBOARD_TOKENS)"
    )
    serve.add_argument(
        "--insecure", action="store_true", default=None, help="allow no tokens off loopback"
    )
    serve.add_argument("--queue", action="append", dest="queues", help="NAME=CAPACITY")
    serve.add_argument("--body-limit", type=int, help="largest request body in bytes")
    serve.add_argument(
        "--header-timeout",
        type=float,
        help=f"seconds for a request's headers; also the keep-alive idle time "
        f"(default {HEADER_TIMEOUT_DEFAULT:g})",
    )
    serve.add_argument(
        "--body-timeout",
        type=float,
        help=f"seconds for a request's body (default {BODY_TIMEOUT_DEFAULT:g})",
    )
    serve.add_argument(
        "--send-timeout",
        type=float,
        help=f"seconds one write to a client may take (default {SEND_TIMEOUT_DEFAULT:g})",
    )
    serve.add_argument(
        "--streams-per-token",
        type=int,
        help=f"open event streams per token (default {STREAMS_PER_TOKEN_DEFAULT})",
    )

    worker = sub.add_parser("worker", parents=[rt_opts], help="workers only, no API")
    worker.add_argument("--queues", help="run only these queues: a,b or a=4,b")
    worker.add_argument(
        "--demo", action="store_true", default=None, help="register the demo job types"
    )
    for command in (serve, worker):
        command.add_argument(
            "--loop",
            choices=LOOPS,
            help="the event loop the service runs on, API included: asyncio for handlers "
            "that need it (asyncio drivers) (default trio)",
        )

    migrate = sub.add_parser("migrate", help="create or upgrade the database schema")
    migrate.add_argument("--config", metavar="FILE", help=f"TOML settings file (${CONFIG_ENV})")
    migrate.add_argument("--db", help="database URL ($CALLBOARD_DB or $DATABASE_URL)")

    enqueue = sub.add_parser("enqueue", parents=[client], help="store a job")
    enqueue.add_argument("type")
    enqueue.add_argument("--params", help="params as a JSON object")
    enqueue.add_argument("-p", "--param", action="append", help="one param: key=value")
    enqueue.add_argument("--queue")
    enqueue.add_argument("--priority", type=int)
    enqueue.add_argument("--delay", type=float, help="seconds from now")
    enqueue.add_argument("--at", help="ISO time with a zone, e.g. 2030-01-01T09:00:00Z")
    enqueue.add_argument("--idempotency-key")
    enqueue.add_argument("--timeout", type=float, help="the job's time limit in seconds")
    enqueue.add_argument("--max-retries", type=int)
    enqueue.add_argument("--lock-key")
    enqueue.add_argument("--status-hook", help="URL told of each status change")
    enqueue.add_argument("--retry-delay", type=float, help="seconds before the first retry")
    enqueue.add_argument("--description", help="free text about this job")
    enqueue.add_argument("--wait", action="store_true", help="wait until it finishes")
    enqueue.add_argument("--wait-timeout", type=float, help="give up waiting after seconds")

    jobs = sub.add_parser("jobs", help="list, show, control and watch jobs")
    actions = jobs.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", parents=[client], help="jobs, newest first")
    _filters(listing)
    listing.add_argument("--page", type=int, default=1)
    listing.add_argument("--page-size", type=int, default=20)
    actions.add_parser("show", parents=[client], help="one job").add_argument("id")
    for action in CONTROL_ACTIONS:
        control = actions.add_parser(action, parents=[client], help=f"{action} a job")
        control.add_argument("id")
        if action == "cancel":
            control.add_argument("--reason", help="why (kept on the job and in its log)")
    bulk = actions.add_parser(
        "bulk", parents=[client], help="retry, cancel or delete every job matching filters"
    )
    bulk.add_argument("bulk_action", choices=BULK_ACTIONS, metavar="{retry,cancel,delete}")
    _filters(bulk)
    bulk.add_argument("--search", help="a job id, its first or last hex digits, or a key's start")
    bulk.add_argument("--tenant", help="admins: only this tenant's jobs")
    bulk.add_argument("--limit", type=int, help="at most this many jobs (newest first)")
    bulk.add_argument("--dry-run", action="store_true", help="only count the matching jobs")
    logs = actions.add_parser("logs", parents=[client], help="a job's log")
    logs.add_argument("id")
    logs.add_argument("--level")
    logs.add_argument("--since", help="ISO time with a zone")
    logs.add_argument("--limit", type=int)
    wait = actions.add_parser("wait", parents=[client], help="wait for a job to finish")
    wait.add_argument("id")
    wait.add_argument("--timeout", type=float)
    watch = actions.add_parser("watch", parents=[client], help="live progress bars")
    watch.add_argument("id", nargs="?", help="one job (default: every job)")
    _filters(watch)
    watch.add_argument("--limit", type=int, help="stop after this many jobs finished")

    queues = sub.add_parser("queues", parents=[client], help="list, pause, resume, resize")
    queue_actions = queues.add_subparsers(dest="action", metavar="ACTION")
    queue_actions.add_parser("list", parents=[client])
    for action in ("show", "pause", "resume"):
        queue_actions.add_parser(action, parents=[client]).add_argument("name")
    resize = queue_actions.add_parser("set-capacity", parents=[client])
    resize.add_argument("name")
    resize.add_argument("capacity", type=int)

    schedules.add_parser(sub, client)

    types = sub.add_parser("types", parents=[client], help="job types and their params")
    types.add_argument("name", nargs="?")
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    args = build_parser().parse_args(argv)
    try:
        if args.command in ("serve", "worker"):
            return _serve(args)
        if args.command == "migrate":
            return _migrate(args, out)
        return _client_command(args, out)
    except ClientError as err:
        return commands.fail(str(err), err.exit_code)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _client_command(args: argparse.Namespace, out: TextIO) -> int:
    url = args.url or os.environ.get(URL_ENV) or URL_DEFAULT
    token = args.token or os.environ.get(TOKEN_ENV)
    client = ApiClient(url, token)
    try:
        if args.command == "enqueue":
            return commands.enqueue(client, args, out)
        if args.command == "queues":
            return commands.queues(client, args, out)
        if args.command == "schedules":
            return schedules.run(client, args, out)
        if args.command == "types":
            return commands.types(client, args, out)
        return _jobs(client, args, out)
    finally:
        client.close()


def _jobs(client: ApiClient, args: argparse.Namespace, out: TextIO) -> int:
    if args.action in CONTROL_ACTIONS:
        return commands.jobs_control(client, args, out)
    handler = {
        "list": commands.jobs_list,
        "bulk": commands.jobs_bulk,
        "show": commands.jobs_show,
        "logs": commands.jobs_logs,
        "wait": commands.jobs_wait,
        "watch": commands.jobs_watch,
    }[args.action]
    return handler(client, args, out)


SETTING_FLAGS = (
    *("db", "apps", "demo", "bind", "tokens_file", "insecure", "body_limit", "queues"),
    *("header_timeout", "body_timeout", "send_timeout", "streams_per_token"),
    *("grace_period", "poll_interval", "hook_allow", "log_level", "log_format", "migrate"),
    *("lease", "heartbeat_interval", "loop", "otel"),
    *("retain", "max_finished", "max_finished_per_type", "sweep_interval"),
)


def service_settings(args: argparse.Namespace, env: Mapping[str, str]) -> ServiceSettings:
    """The settings of ``serve`` or ``worker``: flags over ``env`` over the config file."""
    flags = {name: getattr(args, name, None) for name in SETTING_FLAGS}
    if isinstance(flags["queues"], str):  # worker --queues a,b
        flags["queues"] = flags["queues"].split(",")
    return load_settings(flags, env, args.config)


def _serve(args: argparse.Namespace) -> int:
    try:
        settings = service_settings(args, os.environ)
    except (ValueError, ValidationError) as err:
        return commands.fail(_setting_error(err), EXIT_USAGE)
    configure_logging(settings.log_level, settings.log_format)
    registry = _registry(settings)
    try:
        # The allowances come from the settings (flags over CALLBOARD_HOOK_ALLOW).
        hooks = make_hooks(registry, settings.hook_env(), settings.hook_allow)
        options = ServeOptions(
            db=settings.db,
            bind=None,
            demo=settings.demo,
            grace_period=settings.grace_period,
            poll_interval=settings.poll_interval,
            lease=settings.lease,
            heartbeat_interval=settings.heartbeat_interval,
            migrate=settings.migrate,
            otel=settings.otel,
        )
        options.retention = settings.retention()
        options.sweep_interval = settings.sweep_interval
        if args.command == "serve":
            options.bind = settings.bind
            options.tokens = tuple(load_tokens(settings.tokens_file, os.environ))
            options.insecure = settings.insecure
            options.body_limit = settings.body_limit
            options.header_timeout = settings.header_timeout
            options.body_timeout = settings.body_timeout
            options.send_timeout = settings.send_timeout
            options.streams_per_token = settings.streams_per_token
            options.queues = dict(_queue_spec(q) for q in settings.queues or ())
            options.routes = _app_routes(settings.apps)
        else:
            options.queues = worker_queues(registry, settings.queues)
        _check_runtime_settings(options.runtime_fields())
        freeze_startup_objects()  # this process exists to run jobs (see runtime.gcpause)
        return anyio.run(run_service, registry, hooks, options, backend=settings.loop)
    except (StoreUnusable, StorageUnavailable, MissingExtra, OSError, BaseExceptionGroup) as err:
        found = _startup_error(err)
        if found is None:
            raise
        if isinstance(found, OSError):
            return commands.fail(_listen_error(found, settings.bind), EXIT_LISTEN)
        return commands.fail(
            str(found), EXIT_USAGE if isinstance(found, MissingExtra) else EXIT_STORE
        )
    except (AuthConfigError, InsecureBind, CallboardError, ValueError, ValidationError) as err:
        return commands.fail(str(err), EXIT_USAGE)


def _check_runtime_settings(given: dict[str, Any]) -> None:
    """Bad settings are a usage error before anything starts: Runtime's own
    checks, with its defaults for the settings not given."""
    checked = inspect.signature(check_settings).parameters
    defaults = inspect.signature(Runtime.__init__).parameters
    base = {name: defaults[name].default for name in checked}
    if base["poll_interval"] is None:  # the store picks it: any default passes the check
        base["poll_interval"] = POLL_INTERVAL_DEFAULT
    check_settings(**{**base, **given})


def _migrate(args: argparse.Namespace, out: TextIO) -> int:
    try:
        settings = service_settings(args, os.environ)
    except (ValueError, ValidationError) as err:
        return commands.fail(_setting_error(err), EXIT_USAGE)
    configure_logging(settings.log_level, settings.log_format)
    try:
        before, after = migrate_store(settings.db)
    except MissingExtra as err:
        return commands.fail(str(err), EXIT_USAGE)
    except (StoreUnusable, ValueError) as err:
        return commands.fail(str(err), EXIT_STORE)
    if before == after:
        print(f"schema already at revision {after}", file=out)
    else:
        print(f"schema upgraded from revision {before or 'none'} to {after}", file=out)
    return 0


def _startup_error(err: BaseException) -> Exception | None:
    """The start-up error ``err`` is (a database that cannot be used, a missing
    extra, an address the API cannot listen on), or the one it holds if it is a
    group of one (Hypercorn nests them)."""
    while isinstance(err, BaseExceptionGroup) and len(err.exceptions) == 1:
        err = err.exceptions[0]
    if isinstance(err, OSError):
        return err if err.errno in _LISTEN_ERRORS else None
    usable = isinstance(err, StoreUnusable | StorageUnavailable | MissingExtra)
    return err if usable and isinstance(err, Exception) else None


_LISTEN_ERRORS = {
    errno.EADDRINUSE: "the address is in use: stop what listens there or pick another",
    errno.EADDRNOTAVAIL: "no interface of this host has that address: pick one it has",
    errno.EACCES: "not permitted (ports below 1024 need privileges): pick a higher port",
}


def _listen_error(err: OSError, bind: str) -> str:
    why = _LISTEN_ERRORS.get(err.errno or 0, str(err))
    return f"cannot listen on {bind}: {why} (--bind or CALLBOARD_BIND)"


def _setting_error(err: ValueError | ValidationError) -> str:
    """One line naming each bad setting as flag and environment variable."""
    if not isinstance(err, ValidationError):
        return str(err)
    return "; ".join(_one_setting_error(e["loc"], e["msg"], e["input"]) for e in err.errors())


def _one_setting_error(loc: tuple[int | str, ...], msg: str, value: object) -> str:
    name = str(loc[0]) if loc else "?"
    where = f"--{name.replace('_', '-')}, ${CONFIG_ENV.removesuffix('CONFIG')}{name.upper()}"
    return f"setting {name} ({where}): {msg}, got {value!r}"


def _registry(settings: ServiceSettings) -> Registry:
    """The default registry, with what each ``--app`` module registers: on import
    (``@job``), or through its ``register(registry)`` function if it has one."""
    registry = default_registry
    for name in settings.apps:
        module = importlib.import_module(name)
        register = getattr(module, "register", None)
        if callable(register):
            register(registry)
    if settings.demo and "demo.count" not in {t.name for t in registry.types()}:
        register_demo(registry)
    return registry


def _app_routes(names: list[str]) -> tuple[RouteAdder, ...]:
    """``api_routes(api, state)`` of each ``--app`` module that defines one."""
    found = (getattr(importlib.import_module(name), "api_routes", None) for name in names)
    return tuple(add for add in found if callable(add))


def plain(text: str) -> str:
    """reST docstring text as people read it: no double backquotes."""
    return text.replace("``", "")


def _version() -> str:
    try:
        return metadata.version("callboard")
    except metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"


def _queue_spec(text: str) -> tuple[str, int]:
    name, _, capacity = text.partition("=")
    if not name or not capacity.isdigit():
        raise ValueError(f"--queue wants NAME=CAPACITY, got {text!r}")
    return name, int(capacity)
