"""One step in one fresh process: ``python -m benchmarks.child DRIVER STEP``.

Prints exactly one line, ``RESULT_PREFIX`` followed by JSON, for the runner.
Standard library only up to the driver import: peers' drivers run this from
their own virtualenvs.
"""

from __future__ import annotations

import argparse
import importlib
import json
from collections.abc import Mapping
from typing import Any

from benchmarks.probe import Step, StepFunction, peak_rss_mib

RESULT_PREFIX = "@@benchmark-result "


def run_step(
    driver: str, step_name: str, store: str, params: Mapping[str, float]
) -> dict[str, Any]:
    module = importlib.import_module(f"benchmarks.drivers.{driver}")
    steps: Mapping[str, StepFunction] = module.STEPS
    if step_name not in steps:
        raise LookupError(f"driver {driver!r} has no step {step_name!r}; it has {sorted(steps)}")
    metrics = steps[step_name](Step(store=store, params=params))
    return {"metrics": metrics, "peak_rss_mib": peak_rss_mib(), "versions": module.versions()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.child")
    parser.add_argument("driver", help="module under benchmarks.drivers")
    parser.add_argument("step", help="workload.step, e.g. drain.prepare")
    parser.add_argument("--store", default="", help="URL of this run's store")
    parser.add_argument("--params", default="{}", help="JSON object of sizes and settings")
    args = parser.parse_args(argv)
    record = run_step(args.driver, args.step, args.store, json.loads(args.params))
    print(RESULT_PREFIX + json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
