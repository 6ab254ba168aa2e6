"""The checks of a Runtime's settings: a bad one is a clear error before anything starts."""

from __future__ import annotations

from runtime.domain.checks import is_finite, is_int, is_number


def check_settings(
    *,
    grace_period: float,
    poll_interval: float,
    lease: float,
    heartbeat_interval: float,
    progress_interval: float,
    log_limit: int,
    sweep_interval: float,
    loop_watchdog: float | None = None,
) -> None:
    """Raise ``ValueError`` naming the first Runtime setting that cannot be used.

    NaN passes every ``<`` check, so each number is checked for being one first.
    """
    if not (is_number(grace_period) and grace_period >= 0):
        raise ValueError(f"grace_period must be >= 0, got {grace_period!r}")
    # math.inf turns polling off (wake-ups then come from this process only).
    if not (is_number(poll_interval) and poll_interval > 0):
        raise ValueError(f"poll_interval must be > 0 (math.inf to not poll), got {poll_interval!r}")
    # The lease is a stored expiry time, so it must be finite.
    if not (is_number(heartbeat_interval) and is_finite(lease) and 0 < heartbeat_interval < lease):
        raise ValueError(
            f"lease ({lease!r}) must be finite and longer than heartbeat_interval "
            f"({heartbeat_interval!r}), which must be > 0"
        )
    for name, value in (
        ("progress_interval", progress_interval),
        ("sweep_interval", sweep_interval),
    ):
        if not (is_number(value) and value > 0):
            raise ValueError(f"{name} must be > 0, got {value!r}")
    if loop_watchdog is not None and not (is_finite(loop_watchdog) and loop_watchdog > 0):
        raise ValueError(f"loop_watchdog must be > 0 seconds or None, got {loop_watchdog!r}")
    # The log keeps a note of dropped records within the limit, so at least one.
    if not (is_int(log_limit) and log_limit >= 1):
        raise ValueError(f"log_limit must be an int >= 1, got {log_limit!r}")
