"""A hypothesis state machine over a real runtime process on SQLite.

Rules enqueue jobs of kinds that complete, run a while (checkpointing),
retry once, fail, skip or time out; cancel, suspend, resume, retry and
delete them; and crash the runtime (SIGKILL, then a new process on the
same file, which rescues the dead one's jobs). The runtime runs in a child
process (``state_machine_support.py``) on real time with short jobs, and
prints every status event it publishes.

After every step:

- every stored status is one of ``runtime.status.JobStatus``;
- the jobs stored are exactly those enqueued and not deleted (so the counts
  by status add up to enqueued minus deleted);
- a job seen completed or skipped never changes again, and one seen failed,
  canceled or timed out changes only after a retry the test asked for;
- within each process's lifetime, each job's status events follow
  ``runtime.status.TRANSITIONS``, and a finished job goes back to waiting on
  the event stream no more often than it was retried.

``max_examples`` is small in CI and large under ``--long``.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from runtime.domain.status import TERMINAL, JobStatus, can_transition
from tests.chaos.battery_support import chaos_timeout
from tests.chaos.state_machine_support import KINDS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_CI = 4
EXAMPLES_LONG = 300
STEPS = 25
CRASH_EVERY = 6  # steps at least between crashes: a restart costs far more than a step
ANSWER_TIMEOUT = 60.0
STATUSES = {s.value for s in JobStatus}
FINAL = {JobStatus.COMPLETED.value, JobStatus.SKIPPED.value}  # not even a retry moves these
RETRYABLE = {s.value for s in TERMINAL} - FINAL


class Spares:
    """Keeps one runtime process loaded (Python and its imports take seconds on a
    busy machine) for the next start or restart."""

    def __init__(self, log: Path, count: int = 2) -> None:
        self.log = log
        self.spares = [self._spawn() for _ in range(count)]

    def _spawn(self) -> subprocess.Popen[str]:
        with self.log.open("ab") as stderr:
            return subprocess.Popen(
                [sys.executable, "-m", "tests.chaos.state_machine_support"],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )

    def take(self) -> subprocess.Popen[str]:
        self.spares.append(self._spawn())
        return self.spares.pop(0)

    def close(self) -> None:
        for spare in self.spares:
            spare.kill()
            spare.wait()
            for stream in (spare.stdin, spare.stdout):
                if stream is not None:
                    stream.close()


class Child:
    """One runtime process: commands in, answers and status events out."""

    def __init__(self, process: subprocess.Popen[str], url: str, log: Path) -> None:
        self.process = process
        assert process.stdout is not None and process.stdin is not None
        assert process.stdout.readline() == "loaded\n", f"the process did not load; see {log}"
        process.stdin.write(url + "\n")
        process.stdin.flush()
        self.answers: queue.Queue[dict[str, Any]] = queue.Queue()
        self.events: list[tuple[str, str]] = []  # (job id, status), appended by the reader
        self.seq = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        ready = self.answers.get(timeout=ANSWER_TIMEOUT)
        assert "ready" in ready, f"the runtime process did not start: {ready}; see {log}"

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            if "event" in message:
                self.events.append((message["event"], message["status"]))
            else:
                self.answers.put(message)
        self.answers.put({"eof": True})

    def call(self, op: str, **fields: Any) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.seq += 1
        self.process.stdin.write(json.dumps({"seq": self.seq, "op": op, **fields}) + "\n")
        self.process.stdin.flush()
        answer = self.answers.get(timeout=ANSWER_TIMEOUT)
        assert answer.get("seq") == self.seq, f"{op}: unexpected answer {answer}"
        return answer

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self._reap()

    def quit(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")
        self.process.stdin.flush()
        self._reap()

    def _reap(self) -> None:
        self.process.wait(timeout=ANSWER_TIMEOUT)
        self.reader.join(timeout=ANSWER_TIMEOUT)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


class RuntimeMachine(RuleBasedStateMachine):
    jobs = Bundle("jobs")
    spares: Spares  # set by the test
    examples = 0
    events_checked = 0

    def __init__(self) -> None:
        super().__init__()
        RuntimeMachine.examples += 1
        if RuntimeMachine.examples % 10 == 0:
            print(f"state machine: run {RuntimeMachine.examples}", flush=True)
        self.steps_since_crash = 0
        self.dir = tempfile.TemporaryDirectory(prefix="callboard-sm-")
        self.path = Path(self.dir.name) / "machine.db"
        self.url = f"sqlite:///{self.path}"
        self.child = Child(self.spares.take(), self.url, self.spares.log)
        self.lifetimes: list[list[tuple[str, str]]] = []  # the events of each dead process
        self.live: set[str] = set()  # enqueued, not deleted
        self.deleted: set[str] = set()
        self.seen_final: dict[str, str] = {}  # job -> the terminal status seen last
        self.retries: Counter[str] = Counter()  # successful rt.retry() calls per job
        self.checked = 0  # events of the current process checked so far
        self.last: dict[str, str] = {}  # the last status event per job, this process
        self.reopened: Counter[str] = Counter()  # finished -> waiting events per job

    # -- rules ---------------------------------------------------------------

    @rule(target=jobs, kind=st.sampled_from(KINDS), delay=st.sampled_from([0, 0, 0, 0.05]))
    def enqueue(self, kind: str, delay: float) -> Any:
        answer = self.child.call("enqueue", kind=kind, delay=delay)
        assert "ok" in answer, answer
        self.live.add(answer["ok"])
        return answer["ok"]

    @rule(target=jobs, count=st.integers(1, 3))
    def timeout(self, count: int) -> Any:
        ids = []
        for _ in range(count):
            answer = self.child.call("enqueue", kind="hanging")
            assert "ok" in answer, answer
            ids.append(answer["ok"])
        self.live.update(ids)
        return multiple(*ids)

    @rule(job=jobs, action=st.sampled_from(["cancel", "suspend", "resume"]))
    def control(self, job: str, action: str) -> None:
        self._expect_refusal_or_success(job, self.child.call(action, id=job))

    @rule(job=jobs)
    def retry(self, job: str) -> None:
        answer = self.child.call("retry", id=job)
        self._expect_refusal_or_success(job, answer)
        if "ok" in answer:
            self.retries[job] += 1
            self.seen_final.pop(job, None)

    @rule(job=consumes(jobs))
    def delete(self, job: str) -> None:
        answer = self.child.call("delete", id=job)
        self._expect_refusal_or_success(job, answer)
        if "ok" in answer:
            self.live.discard(job)
            self.deleted.add(job)
            self.seen_final.pop(job, None)

    @precondition(lambda self: self.steps_since_crash >= CRASH_EVERY)
    @rule()
    def crash(self) -> None:
        self.steps_since_crash = 0
        self.child.kill()
        self._check_events()
        self.lifetimes.append(self.child.events)
        self.child = Child(self.spares.take(), self.url, self.spares.log)
        self.checked, self.last = 0, {}

    def _expect_refusal_or_success(self, job: str, answer: dict[str, Any]) -> None:
        if "ok" in answer:
            assert job not in self.deleted, f"{job} was deleted, yet {answer}"
            return
        if job in self.deleted:
            assert answer.get("error") == "JobNotFound", answer
        else:
            assert answer.get("error") == "IllegalTransition", answer

    # -- invariants ----------------------------------------------------------

    def _stored(self) -> dict[str, str]:
        with sqlite3.connect(self.path) as db:
            rows = db.execute("SELECT id, status FROM callboard_jobs").fetchall()
        db.close()
        return {_dashed(job_id): status for job_id, status in rows}

    @invariant()
    def statuses_are_legal_and_counts_add_up(self) -> None:
        self.steps_since_crash += 1
        stored = self._stored()
        counts = Counter(stored.values())
        assert set(counts) <= STATUSES, counts
        assert sum(counts.values()) == len(self.live)
        assert set(stored) == self.live

    @invariant()
    def finished_jobs_stay_finished(self) -> None:
        for job_id, status in self._stored().items():
            before = self.seen_final.get(job_id)
            if before is not None:
                assert status == before, f"{job_id}: {before}, then {status} with no retry"
            if status in FINAL or status in RETRYABLE:
                self.seen_final[job_id] = status

    @invariant()
    def events_follow_the_table(self) -> None:
        self._check_events()

    def _check_events(self) -> None:
        events = self.child.events
        count = len(events)  # the reader appends meanwhile: check what is there now
        for job_id, status in events[self.checked : count]:
            before = self.last.get(job_id)
            if before is not None:
                assert can_transition(JobStatus(before), JobStatus(status)), (
                    f"{job_id}: {before} -> {status} is not a legal transition"
                )
                if before in RETRYABLE:
                    self.reopened[job_id] += 1
            self.last[job_id] = status
        RuntimeMachine.events_checked += count - self.checked
        self.checked = count
        for job_id, times in self.reopened.items():
            assert times <= self.retries[job_id], f"{job_id} left a finished status unasked"

    def teardown(self) -> None:
        try:
            self.child.quit()
            self._check_events()
        finally:
            self.dir.cleanup()


def _dashed(job_id: str) -> str:
    return f"{job_id[:8]}-{job_id[8:12]}-{job_id[12:16]}-{job_id[16:20]}-{job_id[20:]}"


@chaos_timeout
def test_runtime_state_machine(long_run: bool, tmp_path: Path) -> None:
    RuntimeMachine.spares = Spares(tmp_path / "children.log")
    try:
        run_state_machine_as_test(
            RuntimeMachine,
            settings=settings(
                max_examples=EXAMPLES_LONG if long_run else EXAMPLES_CI,
                stateful_step_count=STEPS,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                database=None,
            ),
        )
    finally:
        RuntimeMachine.spares.close()
        print(
            f"state machine: {RuntimeMachine.examples} runs of up to {STEPS} steps, "
            f"{RuntimeMachine.events_checked} status events checked"
        )
