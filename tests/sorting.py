"""The order in which ``__all__`` lists are kept (ruff's RUF022, isort style)."""

from __future__ import annotations


def isort_key(name: str) -> tuple[int, str]:
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)
