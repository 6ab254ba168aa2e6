"""OpenTelemetry spans for enqueue and for each attempt (the ``otel`` extra).

Off unless a runtime is made with ``otel=`` (``--otel`` / ``CALLBOARD_OTEL``
for the service): only then is this module, and so ``opentelemetry``,
imported. An enqueue is a PRODUCER span; its W3C trace context
(``traceparent``, ``tracestate``) is stored with each job it makes, in the
job's ``trace_context`` column, and each attempt is a CONSUMER span whose
parent is that context, in whichever process claims the job. The attempt's
span is the current one while its handler runs: the handler's own spans
are its children.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from runtime.domain.extras import require

require("otel", "tracing (otel=)")

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from runtime.domain.status import JobStatus

INSTRUMENTATION = "callboard"
SYSTEM = "callboard"

_FAILED = frozenset({JobStatus.FAILED.value, JobStatus.TIMEOUT.value})
_RETRIED = frozenset({JobStatus.SCHEDULED.value, JobStatus.WAITING.value})


def _version() -> str:
    try:
        return version("callboard")
    except PackageNotFoundError:  # run from a checkout
        return "0"


class JobTracing:
    """Makes the spans of one runtime. ``provider``: None for OpenTelemetry's
    global tracer provider (as the SDK or ``opentelemetry-instrument`` set it)."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        provider = provider if provider is not None else trace.get_tracer_provider()
        self._tracer = provider.get_tracer(INSTRUMENTATION, _version())
        self._propagator = TraceContextTextMapPropagator()

    async def enqueue(
        self,
        job_type: str,
        queue: str,
        tenant_id: str | None,
        store: Callable[[dict[str, str]], Awaitable[Sequence[Any]]],
    ) -> Sequence[Any]:
        """Run ``store(trace_context)`` inside an enqueue span; the jobs it returns
        name the span's job ids (one job) or count (several)."""
        attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "send",
            "messaging.destination.name": queue,
            "callboard.job.type": job_type,
            "callboard.job.queue": queue,
        }
        if tenant_id is not None:
            attributes["callboard.tenant"] = tenant_id
        with self._tracer.start_as_current_span(
            f"enqueue {job_type}", kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            carrier: dict[str, str] = {}
            self._propagator.inject(carrier)
            jobs = await store(carrier)
            if len(jobs) == 1:
                span.set_attribute("callboard.job.id", str(jobs[0].id))
            else:
                span.set_attribute("messaging.batch.message_count", len(jobs))
            return jobs

    @contextmanager
    def attempt(self, row: Mapping[str, Any]) -> Iterator[Span]:
        """Start the span of the attempt ``row`` (a claimed job) and make it the
        current one inside the block; :meth:`ended` ends it."""
        span = self.start_attempt(row)
        with trace.use_span(
            span, end_on_exit=False, record_exception=False, set_status_on_exception=False
        ):
            yield span

    def start_attempt(self, row: Mapping[str, Any]) -> Span:
        parent = self._propagator.extract(row.get("trace_context") or {})
        attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "process",
            "messaging.destination.name": row["queue"],
            "messaging.message.id": str(row["id"]),
            "callboard.job.id": str(row["id"]),
            "callboard.job.type": row["type"],
            "callboard.job.queue": row["queue"],
            "callboard.job.attempt": row["attempt"],
        }
        if row.get("tenant_id") is not None:
            attributes["callboard.tenant"] = row["tenant_id"]
        return self._tracer.start_span(
            f"run {row['type']}", context=parent, kind=SpanKind.CONSUMER, attributes=attributes
        )

    def ended(self, span: Span, values: Mapping[str, Any], error: BaseException | None) -> None:
        """End an attempt's span with what the attempt came to (``values``: the
        columns that record it, as :func:`runtime.jobs.outcomes.decide` made them)."""
        status = str(values["status"])
        span.set_attribute("callboard.job.status", status)
        message = values.get("error")
        if status in _FAILED or (status in _RETRIED and message is not None):
            if error is not None:
                span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, message))
        elif status == JobStatus.COMPLETED.value:
            span.set_status(Status(StatusCode.OK))
        span.end()


def make_tracing(otel: object) -> JobTracing | None:
    """``Runtime(otel=...)``: False for none, True for the global tracer provider,
    or a tracer provider of its own."""
    if otel is False or otel is None:
        return None
    if otel is True:
        return JobTracing()
    if not isinstance(otel, TracerProvider):
        raise TypeError(f"otel must be a bool or an OpenTelemetry TracerProvider, got {otel!r}")
    return JobTracing(otel)
