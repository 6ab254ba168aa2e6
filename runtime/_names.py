"""A plain error when a user's own ``actors.py`` hides Callboard's engine.

Callboard's packages are ``runtime`` and ``actors``; a script's folder comes
first on ``sys.path``, so a module of that name beside the script is found
before them. For ``actors`` this says so (imported first by
``runtime/__init__.py``); a ``runtime.py`` of the user's hides this whole
package, and Python's own error names that file.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def check_engine() -> None:
    home = Path(__file__).resolve().parent.parent
    spec = importlib.util.find_spec("actors")
    origin = spec.origin if spec is not None else None
    if origin is None or Path(origin).resolve().parent.parent != home:
        raise ImportError(
            f"your module {origin or 'actors'} hides Callboard's engine package 'actors' "
            f"(installed at {home / 'actors'}): rename your module or move it out of "
            "the script's folder"
        )


check_engine()
