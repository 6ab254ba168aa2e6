"""``callboard worker --otel``: the attempt's span, made in the worker's process,
continues the trace of the enqueue made in another."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import anyio
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import BaseModel

from runtime import JobContext, Registry, Runtime
from tests.cli.test_serve import callboard, lines_until


class Nothing(BaseModel):
    pass


def _enqueue(db: str) -> tuple[str, int, int]:
    """Enqueue in this process, traced: the job id and the enqueue span's ids.
    (The job type as tests.cli.otel_app declares it: that module sets the
    global tracer provider up, which this process leaves alone.)"""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    async def enqueue() -> str:
        registry = Registry()

        @registry.job(name="traced", queue="otel")
        async def traced(ctx: JobContext, params: Nothing) -> str:
            raise AssertionError("runs in the worker only")

        async with Runtime(db, registry=registry, workers=False, otel=provider) as rt:
            return str((await rt.enqueue("traced")).id)

    job_id = anyio.run(enqueue)
    [sent] = exporter.get_finished_spans()
    return job_id, sent.context.trace_id, sent.context.span_id


def test_the_workers_attempt_continues_the_enqueues_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spans_file = tmp_path / "spans.jsonl"
    monkeypatch.setenv("OTEL_TEST_SPANS_FILE", str(spans_file))
    db = f"sqlite:///{tmp_path / 'o.db'}"
    app = ["--app", "tests.cli.otel_app", "--queues", "otel", "--log-level", "debug"]
    proc = callboard("worker", "--db", db, "--otel", *app, cwd=tmp_path)
    try:
        "".join(lines_until(proc, r"worker .* Ctrl-C stops"))  # it logs status changes at debug
        job_id, trace_id, enqueue_span = _enqueue(db)
        "".join(lines_until(proc, rf"{job_id} traced +completed"))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    spans = {s["name"]: s for s in map(json.loads, spans_file.read_text().splitlines())}
    run, inside = spans["run traced"], spans["inside"]
    assert run["trace_id"] == inside["trace_id"] == trace_id
    assert run["parent_id"] == enqueue_span  # through the job's row, across processes
    assert inside["parent_id"] == run["span_id"]
    assert run["attributes"]["callboard.job.id"] == job_id
    assert run["attributes"]["callboard.job.status"] == "completed"
