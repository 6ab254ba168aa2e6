"""The ``callboard`` command's entry point: one line, not a traceback, when the
``server`` extra it needs is not installed."""

from __future__ import annotations

import sys

from runtime.domain.extras import MissingExtra, require

EXIT_USAGE = 2


def run() -> int:
    try:
        require("server", "the callboard command")
    except MissingExtra as err:
        print(f"callboard: {err}", file=sys.stderr)
        return EXIT_USAGE
    from runtime.cli.main import main

    return main()
