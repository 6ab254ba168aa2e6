"""``python -m runtime.cli``: the same as the ``callboard`` command."""

from __future__ import annotations

from runtime.cli.entry import run

raise SystemExit(run())
