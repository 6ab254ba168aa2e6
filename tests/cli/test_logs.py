"""The service's logs: levels, JSON or text, and a job's fields on its records."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import pytest
import trio
import trio.testing
from pydantic import BaseModel

from runtime import JobContext, JobStatus, Registry, Runtime
from runtime.cli.logs import configure_logging
from runtime.cli.service import _log_events


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


class NoParams(BaseModel):
    pass


def register_talker(registry: Registry) -> None:
    @registry.job(name="talk", max_retries=0)
    async def talk(ctx: JobContext, params: NoParams) -> None:
        logging.getLogger("app.code").warning("from any logger")
        ctx.log.info("from ctx.log")


@pytest.mark.trio
@pytest.mark.usefixtures("root_logging")
async def test_json_records_of_a_job_carry_its_id_type_attempt_and_tenant(
    make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    register_talker(registry)
    stream = io.StringIO()
    configure_logging("info", "json", stream)
    async with make_runtime() as rt:
        job = await rt.enqueue("talk", {}, tenant_id="acme")
        assert (await rt.wait(job.id, timeout=10)).status is JobStatus.COMPLETED
    logging.getLogger("app.code").warning("outside any job")
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [r for r in records if r["message"].startswith("from ")]
    assert {r["message"] for r in mine} == {"from any logger", "from ctx.log"}
    for record in mine:
        assert record["job_id"] == str(job.id) and record["job_type"] == "talk"
        assert record["attempt"] == 1 and record["tenant"] == "acme"
        assert record["level"] in ("info", "warning") and "time" in record
    outside = next(r for r in records if r["message"] == "outside any job")
    assert "job_id" not in outside


@pytest.mark.trio
@pytest.mark.usefixtures("root_logging")
async def test_text_records_name_the_job_and_the_level_filters(
    make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    register_talker(registry)
    stream = io.StringIO()
    configure_logging("warning", "text", stream)
    async with make_runtime() as rt:
        job = await rt.enqueue("talk", {})
        await rt.wait(job.id, timeout=10)
    lines = stream.getvalue().splitlines()
    talk = [line for line in lines if "from " in line]
    assert len(talk) == 1 and "WARNING app.code from any logger" in talk[0]  # info is below
    assert f"job_id={job.id} job_type=talk attempt=1 tenant=None" in talk[0]


@pytest.mark.trio
async def test_status_changes_are_logged_at_debug_not_printed(
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    register_talker(registry)
    caplog.set_level(logging.DEBUG, logger="callboard.service")
    async with make_runtime() as rt, trio.open_nursery() as tg:
        tg.start_soon(_log_events, rt)
        await trio.testing.wait_all_tasks_blocked()
        job = await rt.enqueue("talk", {})
        await rt.wait(job.id, timeout=10)
        await trio.testing.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()
    changes = [r for r in caplog.records if r.name == "callboard.service"]
    assert changes and all(r.levelno == logging.DEBUG for r in changes)
    assert any(str(job.id) in r.getMessage() and "completed" in r.getMessage() for r in changes)
    assert capsys.readouterr() == ("", "")
