"""What ``child`` events cost the event bus, side by side in one run.

Run: ``python -m benchmarks.child_events [--events 200000]``.
Publishes ``--events`` status events straight to a fresh :class:`EventBus`
(no store, no loop: the bus is synchronous) in four cases, and prints one
JSON line of nanoseconds per event and ratios to the first case:

- ``plain``: events of jobs without a parent, nobody subscribed;
- ``child_unwatched``: events of children, nobody watching their parent
  (what every child's status change pays now: one more dictionary lookup);
- ``child_other_watched``: the same while another job has a subscriber;
- ``child_watched``: their parent has a subscriber, so each event is copied
  into a ``child`` event and delivered (the reader drains as it goes).

Compare the ratios, not the absolute numbers: they depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Callable

from runtime.domain.models import JobEvent
from runtime.domain.status import JobStatus
from runtime.jobs.events import EventBus


def _events(count: int, parent: uuid.UUID | None) -> list[JobEvent]:
    return [
        JobEvent.model_construct(
            job_id=uuid.uuid4(),
            kind="status",
            status=JobStatus.RUNNING,
            at=None,
            type="item",
            queue="default",
            tenant_id=None,
            parent_id=parent,
            message=None,
        )
        for _ in range(count)
    ]


def _per_event(bus: EventBus, events: list[JobEvent], after: Callable[[], None]) -> float:
    started = time.perf_counter_ns()
    for event in events:
        if bus.wants_status(event.job_id, event.tenant_id, event.parent_id):
            bus.publish(event)
        after()
    return (time.perf_counter_ns() - started) / len(events)


def measure(count: int) -> dict[str, float]:
    parent = uuid.uuid4()
    results: dict[str, float] = {}
    bus = EventBus()
    nothing: Callable[[], None] = lambda: None  # noqa: E731
    _per_event(bus, _events(count, None), nothing)  # warm-up: the first pass runs slower
    results["plain"] = _per_event(bus, _events(count, None), nothing)
    results["child_unwatched"] = _per_event(bus, _events(count, parent), nothing)
    with bus.subscribe(uuid.uuid4()):
        results["child_other_watched"] = _per_event(bus, _events(count, parent), nothing)
    delivered: list[JobEvent] = []

    def read() -> None:
        event = sub.receive_nowait()
        if event is not None:
            delivered.append(event)

    with bus.subscribe(parent, buffer=count + 1) as sub:
        results["child_watched"] = _per_event(bus, _events(count, parent), read)
    base = results["plain"]
    out = {f"{name}_ns": round(ns, 1) for name, ns in results.items()}
    out.update({f"{name}_ratio": round(ns / base, 2) for name, ns in results.items()})
    out["events"] = count
    out["child_events_delivered"] = sum(e.kind == "child" and e.job_id == parent for e in delivered)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.child_events")
    parser.add_argument("--events", type=int, default=200_000)
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.events)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
