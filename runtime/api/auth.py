"""Bearer tokens, each mapped to a tenant and a role.

Roles grow: ``viewer`` reads; ``operator`` also enqueues and controls jobs;
``admin`` also manages queues and schedules and sees every tenant. The
tenant always comes from the token, never from the request.

Tokens come from a TOML file (``--tokens FILE`` or ``CALLBOARD_TOKENS_FILE``)::

    [[tokens]]
    token = "a-long-random-string"       # or token_sha256 = "<hex digest>"
    tenant = "acme"
    role = "operator"
    name = "acme-ci"                     # shown as the jobs' user_id

or from ``CALLBOARD_TOKENS="token:tenant:role,token2::admin"``. Tokens are
kept as SHA-256 digests only. With no tokens at all the API is open and
every caller is an anonymous admin: ``serve`` allows that on loopback only.
"""

from __future__ import annotations

import enum
import hashlib
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from runtime.api.errors import ApiError, forbidden
from runtime.domain.storable import check_text

TOKENS_ENV = "CALLBOARD_TOKENS"
TOKENS_FILE_ENV = "CALLBOARD_TOKENS_FILE"
TOKEN_MIN_LENGTH = 16


class Role(enum.StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]


_RANKS = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: from the token, never from the request."""

    name: str
    tenant_id: str | None
    role: Role

    @property
    def scope(self) -> str | None:
        """The tenant filter for reads and control: None (every tenant) for admins."""
        return None if self.role is Role.ADMIN else self.tenant_id

    def narrowed(self, tenant: str | None) -> str | None:
        """The tenant filter of a request naming ``tenant``: an admin may pick any
        tenant, others only their own (403 for another)."""
        if tenant is None or self.role is Role.ADMIN:
            return tenant if tenant is not None else self.scope
        if tenant != self.tenant_id:
            raise forbidden("only an admin token may filter by another tenant")
        return self.scope

    def require(self, role: Role) -> None:
        if self.role.rank < role.rank:
            raise forbidden(f"this needs the {role.value} role; the token has {self.role.value}")

    def sees(self, tenant_id: str | None) -> bool:
        return self.role is Role.ADMIN or tenant_id == self.tenant_id


ANONYMOUS = Principal("anonymous", None, Role.ADMIN)


class TokenEntry(BaseModel):
    """One token of the configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: str | None = Field(default=None, min_length=TOKEN_MIN_LENGTH)
    token_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    tenant: str | None = Field(default=None, min_length=1, max_length=200)
    role: Role = Role.VIEWER
    name: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _check(self) -> TokenEntry:
        if (self.token is None) == (self.token_sha256 is None):
            raise ValueError("give exactly one of token and token_sha256")
        if self.tenant is None and self.role is not Role.ADMIN:
            raise ValueError(f"a {self.role.value} token needs a tenant")
        for field in ("tenant", "name"):  # stored with every job the token enqueues
            check_text(field, getattr(self, field))
        return self

    @property
    def digest(self) -> str:
        return self.token_sha256 or _digest(self.token or "")


class AuthConfigError(ValueError):
    """The token configuration cannot be used."""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Authenticator:
    """Finds the principal of an ``Authorization: Bearer ...`` header."""

    def __init__(self, entries: Sequence[TokenEntry] = ()) -> None:
        self._by_digest: dict[str, Principal] = {}
        for index, entry in enumerate(entries):
            name = entry.name or f"token-{index + 1}"
            self._by_digest[entry.digest] = Principal(name, entry.tenant, entry.role)

    @property
    def enabled(self) -> bool:
        return bool(self._by_digest)

    def authenticate(self, header: str | None) -> Principal:
        if not self.enabled:
            return ANONYMOUS
        if not header:
            raise ApiError(401, "unauthorized", "missing bearer token (Authorization: Bearer ...)")
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, "unauthorized", "the Authorization header must be 'Bearer TOKEN'")
        principal = self._by_digest.get(_digest(token.strip()))
        if principal is None:
            raise ApiError(401, "unauthorized", "unknown bearer token")
        return principal


def load_tokens(
    path: str | Path | None = None, env: Mapping[str, str] | None = None
) -> list[TokenEntry]:
    """Tokens from ``path`` (TOML), else ``CALLBOARD_TOKENS_FILE``, plus ``CALLBOARD_TOKENS``."""
    env = env if env is not None else {}
    entries: list[TokenEntry] = []
    file = path or env.get(TOKENS_FILE_ENV)
    if file:
        entries.extend(_from_file(Path(file)))
    if env.get(TOKENS_ENV):
        entries.extend(_from_env(env[TOKENS_ENV]))
    return entries


def _from_file(path: Path) -> list[TokenEntry]:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise AuthConfigError(f"cannot read tokens file {str(path)!r}: {err}") from err
    items = data.get("tokens", [])
    if not isinstance(items, list):
        raise AuthConfigError(f"{path}: 'tokens' must be an array of tables ([[tokens]])")
    return [_entry(item, f"{path}: tokens[{i}]") for i, item in enumerate(items)]


def _from_env(text: str) -> list[TokenEntry]:
    entries = []
    for i, item in enumerate(part.strip() for part in text.split(",") if part.strip()):
        token, tenant, role = [*item.split(":"), "", ""][:3]
        fields = {"token": token, "tenant": tenant or None, "role": role or Role.VIEWER.value}
        entries.append(_entry(fields, f"{TOKENS_ENV} item {i + 1}"))
    return entries


def _entry(item: Any, where: str) -> TokenEntry:
    try:
        return TokenEntry.model_validate(item)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}"
            for e in err.errors(include_url=False)
        )
        raise AuthConfigError(f"{where}: {problems}") from None
