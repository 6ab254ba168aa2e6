"""The ``callboard`` client commands against a server on an ephemeral loopback port."""

from __future__ import annotations

import json
import socket

import pytest
import trio

from runtime.cli.client import (
    EXIT_AUTH,
    EXIT_CONFLICT,
    EXIT_JOB_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
)
from tests.cli.conftest import Output, Served

pytestmark = pytest.mark.trio


async def test_enqueue_prints_the_id_and_json_for_scripts(served: Served) -> None:
    code, text = await served.run("enqueue", "echo", "-p", "value=[1,2]", "--delay", "60")
    assert code == EXIT_OK and text.strip().endswith("scheduled  enqueued")
    job_id = text.split()[0]
    code, text = await served.run("jobs", "show", job_id, "--json")
    job = json.loads(text)
    assert (job["id"], job["params"], job["user_id"]) == (job_id, {"value": [1, 2]}, "root")
    code, text = await served.run(
        "enqueue", "echo", "--params", '{"value": "x"}', "--idempotency-key", "k", "--json"
    )
    first = json.loads(text)
    code, text = await served.run("enqueue", "echo", "--idempotency-key", "k")
    assert text.split()[0] == first["id"] and "already known" in text


async def test_enqueue_wait_exit_code_says_how_the_job_ended(served: Served) -> None:
    code, text = await served.run("enqueue", "echo", "-p", "value=hello", "--wait")
    assert code == EXIT_OK and "completed" in text and "hello" in text
    code, text = await served.run("enqueue", "boom", "-p", "value=bad", "--wait", "--json")
    assert code == EXIT_JOB_FAILED and json.loads(text)["error"] == "boom: bad"
    code, text = await served.run(
        "enqueue", "echo", "--delay", "60", "--wait", "--wait-timeout", "0"
    )
    assert code == EXIT_TIMEOUT and "still scheduled" in text


async def test_bad_input_is_exit_2_with_the_servers_message(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = await served.run("enqueue", "numbers", "-p", "count=many")
    assert code == EXIT_USAGE
    assert "HTTP 422: invalid params for job type 'numbers': count:" in capsys.readouterr().err
    code, _ = await served.run("enqueue", "nope")
    assert code == EXIT_USAGE and "unknown job type 'nope'" in capsys.readouterr().err
    code, _ = await served.run("enqueue", "echo", "--params", "[1]")
    assert code == EXIT_USAGE and "--params must be a JSON object" in capsys.readouterr().err


async def test_jobs_list_is_a_table_with_filters_and_paging(served: Served) -> None:
    for i in range(3):
        await served.run("enqueue", "echo", "-p", f"value={i}", "--delay", "60")
    await served.run("enqueue", "numbers", "-p", "count=1", "--delay", "60")
    code, text = await served.run("jobs", "list", "--type", "echo", "--page-size", "2")
    lines = text.splitlines()
    assert code == EXIT_OK
    assert lines[0].split() == [
        "ID", "TYPE", "STATUS", "PROGRESS", "QUEUE", "ATTEMPT", "CREATED", "CHECK-IN",
    ]  # fmt: skip
    assert len(lines) == 4 and lines[-1] == "page 1, 2 of 3 jobs"
    code, text = await served.run("jobs", "list", "--status", "scheduled", "--json")
    assert json.loads(text)["total"] == 4


async def test_control_commands_and_their_exit_codes(served: Served) -> None:
    _, text = await served.run("enqueue", "echo", "--delay", "60")
    job_id = text.split()[0]
    assert await served.run("jobs", "suspend", job_id) == (EXIT_OK, f"{job_id}  suspended\n")
    assert await served.run("jobs", "resume", job_id) == (EXIT_OK, f"{job_id}  waiting\n")
    code, _ = await served.run("jobs", "wait", job_id, "--timeout", "10")
    assert code == EXIT_OK
    assert (await served.run("jobs", "cancel", job_id))[0] == EXIT_CONFLICT
    assert (await served.run("jobs", "retry", job_id))[0] == EXIT_CONFLICT
    assert await served.run("jobs", "delete", job_id) == (EXIT_OK, f"{job_id}  deleted\n")
    assert (await served.run("jobs", "show", job_id))[0] == EXIT_NOT_FOUND
    assert (await served.run("jobs", "show", "not-an-id"))[0] == EXIT_NOT_FOUND


async def test_logs_and_wait(served: Served) -> None:
    _, text = await served.run("enqueue", "boom", "-p", "value=1")
    job_id = text.split()[0]
    assert (await served.run("jobs", "wait", job_id, "--timeout", "10"))[0] == EXIT_JOB_FAILED
    code, text = await served.run("jobs", "logs", job_id)
    assert code == EXIT_OK and "failed" in text
    code, text = await served.run("jobs", "logs", job_id, "--level", "ERROR", "--json")
    assert code == EXIT_OK and all(r["level"] >= 40 for r in json.loads(text)["records"])


async def test_auth_errors_and_an_absent_server_have_their_own_exit_codes(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (await served.run("jobs", "list", token=None))[0] == EXIT_AUTH
    assert (await served.run("enqueue", "echo", token="acme-viewer"))[0] == EXIT_AUTH
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    served.url = f"http://127.0.0.1:{port}"
    assert (await served.run("jobs", "list"))[0] == EXIT_UNAVAILABLE
    assert "cannot reach" in capsys.readouterr().err


async def test_watch_draws_progress_until_the_job_ends(served: Served) -> None:
    _, text = await served.run("enqueue", "gate", "-p", "name=w")
    job_id = text.split()[0]
    out = Output()
    async with trio.open_nursery() as nursery:
        codes: list[int] = []

        async def watch() -> None:
            codes.append(await served.start(out, "jobs", "watch", job_id))

        nursery.start_soon(watch)
        with trio.fail_after(10):
            await out.wait_for("waiting at w")
        served.gates.open("w")
    lines = out.getvalue().splitlines()
    assert codes == [EXIT_OK]
    assert any("%  running    waiting at w" in line for line in lines[:-1])
    assert lines[-1].endswith("[########################] 100.0%  completed  waiting at w")
    assert lines[-1].startswith(f"{job_id[:8]} gate")


async def test_watch_everything_stops_after_the_given_number_of_jobs(served: Served) -> None:
    out = Output()
    async with trio.open_nursery() as nursery:
        codes: list[int] = []

        async def watch() -> None:
            codes.append(await served.start(out, "jobs", "watch", "--type", "echo", "--limit", "1"))

        nursery.start_soon(watch)
        with trio.fail_after(10):
            await out.wait_for("watching jobs")
            await served.rt.enqueue("numbers", {"count": 1})
            await served.rt.enqueue("echo", {"value": 1})
            await out.wait_for("completed")
    assert codes == [EXIT_OK] and "numbers" not in out.getvalue()
    assert out.getvalue().splitlines()[-1].endswith("100.0%  completed")


async def test_queues_and_types(served: Served) -> None:
    code, text = await served.run("queues")
    assert code == EXIT_OK and text.splitlines()[0].split()[:3] == ["QUEUE", "CAPACITY", "PAUSED"]
    code, text = await served.run("queues", "pause", "default")
    assert code == EXIT_OK and "yes" in text.splitlines()[1].split()
    code, text = await served.run("queues", "set-capacity", "default", "3", "--json")
    assert json.loads(text)["capacity"] == 3
    assert (await served.run("queues", "resume", "default"))[0] == EXIT_OK
    assert (await served.run("queues", "pause", "default", token="acme"))[0] == EXIT_AUTH
    code, text = await served.run("types")
    assert code == EXIT_OK and any(line.startswith("numbers") for line in text.splitlines())
    code, text = await served.run("types", "numbers")
    assert code == EXIT_OK and '"maximum": 100' in text


async def test_schedules_commands(served: Served) -> None:
    code, text = await served.run(
        "schedules", "add", "echo", "--every", "1 hour", "--name", "hourly", "-p", "value=3"
    )
    assert code == EXIT_OK and "every 3600.0s" in text
    code, text = await served.run("schedules", "list")
    assert "hourly" in text
    assert (await served.run("schedules", "pause", "hourly"))[0] == EXIT_OK
    code, text = await served.run("schedules", "show", "hourly", "--json")
    assert json.loads(text)["paused"] is True
    code, text = await served.run("schedules", "trigger", "hourly")
    assert code == EXIT_OK and "(made by hourly)" in text
    assert (await served.run("schedules", "remove", "hourly"))[0] == EXIT_OK
    assert (await served.run("schedules", "show", "hourly"))[0] == EXIT_NOT_FOUND


async def test_cancel_reason_description_and_retry_delay_reach_the_job(served: Served) -> None:
    code, text = await served.run(
        "enqueue",
        "echo",
        "--delay",
        "60",
        "--description",
        "weekly report",
        "--retry-delay",
        "30",
        "--json",
    )
    job = json.loads(text)
    assert (job["description"], job["retry_delay"]) == ("weekly report", 30.0)
    code, text = await served.run("jobs", "cancel", job["id"], "--reason", "replaced")
    assert code == EXIT_OK and text.split()[1] == "canceled"
    code, text = await served.run("jobs", "show", job["id"])
    assert "cancel_reason" in text and "replaced" in text and "weekly report" in text


async def test_schedules_add_takes_a_queue_and_where_a_six_field_crons_seconds_are(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    harbor = ("schedules", "add", "echo", "--cron", "0 */5 * * * *", "--name", "h")
    code, _ = await served.run(*harbor)
    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "has six fields" in err and "second=0 minute=*/5" in err
    code, text = await served.run(
        *harbor, "--cron-seconds", "first", "--queue", "reports", "--json"
    )
    schedule = json.loads(text)
    assert code == EXIT_OK and schedule["queue"] == "reports"
    assert schedule["trigger"]["expression"] == "*/5 * * * * 0"
    code, text = await served.run("jobs", "list", "--status", "pending,cancelled")
    assert code == EXIT_OK
