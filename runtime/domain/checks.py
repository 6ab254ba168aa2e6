"""What a number given to the public API must be, checked the same way everywhere.

``isinstance(True, int)`` holds and NaN passes every ``<`` check, so a bare
comparison lets both through; these do not.
"""

from __future__ import annotations

import math

INT_MAX = 2**31 - 1
"""The largest int a job's integer columns hold on every store (PostgreSQL ``integer``)."""


def is_int(value: object) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """An int or float that is not a bool and not NaN (infinities pass)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value == value


def is_finite(value: object) -> bool:
    """A number (see :func:`is_number`) that is not infinite either."""
    return is_number(value) and math.isfinite(value)  # type: ignore[arg-type]
