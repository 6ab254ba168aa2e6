"""Plain-text output for people: tables, job details and progress bars."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

BAR_WIDTH_DEFAULT = 24
Column = tuple[str, Callable[[Mapping[str, Any]], Any]]


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> str:
    """Left-aligned columns under a header; long cells are cut with an ellipsis."""
    cells = [[_cell(get(row)) for _, get in columns] for row in rows]
    headers = [name for name, _ in columns]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row_cells in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row_cells, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _cell(value: Any, limit: int = 48) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def when(value: Any) -> str | None:
    """An ISO time as ``YYYY-MM-DD HH:MM:SS``."""
    if not isinstance(value, str):
        return None
    return value.replace("T", " ")[:19]


def bar(progress: float | None, width: int = BAR_WIDTH_DEFAULT) -> str:
    share = max(0.0, min(100.0, progress or 0.0)) / 100.0
    done = round(share * width)
    return "[" + "#" * done + "-" * (width - done) + "]"


JOB_COLUMNS: list[Column] = [
    ("ID", lambda j: j.get("id")),
    ("TYPE", lambda j: j.get("type")),
    ("STATUS", lambda j: j.get("status")),
    ("PROGRESS", lambda j: f"{j.get('progress') or 0:5.1f}%"),
    ("QUEUE", lambda j: j.get("queue")),
    ("ATTEMPT", lambda j: j.get("attempt")),
    ("CREATED", lambda j: when(j.get("created_at"))),
    ("CHECK-IN", lambda j: j.get("check_in") or j.get("error")),
]

_DETAIL = [
    *("id", "type", "description", "group", "queue", "status", "priority", "progress"),
    *("check_in", "check_in_at", "cancel_reason"),
    *("attempt", "max_retries", "retry_delay", "timeout"),
    *("created_at", "scheduled_at", "started_at"),
    *("finished_at", "tenant_id", "user_id", "idempotency_key", "lock_key", "schedule_id"),
    *("status_hook", "params", "result", "error", "errors"),
    *("wall_time", "cpu_time", "peak_memory"),
]


def job_detail(job: Mapping[str, Any]) -> str:
    width = max(len(k) for k in _DETAIL)
    lines = []
    for key in _DETAIL:
        value = job.get(key)
        if value in (None, [], {}) and key not in {"id", "status", "type"}:
            continue
        if key.endswith("_at"):
            value = when(value)
        elif key == "progress":
            value = f"{bar(value)} {value or 0:.1f}%"
        lines.append(f"{key.ljust(width)}  {_cell(value, 200)}")
    return "\n".join(lines)


def progress_line(job: Mapping[str, Any], width: int = BAR_WIDTH_DEFAULT) -> str:
    progress = job.get("progress") or 0.0
    note = job.get("check_in") or job.get("message") or ""
    label = f"{str(job.get('id', ''))[:8]} {job.get('type', '')}"
    line = f"{label:<28} {bar(progress, width)} {progress:5.1f}%  {job.get('status', ''):<10}"
    return f"{line} {note}".rstrip()


def dump(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)
