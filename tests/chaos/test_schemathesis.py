"""schemathesis over every route of a real ``callboard serve`` process: no 5xx.

The server runs the demo job types on a SQLite file, with an admin token,
on a real socket. schemathesis reads its OpenAPI document and, for every
operation, sends requests generated from the schema (valid ones, and ones
that break it), with the admin token; operations on one job also get the
id of a real job half the time, so they reach past the 404. Every answer
must be below 500. Event streams are opened and closed at once (their
status is all there is to check). A few examples per operation in CI, many
under ``--long``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode

from tests.chaos.battery_support import chaos_timeout

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "chaos-admin-token-0123456789"
EXAMPLES_CI = 6
EXAMPLES_LONG = 100
START_TIMEOUT = 120.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    log = tmp_path / "serve.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "runtime.cli", "serve", "--demo"),
                *("--db", f"sqlite:///{tmp_path / 'api.db'}", "--bind", "127.0.0.1:0"),
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "CALLBOARD_TOKENS": f"{TOKEN}::admin"},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        yield _bound_url(process, log)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _bound_url(process: subprocess.Popen[bytes], log: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        found = re.search(r"API on (http://\S+?)[,;]", log.read_text())
        if found:
            return found.group(1)
        assert process.poll() is None, f"the server exited: {log.read_text()}"
        time.sleep(0.05)  # waits for the server's start line; asserts no timing
    raise AssertionError(f"the server did not start: {log.read_text()}")


def _a_real_job(base: str) -> str:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    answer = httpx.post(
        f"{base}/api/v1/jobs", headers=headers, json={"type": "demo.sleep", "delay": 3600}
    )
    assert answer.status_code < 300, answer.text
    return str(answer.json()["id"])


@chaos_timeout
def test_no_route_answers_with_a_server_error(server: str, long_run: bool) -> None:
    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    job_id = _a_real_job(server)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    session = requests.Session()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20  # every route, not a document that failed to load

    for operation in operations:
        real_id = {"job_id": job_id} if "{job_id}" in operation.path else None
        strategies = [operation.as_strategy(mode) for mode in GenerationMode]
        if real_id is not None:
            strategies.append(operation.as_strategy(path_parameters=real_id))

        @settings(
            max_examples=EXAMPLES_LONG if long_run else EXAMPLES_CI,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(st.one_of(strategies))
        def check(case: Case) -> None:
            request = case.as_transport_kwargs(base_url=server, headers=headers)
            try:
                # Streamed: an event stream answers at once and is closed here.
                with session.request(**request, timeout=30, stream=True) as response:
                    pass
            except requests.exceptions.RequestException as err:
                errors.append(f"{case.method} {case.formatted_path}: {err!r}")
                return
            statuses[response.status_code] += 1
            if response.status_code >= 500:
                errors.append(f"{response.status_code} from {case.as_curl_command()}")

        check()
    session.close()
    print(
        f"schemathesis: {sum(statuses.values())} requests over {len(operations)} operations, "
        f"statuses {dict(sorted(statuses.items()))}"
    )
    assert errors == []
