"""``python -m benchmarks``: parse the command line, run, write the results."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from benchmarks import page, report
from benchmarks.results import write_json
from benchmarks.runner import REPO_ROOT, STEP_TIMEOUT_S_DEFAULT, Plan, run
from benchmarks.systems import SYSTEMS_BY_NAME
from benchmarks.workloads import WORKLOADS_BY_NAME

REPEAT_DEFAULT = 3
OUT_DEFAULT = REPO_ROOT / "benchmarks" / "results"
DOCS_DEFAULT = REPO_ROOT / "docs" / "benchmarks.md"
RESULTS_FILE = "latest.json"

T = TypeVar("T")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run Callboard's workloads side by side with peers and limits.",
    )
    parser.add_argument(
        "--workloads",
        default="all",
        help=f"comma-separated, or 'all': {', '.join(WORKLOADS_BY_NAME)}",
    )
    parser.add_argument(
        "--systems",
        default="all",
        help=f"comma-separated, or 'all': {', '.join(SYSTEMS_BY_NAME)}",
    )
    parser.add_argument(
        "--repeat",
        type=_positive_int,
        default=REPEAT_DEFAULT,
        help="repetitions of each workload; the median is reported (default %(default)s)",
    )
    parser.add_argument(
        "--scale",
        type=_positive_float,
        default=1.0,
        help="multiplies every size (job counts, calls); default %(default)s",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=OUT_DEFAULT,
        help=f"directory for {RESULTS_FILE} (default %(default)s)",
    )
    parser.add_argument(
        "--docs",
        type=Path,
        default=DOCS_DEFAULT,
        help="markdown page whose generated part is rewritten (default %(default)s)",
    )
    parser.add_argument(
        "--step-timeout",
        type=_positive_float,
        default=STEP_TIMEOUT_S_DEFAULT,
        help="seconds before a step's process is killed (default %(default)s)",
    )
    parser.add_argument(
        "--no-install",
        action="store_true",
        help="do not install missing peer virtualenvs; report those peers as n/a",
    )
    parser.add_argument(
        "--parallel",
        type=_positive_int,
        default=1,
        help="steps run at once; above 1 their timings disturb each other, so only"
        " for checking that everything runs (default %(default)s)",
    )
    return parser


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {value}")
    return value


def _select(text: str, known: Mapping[str, T], what: str) -> tuple[T, ...]:
    if text == "all":
        return tuple(known.values())
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise SystemExit(
            f"unknown {what}: {', '.join(unknown) or text!r}; known: {', '.join(known)}"
        )
    return tuple(known[name] for name in dict.fromkeys(names))


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks; exit 1 when a run crashed or did not verify its jobs."""
    args = _parser().parse_args(argv)
    plan = Plan(
        workloads=_select(args.workloads, WORKLOADS_BY_NAME, "workload"),
        systems=_select(args.systems, SYSTEMS_BY_NAME, "system"),
        repeat=args.repeat,
        scale=args.scale,
        step_timeout_s=args.step_timeout,
        install=not args.no_install,
        parallel=args.parallel,
    )
    document = run(plan, _log)
    write_json(document, args.out / RESULTS_FILE)
    page.write(args.docs, report.render(document))
    _log(f"wrote {args.out / RESULTS_FILE} and {args.docs}")
    failed = any(
        outcome["status"] == "error"
        for workloads in document["results"].values()
        for outcome in workloads.values()
    )
    return 1 if failed else 0
