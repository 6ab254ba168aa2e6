"""Turning progress reports into a percentage, details and an ETA."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runtime.domain.storable import describe, json_problem


@dataclass(frozen=True, slots=True)
class ProgressReport:
    percent: float
    details: dict[str, Any]


def make_report(
    *,
    percent: float | None = None,
    fraction: float | None = None,
    current: float | None = None,
    total: float | None = None,
    bytes_done: int | None = None,
    bytes_total: int | None = None,
    details: dict[str, Any] | None = None,
    previous: float = 0.0,
) -> ProgressReport:
    """Validate one ``ctx.progress(...)`` call. Exactly one form of amount, or details alone."""
    forms = [
        ("percent", percent is not None),
        ("fraction", fraction is not None),
        ("current/total", current is not None or total is not None),
        ("bytes_done/bytes_total", bytes_done is not None or bytes_total is not None),
    ]
    given = [name for name, present in forms if present]
    if len(given) > 1:
        raise ValueError(
            f"progress takes one of percent, fraction, current/total, bytes: got {given}"
        )
    extra: dict[str, Any] = dict(details or {})
    if extra:  # stored as JSON with the job
        problem = json_problem(extra, nul=True)
        if problem is not None:
            raise ValueError(f"progress details cannot be stored: {describe('details', problem)}")
    if percent is not None:
        value = float(percent)
    elif fraction is not None:
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"progress fraction must be within 0..1, got {fraction}")
        value = 100.0 * float(fraction)
    elif current is not None or total is not None:
        value = _ratio("current", current, "total", total)
        extra.update(current=current, total=total)
    elif bytes_done is not None or bytes_total is not None:
        value = _ratio("bytes_done", bytes_done, "bytes_total", bytes_total)
        extra.update(bytes_done=bytes_done, bytes_total=bytes_total)
    else:
        value = previous
    if not 0.0 <= value <= 100.0:
        raise ValueError(f"progress must be within 0..100, got {value}")
    return ProgressReport(value, extra)


def _ratio(a: str, done: float | None, b: str, total: float | None) -> float:
    if done is None or total is None:
        raise ValueError(f"progress needs both {a} and {b}")
    if total <= 0:
        raise ValueError(f"progress {b} must be > 0, got {total}")
    if done < 0:
        raise ValueError(f"progress {a} must be >= 0, got {done}")
    return min(100.0, 100.0 * done / total)


def estimate_eta(now: float, since: float, start_percent: float, percent: float) -> float | None:
    """Linear ETA from the rate since ``since`` (when progress was ``start_percent``)."""
    gained = percent - start_percent
    elapsed = now - since
    if percent >= 100.0:
        return now
    if gained <= 0 or elapsed <= 0:
        return None
    return now + elapsed * (100.0 - percent) / gained
