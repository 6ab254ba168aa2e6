"""Retry delays: exponential from the type's ``retry_delay``, jittered, capped."""

from __future__ import annotations

import random

RETRY_BACKOFF_CAP_DEFAULT = 3600.0
RETRY_JITTER_DEFAULT = 0.2  # +-20%: spreads retries of jobs that failed together


def retry_delay(
    attempt: int,
    base: float,
    *,
    cap: float = RETRY_BACKOFF_CAP_DEFAULT,
    jitter: float = RETRY_JITTER_DEFAULT,
    rng: random.Random | None = None,
) -> float:
    """The delay before the attempt after ``attempt`` (1-based) failed."""
    if base <= 0:
        return 0.0
    # Doublings past 1,023 overflow a float: by then any cap is reached anyway.
    raw = min(cap, base * 2.0 ** min(max(0, attempt - 1), 1023))
    spread: float = (rng or random).uniform(1 - jitter, 1 + jitter)
    return min(cap, raw * spread)
