"""The runtime process the state-machine test drives (``test_state_machine.py``).

``python -m tests.chaos.state_machine_support`` loads, prints ``loaded``
and waits for the URL of a SQLite file on stdin (so the test keeps one
spare process loaded and a crash costs no start-up), then runs a runtime
with workers on that file and takes one JSON command per line
on stdin (``{"seq": 1, "op": "cancel", "id": "..."}``). It answers each on
stdout (``{"seq": 1, "ok": ...}`` or ``{"seq": 1, "error": "IllegalTransition",
"message": ...}``) and also prints every status event of its bus as
``{"event": id, "status": ..., "revision": ...}``, in the order published.
``{"op": "quit"}`` shuts it down gracefully; the test also SIGKILLs it.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import trio
from pydantic import BaseModel

from runtime import JobContext, Registry, Runtime, Skip
from runtime.domain.errors import CallboardError

KINDS = ("quick", "slow", "flaky", "failing", "skipping", "hanging")


class Nothing(BaseModel):
    pass


def registry() -> Registry:
    registry = Registry()

    @registry.job(name="quick", max_retries=0)
    async def quick(ctx: JobContext, params: Nothing) -> str:
        return "done"

    @registry.job(name="slow", max_retries=0)
    async def slow(ctx: JobContext, params: Nothing) -> int:
        done = (ctx.checkpoint_state or {}).get("done", 0)
        for step in range(done, 10):
            await trio.sleep(0.03)
            await ctx.checkpoint({"done": step + 1})
        return 10

    @registry.job(name="flaky", max_retries=1, retry_delay=0.05)
    async def flaky(ctx: JobContext, params: Nothing) -> int:
        if ctx.attempt == 1:
            raise RuntimeError("first attempt fails")
        return ctx.attempt

    @registry.job(name="failing", max_retries=0)
    async def failing(ctx: JobContext, params: Nothing) -> None:
        raise RuntimeError("always fails")

    @registry.job(name="skipping", max_retries=0)
    async def skipping(ctx: JobContext, params: Nothing) -> None:
        raise Skip("nothing to do")

    @registry.job(name="hanging", max_retries=0, timeout=0.1)
    async def hanging(ctx: JobContext, params: Nothing) -> None:
        await trio.sleep_forever()

    return registry


def say(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


async def _events(rt: Runtime, task_status: trio.TaskStatus[None]) -> None:
    with rt.subscribe() as events:
        task_status.started()
        async for event in events:
            if event.kind == "status":
                say({"event": str(event.job_id), "status": event.status.value})


async def _command(rt: Runtime, command: dict[str, Any]) -> Any:
    op = command["op"]
    if op == "enqueue":
        job = await rt.enqueue(command["kind"], {}, delay=command.get("delay") or None)
        return str(job.id)
    if op == "delete":
        await rt.delete(command["id"])
        return None
    method = {"cancel": rt.cancel, "suspend": rt.suspend, "resume": rt.resume, "retry": rt.retry}
    job = await method[op](command["id"])
    return job.status.value


async def main(url: str) -> None:
    settings: dict[str, Any] = {"queues": {"default": 4}, "grace_period": 0.2}
    async with Runtime(url, registry=registry(), **settings) as rt, trio.open_nursery() as tasks:
        await tasks.start(_events, rt)
        say({"ready": rt.worker_id})
        stdin = trio.wrap_file(sys.stdin)
        async for line in stdin:
            command = json.loads(line)
            if command["op"] == "quit":
                break
            try:
                say({"seq": command["seq"], "ok": await _command(rt, command)})
            except CallboardError as err:
                say({"seq": command["seq"], "error": type(err).__name__, "message": str(err)})
        tasks.cancel_scope.cancel()
    say({"stopped": True})


if __name__ == "__main__":
    print("loaded", flush=True)
    trio.run(main, sys.stdin.readline().strip())
