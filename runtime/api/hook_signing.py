"""How a status hook delivery is signed, and how its receiver checks it::

Callboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "Callboard-Signature"
SIGNATURE_TOLERANCE_DEFAULT = 300.0
"""Seconds a signature's timestamp may lie from the receiver's clock."""


def sign(secret: bytes, body: bytes, timestamp: int | None = None) -> str:
    """The value of the ``Callboard-Signature`` header for ``body``."""
    ts = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret, f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={digest}"


def verify(
    secret: bytes,
    body: bytes,
    header: str,
    *,
    tolerance: float = SIGNATURE_TOLERANCE_DEFAULT,
    now: float | None = None,
) -> bool:
    """For receivers: whether ``header`` signs ``body`` with ``secret``, recently."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    stamp, given = fields.get("t", ""), fields.get("v1", "")
    if not stamp.isdigit() or not given:
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > tolerance:
        return False
    expected = sign(secret, body, int(stamp)).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)


__all__ = ["SIGNATURE_HEADER", "SIGNATURE_TOLERANCE_DEFAULT", "sign", "verify"]
