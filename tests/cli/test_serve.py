"""``callboard serve`` and ``worker`` as real processes: start, answer, stop on a signal."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

STARTUP_TIMEOUT = 30.0
ROOT = Path(__file__).resolve().parents[2]


def callboard(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBOARD_")}
    env["CALLBOARD_HOOK_SECRET"] = "test-secret"
    # This checkout first: `--app tests....` modules import, and so does its own code.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def lines_until(proc: subprocess.Popen[str], pattern: str) -> Iterator[str]:
    """stderr lines up to the first that matches ``pattern`` (or fail after a deadline).

    Blocking reads, with the process killed at the deadline (its stream then
    ends): a ``select`` on the pipe would miss lines already read into the
    stream's buffer with an earlier one, and wait for the deadline.
    """
    assert proc.stderr is not None
    timer = threading.Timer(STARTUP_TIMEOUT, proc.kill)
    timer.start()
    try:
        for line in iter(proc.stderr.readline, ""):
            yield line
            if re.search(pattern, line):
                return
    finally:
        timer.cancel()
    proc.kill()
    raise AssertionError(f"no line matching {pattern!r} in time")


@pytest.fixture
def stop_later() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_demo_answers_then_stops_gracefully_on_sigint(
    tmp_path: Path, stop_later: list[subprocess.Popen[str]]
) -> None:
    proc = callboard("serve", "--demo", "--bind", "127.0.0.1:0", cwd=tmp_path)
    stop_later.append(proc)
    started = "".join(lines_until(proc, r"API on http://127\.0\.0\.1:\d+"))
    url = re.findall(r"API on (http://127\.0\.0\.1:\d+)", started)[0]
    assert "database sqlite:///callboard.db" in started
    assert f"dashboard on {url}/" in "".join(lines_until(proc, "dashboard on"))
    page = httpx.get(f"{url}/", timeout=10)
    assert page.status_code == 200 and '<main id="main"' in page.text
    assert httpx.get(f"{url}/readyz", timeout=10).json()["status"] == "ok"
    types = httpx.get(f"{url}/api/v1/job-types", timeout=10).json()["types"]
    assert {"demo.count", "demo.sleep", "demo.flaky"} <= {t["name"] for t in types}
    schedules = httpx.get(f"{url}/api/v1/schedules", timeout=10).json()["schedules"]
    assert {"demo-count", "demo-sleep", "demo-flaky"} <= {s["name"] for s in schedules}
    # Each demo schedule makes a job at once: a newcomer sees jobs, not an empty
    # list until the first slot (10 s on). Polled: the schedules start beside the API.
    deadline = time.monotonic() + 8
    while httpx.get(f"{url}/api/v1/jobs", timeout=10).json()["total"] < 3:
        assert time.monotonic() < deadline, "the demo made no jobs at once"
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopping" in err and err.rstrip().endswith("callboard.service stopped")
    assert (tmp_path / "callboard.db").exists()


def test_worker_stops_on_sigterm(tmp_path: Path, stop_later: list[subprocess.Popen[str]]) -> None:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    proc = callboard("worker", "--db", db, "--demo", "--queues", "demo=2", cwd=tmp_path)
    stop_later.append(proc)
    "".join(lines_until(proc, r"worker .* Ctrl-C stops"))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--bind", "0.0.0.0:0"], "refusing to serve on 0.0.0.0:0 without tokens"),
        (["serve", "--bind", "nonsense"], "bind must be HOST:PORT"),
        (["worker", "--queues", "nope"], "unknown queue nope"),
        (["serve", "--tokens", "missing.toml"], "cannot read tokens file"),
        (["serve", "--retain", "done=1d"], "--retain 'done=1d': expected STATUS=AGE"),
        (
            ["worker", "--sweep-interval", "0"],
            "sweep_interval (--sweep-interval, $CALLBOARD_SWEEP_INTERVAL): Input should be",
        ),
    ],
)
def test_bad_service_options_exit_2_before_starting(
    tmp_path: Path, args: list[str], message: str
) -> None:
    proc = callboard(*args, cwd=tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and message in err, err
    assert not (tmp_path / "callboard.db").exists()
