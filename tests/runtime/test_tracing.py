"""OpenTelemetry spans: one per enqueue, one per attempt, the trace carried
through the job's row from one to the other (runtime.jobs.tracing)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel
from sqlalchemy import select

from runtime import InvalidParams, JobContext, JobStatus, Registry, Runtime
from runtime.jobs.sync_handlers import SyncJobContext
from runtime.store.tables import jobs

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Spans:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer("tests")

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name == name]

    def one(self, name: str) -> ReadableSpan:
        [span] = self.named(name)
        return span


@pytest.fixture
def spans() -> Iterator[Spans]:
    spans = Spans()
    yield spans
    spans.provider.shutdown()


class Work(BaseModel):
    n: int = 1
    fail: bool = False


@pytest.fixture
def traced_registry(registry: Registry, spans: Spans) -> Registry:
    @registry.job(name="work", queue="q", max_retries=0)
    async def work(ctx: JobContext, params: Work) -> int:
        with spans.tracer.start_as_current_span("inside"):  # the handler's own span
            if params.fail:
                raise ValueError(f"bad n {params.n}")
            return params.n

    @registry.job(name="threaded", queue="q")
    def threaded(ctx: SyncJobContext, params: Work) -> int:
        with spans.tracer.start_as_current_span("inside thread"):
            return params.n

    return registry


def _parent_of(span: ReadableSpan) -> int:
    assert span.parent is not None, f"{span.name} has no parent"
    return span.parent.span_id


async def test_an_attempt_is_a_child_of_its_enqueue(
    make_runtime: Callable[..., Runtime], traced_registry: Registry, spans: Spans
) -> None:
    async with make_runtime(otel=spans.provider) as rt:
        with spans.tracer.start_as_current_span("request") as request:
            job = await rt.enqueue("work", {"n": 7}, tenant_id="acme")
        assert (await rt.wait(job.id, timeout=30)).status is JobStatus.COMPLETED
    sent, run, inside = spans.one("enqueue work"), spans.one("run work"), spans.one("inside")
    assert sent.kind is SpanKind.PRODUCER and run.kind is SpanKind.CONSUMER
    trace_id = request.get_span_context().trace_id
    assert {s.context.trace_id for s in (sent, run, inside)} == {trace_id}
    assert _parent_of(sent) == request.get_span_context().span_id
    assert _parent_of(run) == sent.context.span_id
    assert _parent_of(inside) == run.context.span_id
    assert sent.attributes is not None and run.attributes is not None
    assert dict(sent.attributes) == {
        "messaging.system": "callboard",
        "messaging.operation.type": "send",
        "messaging.destination.name": "q",
        "callboard.job.type": "work",
        "callboard.job.queue": "q",
        "callboard.tenant": "acme",
        "callboard.job.id": str(job.id),
    }
    assert run.attributes["callboard.job.id"] == str(job.id)
    assert run.attributes["callboard.job.type"] == "work"
    assert run.attributes["callboard.job.queue"] == "q"
    assert run.attributes["callboard.job.attempt"] == 1
    assert run.attributes["callboard.tenant"] == "acme"
    assert run.attributes["callboard.job.status"] == "completed"
    assert run.status.status_code is StatusCode.OK


async def test_the_trace_travels_with_the_job_to_another_runtime(
    store_url: str, traced_registry: Registry, spans: Spans
) -> None:
    """The enqueuing runtime runs no jobs and stops before the worker starts:
    only the stored trace context links the attempt to the enqueue."""
    client = Runtime(store_url, registry=traced_registry, workers=False, otel=spans.provider)
    async with client as rt:
        job = await rt.enqueue("work", {"n": 2})
        [stored] = await rt.list()
    assert stored.id == job.id
    sent = spans.one("enqueue work")
    async with Runtime(store_url, registry=traced_registry, otel=spans.provider) as rt:
        assert (await rt.wait(job.id, timeout=30)).status is JobStatus.COMPLETED
    run = spans.one("run work")
    assert run.context.trace_id == sent.context.trace_id
    assert _parent_of(run) == sent.context.span_id
    assert run.parent is not None and run.parent.is_remote  # from the row, not this task


async def test_a_failed_attempt_records_its_error(
    make_runtime: Callable[..., Runtime], traced_registry: Registry, spans: Spans
) -> None:
    async with make_runtime(otel=spans.provider) as rt:
        job = await rt.enqueue("work", {"n": 3, "fail": True})
        assert (await rt.wait(job.id, timeout=30)).status is JobStatus.FAILED
    run = spans.one("run work")
    assert run.status.status_code is StatusCode.ERROR
    assert run.status.description == "ValueError: bad n 3"
    assert run.attributes is not None and run.attributes["callboard.job.status"] == "failed"
    [event] = [e for e in run.events if e.name == "exception"]
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "ValueError"


async def test_a_refused_enqueue_is_an_error_span(
    make_runtime: Callable[..., Runtime], traced_registry: Registry, spans: Spans
) -> None:
    async with make_runtime(otel=spans.provider) as rt:
        with pytest.raises(InvalidParams):
            await rt.enqueue("work", {"n": "many"})
    sent = spans.one("enqueue work")
    assert sent.status.status_code is StatusCode.ERROR
    assert [e.name for e in sent.events] == ["exception"]


async def test_a_batch_is_one_span_and_a_sync_handler_nests_in_its_attempt(
    make_runtime: Callable[..., Runtime], traced_registry: Registry, spans: Spans
) -> None:
    async with make_runtime(otel=spans.provider) as rt:
        jobs = await rt.enqueue_many("threaded", [{"n": 1}, {"n": 2}])
        for job in jobs:
            assert (await rt.wait(job.id, timeout=30)).status is JobStatus.COMPLETED
    sent = spans.one("enqueue threaded")
    assert sent.attributes is not None
    assert sent.attributes["messaging.batch.message_count"] == 2
    runs = spans.named("run threaded")
    assert len(runs) == 2 and {_parent_of(r) for r in runs} == {sent.context.span_id}
    insides = spans.named("inside thread")
    assert {_parent_of(s) for s in insides} == {r.context.span_id for r in runs}


async def test_without_otel_no_context_is_stored(
    make_runtime: Callable[..., Runtime], traced_registry: Registry, tmp_path: Path
) -> None:
    async with make_runtime(workers=False) as rt:
        job = await rt.enqueue("work", {})
        row: Any = await rt.store.read(_trace_context_of, job.id)
    assert row is None


def _trace_context_of(conn: Any, job_id: Any) -> Any:
    return conn.execute(select(jobs.c.trace_context).where(jobs.c.id == job_id)).scalar_one()


def test_tracing_off_never_imports_opentelemetry(tmp_path: Path) -> None:
    code = """
        import sys
        import trio
        from pydantic import BaseModel
        from runtime import JobContext, Registry, Runtime

        registry = Registry()

        class Nothing(BaseModel):
            pass

        @registry.job(name="noop")
        async def noop(ctx: JobContext, params: Nothing) -> int:
            return 1

        async def main() -> None:
            async with Runtime("sqlite:///off.db", registry=registry) as rt:
                job = await rt.enqueue("noop")
                assert (await rt.wait(job.id, timeout=30)).result == 1
            loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
            print(loaded)

        trio.run(main)
    """
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_otel_wants_a_bool_or_a_provider() -> None:
    with pytest.raises(TypeError, match="otel must be a bool or an OpenTelemetry TracerProvider"):
        Runtime("sqlite:///x.db", otel="yes")  # type: ignore[arg-type]
