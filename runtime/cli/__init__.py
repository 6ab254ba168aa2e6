"""The ``callboard`` command (see :mod:`runtime.cli.main`).

An interface: ``serve`` and ``worker`` run a ``Runtime`` (with the HTTP
API), the other commands talk to a running server over HTTP. It may import
anything below it: ``runtime.api``, the facade (``runtime``,
``runtime.runtime``) and, for their types, the concepts and the domain.
Nothing imports it.
"""

from __future__ import annotations

from runtime.domain.extras import missing

# Without the server extra, runtime.cli.entry says so in one line.
if missing("server") is None:
    from runtime.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
