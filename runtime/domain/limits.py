"""Rate limits: "100/minute"-style, at most N starts per period."""

from __future__ import annotations

import re
from dataclasses import dataclass

PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*\.?\d*)\s*([a-z]+?)s?\s*$")


@dataclass(frozen=True, slots=True)
class RateLimit:
    count: int
    period: float  # seconds


def parse_rate_limit(text: str) -> RateLimit:
    """Parse ``"100/minute"``, ``"5/second"``, ``"10/5 minutes"``, ``"1000/day"``."""
    match = _RATE.match(text.lower())
    if match is None or match.group(3) not in PERIODS:
        raise ValueError(
            f"rate limit {text!r} is not N/period (period: second, minute, hour or day)"
        )
    count, multiple, unit = int(match.group(1)), match.group(2), match.group(3)
    if count < 1:
        raise ValueError(f"rate limit {text!r}: the count must be >= 1")
    period = PERIODS[unit] * (float(multiple) if multiple else 1.0)
    if period <= 0:
        raise ValueError(f"rate limit {text!r}: the period must be > 0")
    return RateLimit(count, period)
