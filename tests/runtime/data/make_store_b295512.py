"""How store_b295512.db was made: with the code of commit b295512 (the last
release before versioned migrations), not with this one::

    git worktree add /tmp/old b295512
    cd /tmp/old && PYTHONPATH=/tmp/old python tests/.../make_store_b295512.py OUT.db
    sqlite3 OUT.db vacuum

Not a test: tests/runtime/test_migrations.py opens a copy of the result.
"""

import sys
from datetime import timedelta

import trio
from pydantic import BaseModel

from runtime import JobContext, Registry, Runtime

registry = Registry()


class Add(BaseModel):
    a: int
    b: int


@registry.job(name="fixture.add", max_retries=0)
async def add(ctx: JobContext, params: Add) -> int:
    ctx.log.info("adding")
    return params.a + params.b


async def main(path: str) -> None:
    async with Runtime(f"sqlite:///{path}", registry=registry, grace_period=1) as rt:
        done = await rt.enqueue("fixture.add", {"a": 1, "b": 2}, tenant_id="acme")
        await rt.wait(done.id, timeout=10)
        await rt.enqueue(
            "fixture.add",
            {"a": 3, "b": 4},
            delay=timedelta(days=3650),
            idempotency_key="later",
            lock_key="L",
            tenant_id="acme",
        )
        await rt.enqueue("fixture.add", {"a": 5, "b": 6}, delay=timedelta(days=3650))
        await rt.add_schedule("fixture.add", {"a": 7, "b": 8}, every="1h", name="hourly")
    print(done.id)


trio.run(main, sys.argv[1])
