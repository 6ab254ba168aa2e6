"""``serve`` and ``worker`` options for the retention of finished jobs."""

from __future__ import annotations

import argparse
import math
from typing import Any

from runtime.domain.status import TERMINAL
from runtime.jobs.sweeper import JobRetention
from runtime.schedules.spec import parse_interval

KEEP_FOREVER = ("forever", "none")


def add_options(parser: argparse.ArgumentParser) -> None:
    statuses = ", ".join(s.value for s in TERMINAL)
    parser.add_argument(
        "--retain",
        action="append",
        metavar="STATUS=AGE",
        help=f"keep finished jobs of STATUS ({statuses}) for AGE ('7 days', '12h', seconds"
        " or 'forever'); repeatable",
    )
    parser.add_argument("--max-finished", type=int, help="keep at most N finished jobs")
    parser.add_argument(
        "--max-finished-per-type", type=int, help="keep at most N finished jobs of each job type"
    )
    parser.add_argument(
        "--sweep-interval", type=float, help="seconds between retention sweeps (default 60)"
    )


def retention_from(args: argparse.Namespace) -> JobRetention | None:
    """The policy the options describe (the defaults for what they leave out), or
    None when they say nothing. ``ValueError`` names a bad option."""
    fields: dict[str, Any] = {}
    known = {s.value for s in TERMINAL}
    for spec in args.retain or ():
        status, sep, age = spec.partition("=")
        status = status.strip()
        if not sep or status not in known:
            raise ValueError(
                f"--retain {spec!r}: expected STATUS=AGE with STATUS one of {sorted(known)}"
            )
        fields[status] = _age(spec, age.strip())
    for name in ("max_finished", "max_finished_per_type"):
        value = getattr(args, name)
        if value is not None:
            if value < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 0, got {value}")
            fields[name] = value
    return JobRetention(**fields) if fields else None


def sweep_interval_from(args: argparse.Namespace) -> float | None:
    """``--sweep-interval``, checked before anything starts; None if not given."""
    interval: float | None = args.sweep_interval
    if interval is not None and not (math.isfinite(interval) and interval > 0):
        raise ValueError(f"--sweep-interval must be > 0 seconds, got {interval}")
    return interval


def _age(spec: str, age: str) -> float | None:
    if age.lower() in KEEP_FOREVER:
        return None
    try:
        interval = parse_interval(age)
    except ValueError as err:
        raise ValueError(f"--retain {spec!r}: {err}") from None
    if interval is None:  # "continuous" is a schedule's word, not an age
        raise ValueError(f"--retain {spec!r}: not an age")
    return interval.total_seconds()
