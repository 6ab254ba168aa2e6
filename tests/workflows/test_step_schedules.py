"""A schedule fires multi-step jobs: ``rt.add_schedule(steps=...)``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
import trio.testing
from pydantic import BaseModel

from runtime import InvalidParams, JobContext, JobStatus, Registry, Runtime, Step, StepStatus
from runtime.domain.steps import STEPS_TYPE

pytestmark = pytest.mark.trio


class Backup(BaseModel):
    path: str
    container: str = "none"


@pytest.fixture
def backups(registry: Registry) -> list[tuple[str, str]]:
    done: list[tuple[str, str]] = []

    @registry.job(name="backup", max_retries=0)
    async def backup(ctx: JobContext, params: Backup) -> str:
        done.append((params.path, params.container))
        return params.path

    return done


async def test_a_schedule_fires_multi_step_jobs(
    make_runtime: Callable[..., Runtime],
    backups: list[tuple[str, str]],
    mock_clock: trio.testing.MockClock,
) -> None:
    async with make_runtime() as rt:
        schedule = await rt.add_schedule(
            steps=[
                Step("backup", {"path": "/home"}),
                {"type": "backup", "params": {"path": "/etc"}},
            ],
            step_defaults={"container": "nightly"},
            every="1 hour",
            name="backups",
        )
        await trio.sleep(2 * 3600 + 60)
        jobs = await rt.list(schedule_id=schedule.id)
        assert len(jobs) == 2
        done = [await rt.wait(job.id) for job in jobs]
        triggered = await rt.wait((await rt.trigger_schedule("backups")).id)
    assert schedule.job_type == STEPS_TYPE
    assert schedule.params == {
        "steps": [
            {"type": "backup", "params": {"path": "/home"}, "mandatory": True,
             "max_retries": None, "retry_delay": None},
            {"type": "backup", "params": {"path": "/etc"}, "mandatory": True,
             "max_retries": None, "retry_delay": None},
        ],
        "step_defaults": {"container": "nightly"},
    }  # fmt: skip
    for job in [*done, triggered]:
        assert job.type == STEPS_TYPE and job.status is JobStatus.COMPLETED
        assert job.result == ["/home", "/etc"]
        assert job.steps is not None
        assert [s.status for s in job.steps] == [StepStatus.COMPLETED] * 2
    assert backups == [("/home", "nightly"), ("/etc", "nightly")] * 3


async def test_a_schedule_of_bad_steps_is_refused_and_stores_nothing(
    make_runtime: Callable[..., Runtime], backups: list[tuple[str, str]]
) -> None:
    async with make_runtime(workers=False) as rt:
        with pytest.raises(InvalidParams, match="step 0"):
            await rt.add_schedule(steps=[Step("backup")], every="1 hour")
        with pytest.raises(ValueError, match=r"job_type \(with params\) or steps, not both"):
            await rt.add_schedule("backup", steps=[Step("backup")], every="1 hour")
        with pytest.raises(ValueError, match="step_defaults go with steps"):
            await rt.add_schedule("backup", {"path": "/"}, step_defaults={}, every="1 hour")
        assert await rt.schedules() == []
