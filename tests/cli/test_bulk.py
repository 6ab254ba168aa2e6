"""``callboard jobs bulk``: one action on every job matching filters."""

from __future__ import annotations

import json

import pytest

from runtime.cli.client import EXIT_AUTH, EXIT_OK, EXIT_USAGE
from tests.cli.conftest import Served

pytestmark = pytest.mark.trio


async def test_jobs_bulk_counts_then_retries_and_says_what_it_skipped(served: Served) -> None:
    failed = [await served.rt.enqueue("boom", {"value": i}) for i in range(3)]
    done = await served.rt.enqueue("echo", {})
    for job in [*failed, done]:
        await served.rt.wait(job.id, timeout=30)
    code, text = await served.run("jobs", "bulk", "retry", "--status", "failed", "--dry-run")
    assert (code, text.strip()) == (EXIT_OK, "3 jobs match; retry would act on 3")
    code, text = await served.run(
        "jobs", "bulk", "retry", "--status", "failed,completed", "--limit", "3"
    )
    assert code == EXIT_OK
    assert (
        text.strip() == "retry: 2 changed, 1 skipped (completed: 1); 1 more match (raise --limit)"
    )
    code, text = await served.run("jobs", "bulk", "delete", "--type", "echo", "--json")
    assert (code, json.loads(text)["changed"]) == (EXIT_OK, 1)


async def test_jobs_bulk_needs_a_filter_and_an_operator(served: Served) -> None:
    code, _ = await served.run("jobs", "bulk", "cancel")
    assert code == EXIT_USAGE
    code, _ = await served.run("jobs", "bulk", "cancel", "--status", "waiting", token="acme-viewer")
    assert code == EXIT_AUTH
