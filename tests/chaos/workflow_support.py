"""The processes the workflow SIGKILL test kills (``test_workflow_sigkill.py``).

``python -m tests.chaos.workflow_support URL ROLE SEED`` runs a runtime on
the store at ``URL``:

- role ``all`` serves both queues and enqueues: parents (a ``tree`` job that
  spawns ``leaf`` children, checkpointing between spawns, and waits for
  them) and chords (``leaf`` members, a ``total`` callback). It prints each
  workflow as ``tree <id>`` or ``chord <callback id>`` once the enqueue that
  stored it has returned (an acknowledged workflow);
- role ``parents`` does the same but serves only the parents' queue;
- role ``leaves`` serves only the queue of the children and chord members
  (on PostgreSQL: a parent and its children run in different processes).

Every process runs until killed.
"""

from __future__ import annotations

import random
import sys

import trio
from pydantic import BaseModel

from runtime import JobContext, Registry, Runtime

PARENTS, LEAVES = "parents", "leaves"
CAPACITY = 4


class Tree(BaseModel):
    n: int


class Leaf(BaseModel):
    i: int


class Nothing(BaseModel):
    pass


def tree_total(n: int) -> int:
    """What a ``tree`` of ``n`` children returns (and a chord of ``n`` members)."""
    return sum(i * i for i in range(n))


def registry() -> Registry:
    registry = Registry()

    @registry.job(name="leaf", queue=LEAVES, max_retries=20, retry_delay=0.0)
    async def leaf(ctx: JobContext, params: Leaf) -> int:
        await trio.sleep(0.001 * (params.i % 5))
        return params.i * params.i

    @registry.job(name="tree", queue=PARENTS, max_retries=20, retry_delay=0.0)
    async def tree(ctx: JobContext, params: Tree) -> int:
        done = (ctx.checkpoint_state or {}).get("spawned", 0)
        for i in range(params.n):
            # Spawns return the same child on every run: the ones spawned
            # before the checkpoint are spawned again, and found.
            await ctx.spawn("leaf", {"i": i})
            if i >= done and i % 3 == 2:
                await ctx.checkpoint({"spawned": i + 1})
        results = await ctx.wait_children()
        assert all(r.ok for r in results), [r.error for r in results]
        return sum(r.result for r in results)

    @registry.job(name="total", queue=PARENTS, max_retries=20, retry_delay=0.0)
    async def total(ctx: JobContext, params: Nothing) -> int:
        out = 0
        async for member in ctx.iter_dependency_results(page=16):
            out += member.result
        return out

    return registry


async def main(url: str, role: str, seed: int) -> None:
    rng = random.Random(seed)
    queues = {PARENTS: CAPACITY, LEAVES: CAPACITY}
    if role == PARENTS:
        queues = {PARENTS: CAPACITY}
    elif role == LEAVES:
        queues = {LEAVES: CAPACITY}
    options = {"lease": 2.0, "heartbeat_interval": 0.2, "poll_interval": 0.2}
    async with Runtime(url, registry=registry(), queues=queues, **options) as rt:  # type: ignore[arg-type]
        if role == LEAVES:
            await trio.sleep_forever()
        while True:
            n = rng.randint(1, 12)
            if rng.random() < 0.5:
                job = await rt.enqueue("tree", {"n": n})
                print(f"tree {job.id} {n}", flush=True)
            else:
                chord = await rt.enqueue_chord("leaf", [{"i": i} for i in range(n)], "total")
                print(f"chord {chord.callback.id} {n}", flush=True)
            await trio.sleep(rng.uniform(0, 0.02))


if __name__ == "__main__":
    trio.run(main, sys.argv[1], sys.argv[2], int(sys.argv[3]))
