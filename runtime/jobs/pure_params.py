"""Whether a params model's validation and JSON dump are a pure function of the input.

pydantic's own validators and serializers for plain types always turn
equal input into equal output; only code a model brings along may not (a
default factory such as ``uuid4``, a validator, a serializer, a computed
field, ``model_post_init``, an enum's ``_missing_``, a callable
discriminator, an ``isinstance`` check), or the clock (``FutureDate`` and
the like). A model with none of these in its core schema validates an item
given twice to equal values, so a bulk enqueue validates such an item once
(``runtime.jobs.enqueue``).
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel

_USER_CODE_KEYS: tuple[str, ...] = ("default_factory", "computed_fields", "post_init")
_USER_CODE_KEYS += ("custom_init", "missing", "now_op")
"""Core schema keys that, when set, run a model's own code (or read the clock)
while validating or dumping."""
_USER_CODE_TYPES = ("call", "generator", "is-instance", "is-subclass")
_PURE_MAX = 1024
_PURE: dict[type[BaseModel], bool] = {}


def validation_is_pure(model: type[BaseModel]) -> bool:
    """Whether ``model`` runs no code of its own while validating or dumping (cached)."""
    pure = _PURE.get(model)
    if pure is None:
        if len(_PURE) >= _PURE_MAX:  # models made and dropped (tests)
            _PURE.clear()
        pure = _PURE[model] = _schema_is_pure(model.__pydantic_core_schema__)
    return pure


def _schema_is_pure(schema: Any) -> bool:
    if not isinstance(schema, dict):  # not built yet (a forward reference): assume the worst
        return False
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            kind = node.get("type")
            # function-before/after/wrap/plain: validators and serializers alike
            if isinstance(kind, str) and kind.startswith("function"):
                return False
            if kind in _USER_CODE_TYPES or any(node.get(key) for key in _USER_CODE_KEYS):
                return False
            if callable(node.get("discriminator")):
                return False
            if kind == "enum" and _own_missing(node.get("cls")):  # called for an unknown value
                return False
            stack.extend(node.values())
        elif isinstance(node, list | tuple):
            stack.extend(node)
    return True


def _own_missing(cls: Any) -> bool:
    missing = getattr(cls, "_missing_", None)
    return getattr(missing, "__func__", None) is not _ENUM_MISSING


_ENUM_MISSING = enum.Enum._missing_.__func__  # type: ignore[attr-defined]  # a classmethod's function


def plain_copy(value: Any) -> Any:
    """A copy of plain JSON ``value`` sharing no list or dict with it."""
    kind = type(value)
    if kind is dict:
        return {key: plain_copy(item) for key, item in value.items()}
    if kind is list:
        return [plain_copy(item) for item in value]
    return value
