"""The process the SIGKILL test kills (``test_sigkill.py``).

``python -m tests.chaos.sigkill_support URL SEED`` runs an embedded runtime
on the SQLite file at ``URL`` that enqueues jobs (one at a time, or in
batches up to 100, which take the bulk insert path past 64) and runs them.
It prints each job's id on its own line once the enqueue that stored it has
returned: a printed id is an acknowledged enqueue. It runs until killed.
"""

from __future__ import annotations

import random
import sys

import trio
from pydantic import BaseModel

from runtime import JobContext, Registry, Runtime

QUEUE_CAPACITY = 8


class Work(BaseModel):
    steps: int = 3


def registry() -> Registry:
    registry = Registry()

    @registry.job(name="work", max_retries=5, retry_delay=0.0)
    async def work(ctx: JobContext, params: Work) -> int:
        done = (ctx.checkpoint_state or {}).get("done", 0)
        for step in range(done, params.steps):
            await trio.sleep(0.002)
            await ctx.progress(current=step + 1, total=params.steps)
            await ctx.checkpoint({"done": step + 1})
        return params.steps

    return registry


async def main(url: str, seed: int) -> None:
    rng = random.Random(seed)
    async with Runtime(url, registry=registry(), queues={"default": QUEUE_CAPACITY}) as rt:
        while True:
            size = 1 if rng.random() < 0.8 else rng.randint(2, 100)
            steps = [{"steps": rng.randint(1, 5)} for _ in range(size)]
            jobs = await rt.enqueue_many("work", steps)
            print("\n".join(str(job.id) for job in jobs), flush=True)
            await trio.sleep(rng.uniform(0, 0.005))  # let the queue keep up


if __name__ == "__main__":
    trio.run(main, sys.argv[1], int(sys.argv[2]))
