"""A user's module on the HTTP client, checked by ``mypy --strict`` in test_typed.py."""

from __future__ import annotations

from runtime import Job, JobNotFound, JobStatus, Schedule
from runtime.client import AsyncClient, Client, JobPage


def sync_use(url: str, token: str) -> JobStatus:
    with Client(url, token) as client:
        job: Job = client.enqueue("resize", {"path": "a.png"}, priority=5, delay=1.5)
        page: JobPage = client.list(status=["completed"], type="resize")
        schedule: Schedule = client.add_schedule("resize", {"path": "b.png"}, every=60)
        try:
            job = client.get(job.id)
        except JobNotFound:
            return JobStatus.CANCELED
        reveal_type(client.wait)  # noqa: F821
        reveal_type(page.jobs)  # noqa: F821
        reveal_type(schedule.id)  # noqa: F821
        return client.wait(job.id, timeout=30).status


async def async_use(url: str, token: str) -> JobStatus:
    async with AsyncClient(url, token) as client:
        job = await client.enqueue("resize", {"path": "a.png"}, idempotency_key="k")
        reveal_type(client.enqueue)  # noqa: F821
        reveal_type(client.schedules)  # noqa: F821
        return (await client.cancel(job.id, reason="no")).status
