"""Every workload at a tiny scale, so the harness cannot rot. Nothing here is timed.

Peers (huey, procrastinate, pgqueuer) run only when their virtualenv is
already installed: the suite must not depend on installing a peer from PyPI.
The PostgreSQL systems run only when ``CALLBOARD_TEST_POSTGRES_URL`` names a
server; the harness then creates (and drops) its databases there.
"""

from __future__ import annotations

import ast
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import benchmarks
from benchmarks import cli, page, stores
from benchmarks.systems import SYSTEMS, SYSTEMS_BY_NAME
from benchmarks.workloads import WORKLOADS

# The module's fixture runs every (system, workload) step in a process of its
# own, some 50 of them: more than the suite's default per-test timeout allows.
pytestmark = pytest.mark.timeout(600)

SCALE = 0.005
POSTGRES_ENV = "CALLBOARD_TEST_POSTGRES_URL"
PROSE = "# Benchmarks\n\nHand-written prose that a run must keep.\n"


def _why_not(system: str) -> str | None:
    """Why the smoke run leaves ``system`` out on this machine, or None."""
    spec = SYSTEMS_BY_NAME[system]
    if spec.store == "postgresql" and not os.environ.get(POSTGRES_ENV):
        return f"{POSTGRES_ENV} is not set: no PostgreSQL server to run {system} on"
    environment = spec.environment
    if environment is not None and not environment.is_ready():
        return (
            f"{system}'s virtualenv is not installed at {environment.path()}; "
            f"`python -m benchmarks --systems {system}` installs it"
        )
    return None


RUNNABLE = tuple(system.name for system in SYSTEMS if _why_not(system.name) is None)


@dataclass(frozen=True)
class Run:
    exit_code: int
    document: dict[str, Any]
    docs: str


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("benchmarks")
    docs = out / "benchmarks.md"
    docs.write_text(f"{PROSE}\n{page.MARKER}\n\nA stale table.\n")
    with pytest.MonkeyPatch.context() as patch:
        if os.environ.get(POSTGRES_ENV):
            # The test server's database only hosts CREATE/DROP DATABASE.
            patch.setenv(stores.POSTGRES_URL_ENV, os.environ[POSTGRES_ENV])
        exit_code = cli.main(
            [
                *("--systems", ",".join(RUNNABLE)),
                *("--scale", str(SCALE), "--repeat", "1", "--no-install"),
                *("--out", str(out), "--docs", str(docs), "--step-timeout", "120"),
                *("--parallel", "2"),  # nothing is timed: both cores
            ]
        )
    document = json.loads((out / cli.RESULTS_FILE).read_text())
    return Run(exit_code, document, docs.read_text())


def test_run_succeeds_and_writes_machine_info(run: Run) -> None:
    assert run.exit_code == 0
    assert {"cpu_count", "python", "sqlite", "date"} <= set(run.document["machine"])


def test_docs_keep_the_prose_and_replace_the_table(run: Run) -> None:
    prose, marker, generated = run.docs.partition(page.MARKER)
    assert marker
    assert prose.startswith(PROSE)
    assert "A stale table." not in generated
    for workload in WORKLOADS:
        assert f"| {workload.name} |" in generated
    assert "### SQLite" in generated
    assert ("### PostgreSQL" in generated) == ("callboard_pg" in RUNNABLE)


@pytest.mark.parametrize("system", list(SYSTEMS_BY_NAME))
def test_every_applicable_step_verified_its_jobs(run: Run, system: str) -> None:
    if (why := _why_not(system)) is not None:
        pytest.skip(why)
    spec = SYSTEMS_BY_NAME[system]
    results = run.document["results"][system]
    for workload in WORKLOADS:
        outcome = results[workload.name]
        if spec.reason_not_applicable(workload.name) is not None:
            assert outcome["status"] == "n/a", workload.name
            continue
        assert outcome["status"] == "ok", (workload.name, outcome)
        measured = outcome["median"]
        for step in workload.measured_steps:
            if spec.reason_not_applicable(workload.name, step) is None:
                jobs, verified = measured[f"{step}.jobs"], measured[f"{step}.verified"]
                assert verified == jobs > 0, (workload.name, step)


def test_child_side_modules_use_only_the_standard_library() -> None:
    # Peers' drivers import these from a virtualenv that has only the peer.
    root = Path(benchmarks.__file__).parent
    for name in ("__init__.py", "child.py", "probe.py", "drivers/__init__.py"):
        tree = ast.parse((root / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                assert top in sys.stdlib_module_names or module == "benchmarks.probe", (
                    name,
                    module,
                )
