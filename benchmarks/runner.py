"""Runs every (system, workload) pair, interleaved, each step in a fresh process.

For each repetition, for each workload, every system runs once, so drift in
the machine (thermal, page cache, noisy neighbours) spreads over all systems
instead of landing on one. The system order rotates with the repetition so
that no system always goes first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import machine
from benchmarks.child import RESULT_PREFIX
from benchmarks.environments import InstallFailed
from benchmarks.probe import JOBS, VERIFIED
from benchmarks.results import Outcome
from benchmarks.stores import StoreKind, StoreUnavailable, check, provision
from benchmarks.systems import System
from benchmarks.workloads import PREPARE, Workload

REPO_ROOT = Path(__file__).resolve().parent.parent

STEP_TIMEOUT_S_DEFAULT = 900.0

Log = Callable[[str], None]


@dataclass(frozen=True)
class Plan:
    workloads: tuple[Workload, ...]
    systems: tuple[System, ...]
    repeat: int
    scale: float
    step_timeout_s: float = STEP_TIMEOUT_S_DEFAULT
    install: bool = True
    """Install missing peer virtualenvs; otherwise their systems are reported n/a."""
    parallel: int = 1
    """Steps run at once: above 1 they disturb each other's timings (smoke runs only)."""


class StepFailed(Exception):
    """A step crashed, timed out, printed no result, or its jobs did not all finish."""


@dataclass(frozen=True)
class _Cell:
    system: System
    workload: Workload


def run(plan: Plan, log: Log) -> dict[str, Any]:
    """Run the plan; return the document written to ``latest.json``."""
    interpreters = _interpreters(plan, log)
    outcomes = {
        (system.name, workload.name): _outcome(system, workload, interpreters[system.name])
        for system in plan.systems
        for workload in plan.workloads
    }
    versions: dict[str, dict[str, str]] = {system.name: {} for system in plan.systems}

    def run_cell(repetition: int, cell: _Cell) -> None:
        system, workload = cell.system, cell.workload
        outcome = outcomes[system.name, workload.name]
        python = interpreters[system.name]
        if outcome.not_applicable is not None or not isinstance(python, Path):
            return
        label = f"[{repetition + 1}/{plan.repeat}] {workload.name} on {system.name}"
        started = time.monotonic()
        try:
            params = workload.params(plan.scale)
            measured = _run_once(cell, params, python, plan, versions)
        except (StepFailed, StoreUnavailable) as error:
            log(f"{label}: FAILED: {error}")
            outcome.errors.append(f"repetition {repetition + 1}: {error}")
            return
        log(f"{label}: {time.monotonic() - started:.1f} s")
        outcome.repetitions.append(measured)

    cells = [
        (repetition, _Cell(system, workload))
        for repetition in range(plan.repeat)
        for workload in plan.workloads
        for system in _rotated(plan.systems, repetition)
    ]
    if plan.parallel <= 1:
        for repetition, cell in cells:
            run_cell(repetition, cell)
    else:  # each step is a process of its own: threads only wait for them
        with ThreadPoolExecutor(max_workers=plan.parallel) as pool:
            list(pool.map(lambda item: run_cell(*item), cells))
    return _document(plan, outcomes, versions)


def _interpreters(plan: Plan, log: Log) -> dict[str, Path | str]:
    """The python each system runs under, or why it cannot run."""
    found: dict[str, Path | str] = {}
    stores = _store_problems(plan, log)
    for system in plan.systems:
        environment = system.environment
        if stores.get(system.store) is not None:
            # Checked first: no point installing a peer that has nothing to run on.
            found[system.name] = f"store unavailable: {stores[system.store]}"
        elif environment is None:
            found[system.name] = Path(sys.executable)
        elif environment.is_ready():
            found[system.name] = environment.python()
        elif not plan.install:
            found[system.name] = f"its virtualenv is not installed ({environment.path()})"
        else:
            try:
                found[system.name] = environment.ensure(log)
            except InstallFailed as error:
                found[system.name] = f"install failed: {error}"
    return found


def _store_problems(plan: Plan, log: Log) -> dict[StoreKind, str | None]:
    """Each store kind the plan needs, mapped to why it cannot be provisioned (or None)."""
    problems: dict[StoreKind, str | None] = {}
    for kind in dict.fromkeys(system.store for system in plan.systems):
        try:
            check(kind)
        except StoreUnavailable as error:
            log(f"{kind} systems are n/a: {error}")
            problems[kind] = str(error)
        else:
            problems[kind] = None
    return problems


def _outcome(system: System, workload: Workload, python: Path | str) -> Outcome:
    """An empty outcome, already n/a where the system cannot run the workload at all."""
    if isinstance(python, str):
        return Outcome(not_applicable=python)
    reason = system.reason_not_applicable(workload.name)
    if reason is not None:
        return Outcome(not_applicable=reason)
    skipped = {
        step: why
        for step in workload.measured_steps
        if (why := system.reason_not_applicable(workload.name, step)) is not None
    }
    if len(skipped) == len(workload.measured_steps):
        return Outcome(not_applicable=next(iter(skipped.values())))
    return Outcome(skipped_steps=skipped)


def _rotated(systems: tuple[System, ...], repetition: int) -> tuple[System, ...]:
    shift = repetition % len(systems) if systems else 0
    return systems[shift:] + systems[:shift]


def _run_once(
    cell: _Cell,
    params: Mapping[str, float],
    python: Path,
    plan: Plan,
    versions: dict[str, dict[str, str]],
) -> dict[str, float]:
    """Run a workload's steps against one fresh store; return the merged measurements."""
    system, workload = cell.system, cell.workload
    measured: dict[str, float] = {}
    with provision(system.store) as store:
        for step in workload.steps:
            if step == PREPARE and system.store == "none":
                continue
            if system.reason_not_applicable(workload.name, step) is not None:
                continue
            name = f"{workload.name}.{step}"
            record = _spawn(python, system.driver, name, store, params, plan.step_timeout_s)
            versions[system.name].update(record.get("versions", {}))
            metrics: dict[str, float] = record["metrics"]
            if step != PREPARE:
                _verify(name, metrics)
            measured.update({f"{step}.{key}": value for key, value in metrics.items()})
    return measured


def _spawn(
    python: Path,
    driver: str,
    step: str,
    store: str,
    params: Mapping[str, float],
    timeout_s: float,
) -> dict[str, Any]:
    command = [str(python), "-m", "benchmarks.child", driver, step, "--store", store]
    command += ["--params", json.dumps(dict(params))]
    # The repository on the path lets a peer's interpreter import this package.
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    try:
        completed = subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise StepFailed(f"{step} timed out after {timeout_s:g} s") from error
    if completed.returncode != 0:
        raise StepFailed(f"{step} exited with {completed.returncode}: {_tail(completed.stderr)}")
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            record: dict[str, Any] = json.loads(line.removeprefix(RESULT_PREFIX))
            return record
    raise StepFailed(f"{step} printed no result: {_tail(completed.stderr)}")


def _tail(text: str, lines: int = 5) -> str:
    return " | ".join(text.strip().splitlines()[-lines:]) or "(no output)"


def _verify(step: str, metrics: Mapping[str, float]) -> None:
    if JOBS not in metrics or VERIFIED not in metrics:
        raise StepFailed(f"{step} reported no verified job count")
    if metrics[VERIFIED] != metrics[JOBS]:
        raise StepFailed(
            f"{step}: the store shows {metrics[VERIFIED]:g} of {metrics[JOBS]:g} jobs done"
        )


def _document(
    plan: Plan,
    outcomes: Mapping[tuple[str, str], Outcome],
    versions: Mapping[str, Mapping[str, str]],
) -> dict[str, Any]:
    return {
        "machine": machine.describe(),
        "run": {
            "scale": plan.scale,
            "repeat": plan.repeat,
            "order": "for each repetition, for each workload, every system (rotated)",
        },
        "workloads": {
            workload.name: {"summary": workload.summary, "params": workload.params(plan.scale)}
            for workload in plan.workloads
        },
        "systems": {
            system.name: {
                "role": system.role,
                "store": system.store,
                "summary": system.summary,
                "versions": dict(versions[system.name]),
            }
            for system in plan.systems
        },
        "results": {
            system.name: {
                workload.name: outcomes[system.name, workload.name].to_json()
                for workload in plan.workloads
            }
            for system in plan.systems
        },
    }
