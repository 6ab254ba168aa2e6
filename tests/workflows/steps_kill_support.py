"""The process the multi-step SIGKILL test kills (``test_steps_sigkill.py``).

``python -m tests.workflows.steps_kill_support URL LEDGER JOB_ID HANG_AT``
runs a runtime on ``URL`` whose ``mark`` steps append ``start <name>
<checkpoint>`` to the ``LEDGER`` file as they start, then print their name
(and take ``pause`` seconds, with a checkpoint halfway). The step named
``HANG_AT`` saves a checkpoint and then waits forever (to be killed
mid-step); with no such step, the process exits once job ``JOB_ID`` has
ended.
"""

from __future__ import annotations

import json
import sys
import uuid

import trio
from pydantic import BaseModel

from runtime import JobContext, Registry, Runtime

LEASE = 1.0  # a dead child's job is rescued this soon
HEARTBEAT = 0.25


class Mark(BaseModel):
    name: str
    pause: float = 0.0  # seconds the step takes, a checkpoint halfway


def registry(ledger: str, hang_at: str) -> Registry:
    registry = Registry()

    @registry.job(name="mark", max_retries=0)
    async def mark(ctx: JobContext, params: Mark) -> str:
        with open(ledger, "a") as out:  # noqa: ASYNC230  # one short line, on purpose in order
            out.write(f"start {params.name} {json.dumps(ctx.checkpoint_state)}\n")
        print(params.name, flush=True)
        if params.name == hang_at:
            await ctx.checkpoint({"half": params.name})
            print("checkpointed", flush=True)
            await trio.sleep_forever()
        if params.pause:
            await trio.sleep(params.pause / 2)
            await ctx.checkpoint({"half": params.name})
            await trio.sleep(params.pause / 2)
        return params.name

    return registry


async def main(url: str, ledger: str, job_id: str, hang_at: str) -> None:
    options = {"lease": LEASE, "heartbeat_interval": HEARTBEAT}
    async with Runtime(url, registry=registry(ledger, hang_at), **options) as rt:  # type: ignore[arg-type]
        await rt.wait(uuid.UUID(job_id))


if __name__ == "__main__":
    trio.run(main, *sys.argv[1:5])
