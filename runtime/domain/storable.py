"""What both stores keep exactly as given, and what they cannot.

PostgreSQL refuses NUL in text columns; neither store's UTF-8 can hold a
lone surrogate (``os.listdir`` gives them for names that are not UTF-8), and
SQLite's JSON would hand one back that no JSON encoder can answer; NaN and
the infinities are not JSON; a value nested deeper than ``JSON_DEPTH_MAX``
cannot be answered over HTTP. So:

- what a client gives (params, keys, names, filters) is refused with a
  ``ValueError`` naming the field (:func:`check_text`, :func:`json_problem`);
- what a handler returns or checkpoints fails its job, or its call, naming
  the place (:func:`json_problem`);
- the text a handler writes (warnings, log records, check-ins, error
  messages, tracebacks) is stored with those characters written as
  backslash escapes (:func:`escaped`), ``\\x00`` or ``\\udcff``.
"""

from __future__ import annotations

import math
import re
from typing import Any

JSON_DEPTH_MAX = 100
"""How deep params, results and checkpoints may nest (the HTTP API's JSON
encoder gives up past about 250 levels, the job around the value included)."""

_SURROGATE = re.compile("[\ud800-\udfff]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

NUL = "holds a NUL character"
SURROGATE = "holds an unpaired surrogate"


def text_problem(text: str, *, nul: bool = False) -> str | None:
    """What in ``text`` the stores cannot keep (``nul``: NUL is fine here), or None."""
    if not nul and "\x00" in text:
        return NUL
    if not text.isascii() and _SURROGATE.search(text) is not None:
        return SURROGATE
    return None


def check_text(field: str, value: object) -> None:
    """Refuse a client's string that cannot be stored; anything else is left alone."""
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            raise ValueError(f"{field} {problem}, which cannot be stored: {value!r}")


def escaped(text: str) -> tuple[str, int]:
    """``text`` with NUL and unpaired surrogates written as backslash escapes, and
    how many there were (a quick scan when there are none)."""
    if "\x00" not in text and (text.isascii() or _SURROGATE.search(text) is None):
        return text, 0
    return _UNSTORABLE.subn(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


Path = list[str | int]
Problem = tuple[Path, str] | None


def json_problem(
    value: Any, *, nul: bool = False, strict: bool = True, depth: int = JSON_DEPTH_MAX
) -> Problem:
    """Where in ``value`` and why it cannot be stored as JSON, or None if it can.

    ``nul``: NUL characters are fine (JSON escapes them). ``strict``: only JSON
    types pass; otherwise other types are left to whoever converts them (a
    params model does). Iterative in effect: it gives up at ``depth`` levels.
    """
    if _clean(value, nul, depth):  # the usual answer, found without building one
        return None
    return _problem(value, nul, strict, depth)


_PLAIN = frozenset({int, bool, type(None)})


def _clean(value: Any, nul: bool, depth: int) -> bool:
    """Whether ``value`` is plain JSON that every store keeps as given; False also
    for what only :func:`_problem` can judge (subclasses, non-string keys)."""
    kind = type(value)
    if kind is dict:
        if depth <= 0:
            return False
        search = _SURROGATE.search
        for key, item in value.items():  # inlined: this runs for every job's params
            if type(key) is not str or not (nul or "\x00" not in key):
                return False
            if not key.isascii() and search(key) is not None:
                return False
            kind = type(item)
            if kind is str:
                if not (nul or "\x00" not in item) or (
                    not item.isascii() and search(item) is not None
                ):
                    return False
            elif kind in _PLAIN:
                continue
            elif kind is float:
                if not math.isfinite(item):
                    return False
            elif not _clean(item, nul, depth - 1):
                return False
        return True
    if kind is list or kind is tuple:
        return depth > 0 and all(_clean(item, nul, depth - 1) for item in value)
    if kind is str:
        return _clean_text(value, nul)
    if kind is float:
        return math.isfinite(value)
    return kind in _PLAIN


def _clean_text(text: str, nul: bool) -> bool:
    return (nul or "\x00" not in text) and (text.isascii() or _SURROGATE.search(text) is None)


def _problem(value: Any, nul: bool, strict: bool, depth: int) -> Problem:
    kind = type(value)
    if kind is str:
        problem = text_problem(value, nul=nul)
        return None if problem is None else ([], problem)
    if kind is int or kind is bool or value is None:
        return None
    if kind is float:
        return None if math.isfinite(value) else ([], f"{value} is not a JSON number")
    if kind is dict:
        return _in_dict(value, nul, strict, depth)
    if kind is list or kind is tuple:
        return _in_list(value, nul, strict, depth)
    return _other(value, nul, strict, depth)


def _in_dict(value: dict[Any, Any], nul: bool, strict: bool, depth: int) -> Problem:
    if depth <= 0:
        return [], f"it nests deeper than {JSON_DEPTH_MAX} levels"
    for key, item in value.items():
        if type(key) is not str:
            problem = _key_problem(key, nul, strict)
        else:
            text = text_problem(key, nul=nul)
            problem = None if text is None else ([], f"its key {text}")
        if problem is None:
            problem = _problem(item, nul, strict, depth - 1)
        if problem is not None:
            problem[0].insert(0, key if isinstance(key, str | int) else repr(key))
            return problem
    return None


def _key_problem(key: Any, nul: bool, strict: bool) -> Problem:
    if isinstance(key, str | int | float) or key is None:  # JSON writes these as text
        return _problem(key, nul, strict, 0)
    return ([], f"a key of type {type(key).__name__} is not JSON") if strict else None


def _in_list(value: list[Any] | tuple[Any, ...], nul: bool, strict: bool, depth: int) -> Problem:
    if depth <= 0:
        return [], f"it nests deeper than {JSON_DEPTH_MAX} levels"
    for index, item in enumerate(value):
        problem = _problem(item, nul, strict, depth - 1)
        if problem is not None:
            problem[0].insert(0, index)
            return problem
    return None


def _other(value: Any, nul: bool, strict: bool, depth: int) -> Problem:
    """Subclasses of the JSON types (enums, named tuples) are JSON as their base."""
    if isinstance(value, str):
        return _problem(str(value), nul, strict, depth)
    if isinstance(value, bool | int):
        return None
    if isinstance(value, float):
        return _problem(float(value), nul, strict, depth)
    if isinstance(value, dict):
        return _in_dict(value, nul, strict, depth)
    if isinstance(value, list | tuple):
        return _in_list(value, nul, strict, depth)
    return ([], f"an object of type {type(value).__name__} is not JSON") if strict else None


def describe(where: str, problem: tuple[Path, str]) -> str:
    """``where.a.0: why`` for a :func:`json_problem` answer."""
    path, why = problem
    steps = [str(p) for p in path]
    if len(steps) > 8:  # a value too deep: where it starts and ends is enough
        steps[4:-3] = [f"({len(steps) - 7} more)"]
    return f"{'.'.join([where, *steps])}: {why}"
