"""The HTTP API: a Quart app (Quart-trio's on trio) over a running Runtime.

::

    async with Runtime("sqlite:///callboard.db") as rt:
        await serve_api(rt, bind="127.0.0.1:8000")

An interface: routes, auth, Server-Sent Events, hooks and metrics over the
facade (``runtime.runtime.Runtime``). It may import the facade and, for
their types and reads, the concepts, the store and the domain; nothing
below it imports it, except the CLI that serves it.
"""

from __future__ import annotations

from runtime.domain.extras import require

require("server", "the HTTP API")

from runtime.api.app import app_routes, app_state, create_app
from runtime.api.auth import Authenticator, Principal, Role, TokenEntry, load_tokens
from runtime.api.errors import ApiError
from runtime.api.state import ApiConfig, ApiState

__all__ = [
    "ApiConfig",
    "ApiError",
    "ApiState",
    "Authenticator",
    "Principal",
    "Role",
    "TokenEntry",
    "app_routes",
    "app_state",
    "create_app",
    "load_tokens",
]
