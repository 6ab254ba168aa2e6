"""The ``callboard`` command (see :mod:`runtime.cli.main`)."""

from __future__ import annotations

from runtime.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
