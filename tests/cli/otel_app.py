"""An ``--app`` module that sets OpenTelemetry's SDK up, as a user's would:
spans go to the file named by $OTEL_TEST_SPANS_FILE, one JSON object a line."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from pydantic import BaseModel

from runtime import JobContext, Registry

QUEUE = "otel"


class FileExporter(SpanExporter):
    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(self.path, "a") as out:
            for span in spans:
                parent = span.parent.span_id if span.parent is not None else None
                line = {"name": span.name, "trace_id": span.context.trace_id}
                line |= {"span_id": span.context.span_id, "parent_id": parent}
                line |= {"attributes": dict(span.attributes or {})}
                out.write(json.dumps(line) + "\n")
        return SpanExportResult.SUCCESS


provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(FileExporter(os.environ["OTEL_TEST_SPANS_FILE"])))
trace.set_tracer_provider(provider)


class Nothing(BaseModel):
    pass


async def traced(ctx: JobContext, params: Nothing) -> str:
    with trace.get_tracer("otel_app").start_as_current_span("inside"):
        return "done"


def register(registry: Registry) -> None:
    registry.job(name="traced", queue=QUEUE, max_retries=0)(traced)
