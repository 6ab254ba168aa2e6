"""``python -m runtime.cli``: the same as the ``callboard`` command."""

from __future__ import annotations

from runtime.cli.main import main

raise SystemExit(main())
