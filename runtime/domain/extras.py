"""Optional dependencies: which extra brings each, and one clear error without it.

The base install embeds the runtime on SQLite. ``callboard[postgres]`` adds
psycopg (PostgreSQL stores), ``callboard[server]`` the HTTP API, the CLI and
what they use (Quart-trio, Hypercorn, httpx, prometheus-client,
pydantic-settings), ``callboard[client]`` httpx for the HTTP API's client
(``runtime.client``), ``callboard[otel]`` OpenTelemetry's API (spans for
enqueue and each attempt, ``otel=``).
"""

from __future__ import annotations

import importlib

# The modules each extra installs (import names).
EXTRAS: dict[str, tuple[str, ...]] = {
    "postgres": ("psycopg",),
    "server": (
        "quart",
        "quart_trio",
        "hypercorn",
        "httpx",
        "prometheus_client",
        "pydantic_settings",
    ),
    "otel": ("opentelemetry.trace",),
    "client": ("httpx",),
}


class MissingExtra(ImportError):
    """A feature needs an optional dependency that is not installed."""


def missing(extra: str) -> str | None:
    """The first module of ``extra`` that does not import, or None."""
    for module in EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError:
            return module
    return None


def require(extra: str, feature: str) -> None:
    """Raise :class:`MissingExtra` naming ``extra`` unless its modules import."""
    module = missing(extra)
    if module is not None:
        raise MissingExtra(
            f"{feature} needs the callboard[{extra}] extra ({module} is not installed): "
            f"pip install 'callboard[{extra}]'"
        )
