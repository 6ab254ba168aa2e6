"""SIGKILL the processes that run child jobs and chords, at random moments.

Worker processes (``workflow_support.py``) enqueue parents that spawn
children and wait for them, and chords, and run them; the test kills them
after a random number of acknowledged workflows plus a random pause
(mid-spawn, mid-wait, mid-fan-in: wherever they are) and starts them again
on the same store, which rescues what the dead ones ran. On PostgreSQL two
processes share the store, one running the parents and callbacks, the
other the children and members, and either may die. At the end a runtime
in this process finishes what is left, and every acknowledged workflow has
ended right: a parent has exactly the children it spawned (none twice),
all completed, and returns their sum; a chord's callback returns its
members' sum. 4 rounds in CI, 300 under ``--long``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import trio

from runtime import JobStatus, Runtime
from tests.chaos.battery_support import chaos_timeout
from tests.chaos.workflow_support import registry, tree_total

ROOT = Path(__file__).resolve().parents[2]
ROUNDS_CI = 4
ROUNDS_LONG = 300
Workflows = dict[uuid.UUID, tuple[str, int]]


class Processes:
    """The worker processes of one store, by role."""

    def __init__(self, url: str, roles: list[str], log: Path) -> None:
        self.url, self.roles, self.log = url, roles, log
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start_missing(self, rng: random.Random) -> None:
        for role in self.roles:
            if role not in self.running:
                with self.log.open("ab") as stderr:
                    self.running[role] = subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "tests.chaos.workflow_support",
                            self.url,
                            role,
                            str(rng.randrange(2**32)),
                        ],
                        cwd=ROOT,
                        env={**os.environ, "PYTHONPATH": str(ROOT)},
                        stdout=subprocess.PIPE if role != "leaves" else subprocess.DEVNULL,
                        stderr=stderr,
                    )

    def kill(self, role: str) -> bytes:
        """Kill ``role``'s process; what it printed and nobody read yet."""
        child = self.running.pop(role)
        child.send_signal(signal.SIGKILL)
        rest = child.stdout.read() if child.stdout is not None else b""
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
        return rest


def _round(procs: Processes, rng: random.Random, workflows: Workflows) -> None:
    """Start what is not running, read some acknowledgements, kill at random."""
    procs.start_missing(rng)
    enqueuer = procs.roles[0]
    out = procs.running[enqueuer].stdout
    assert out is not None
    acked = b""
    try:
        for _ in range(rng.randint(1, 15)):
            line = out.readline()
            assert line, f"the worker exited before it was killed: {_tail(procs.log)}"
            acked += line
        time.sleep(rng.uniform(0, 0.2))  # a random moment, not a timing assertion
    finally:
        victims = [r for r in procs.roles if rng.random() < 0.6] or [rng.choice(procs.roles)]
        for role in victims:
            rest = procs.kill(role)
            if role == enqueuer:
                acked += rest
    if enqueuer not in victims:  # it goes on: what it printed since is read next round
        acked = acked[: acked.rfind(b"\n") + 1]
    text = acked.decode()
    for line in text[: text.rfind("\n") + 1].splitlines():
        kind, job_id, n = line.split()
        workflows[uuid.UUID(job_id)] = (kind, int(n))


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:] if log.exists() else ""


async def _finish_and_check(url: str, workflows: Workflows) -> dict[str, int]:
    async with Runtime(url, registry=registry(), lease=1.0, heartbeat_interval=0.5) as rt:
        ended: dict[str, int] = {}
        for job_id, (kind, n) in workflows.items():
            job = await rt.wait(job_id, timeout=180)
            assert job.status is JobStatus.COMPLETED, (kind, job.status, job.error)
            assert job.result == tree_total(n), (kind, n, job.result)
            if kind == "tree":
                children = await rt.children(job_id, limit=1000)
                # Each spawn made one child, however often the parent ran.
                assert sorted(c.params["i"] for c in children) == list(range(n))
                assert {c.status for c in children} == {JobStatus.COMPLETED}
            else:
                assert len(await rt.dependencies(job_id)) == n
            ended[kind] = ended.get(kind, 0) + 1
    return ended


def _run(url: str, roles: list[str], tmp_path: Path, long_run: bool) -> None:
    rng = random.Random()
    seed = rng.randrange(2**32)
    rng.seed(seed)
    procs = Processes(url, roles, tmp_path / "workers.log")
    workflows: Workflows = {}
    rounds = ROUNDS_LONG if long_run else ROUNDS_CI
    try:
        for done in range(1, rounds + 1):
            _round(procs, rng, workflows)
            if done % 25 == 0:
                print(f"workflow sigkill: {done} rounds, {len(workflows)} workflows", flush=True)
    finally:
        for role in list(procs.running):
            procs.kill(role)
    assert workflows, "no workflow was acknowledged"
    ended = trio.run(_finish_and_check, url, workflows)
    print(f"workflow sigkill (seed {seed}): {rounds} rounds, ended {ended}")


@chaos_timeout
def test_sigkilled_sqlite_worker_resumes_every_workflow(tmp_path: Path, long_run: bool) -> None:
    _run(f"sqlite:///{tmp_path / 'killed.db'}", ["all"], tmp_path, long_run)


@chaos_timeout
def test_sigkilled_postgres_workers_resume_every_workflow_across_processes(
    postgres_url: str, tmp_path: Path, long_run: bool
) -> None:
    _run(postgres_url, ["parents", "leaves"], tmp_path, long_run)
