from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol
from quart.wrappers import Response

from runtime import Registry, Runtime
from runtime.api import ApiConfig, TokenEntry, create_app
from tests.api.jobs import Gates, register

TOKENS = {
    "admin": "admin-token-0123456789",
    "acme": "acme-operator-token-0001",
    "acme-viewer": "acme-viewer-token-00001",
    "globex": "globex-operator-token-01",
}
TOKEN_ENTRIES = (
    TokenEntry(token=TOKENS["admin"], role="admin", name="root"),
    TokenEntry(token=TOKENS["acme"], tenant="acme", role="operator", name="acme-ops"),
    TokenEntry(token=TOKENS["acme-viewer"], tenant="acme", role="viewer"),
    TokenEntry(token=TOKENS["globex"], tenant="globex", role="operator"),
)


@dataclass
class Harness:
    rt: Runtime
    app: Quart  # QuartTrio on trio
    client: TestClientProtocol
    gates: Gates

    async def call(
        self,
        method: str,
        path: str,
        *,
        who: str | None = "admin",
        json: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        query: dict[str, Any] | None = None,
    ) -> Response:
        all_headers = dict(headers or {})
        if who is not None:
            all_headers["Authorization"] = f"Bearer {TOKENS[who]}"
        options: dict[str, Any] = {"headers": all_headers, "query_string": query}
        if json is not None:
            options["json"] = json
        if data is not None:
            options["data"] = data
        response = await self.client.open(path, method=method, **options)
        assert isinstance(response, Response)
        return response

    async def body(self, method: str, path: str, **options: Any) -> tuple[int, Any]:
        response = await self.call(method, path, **options)
        return response.status_code, await response.get_json()


@pytest.fixture
def gates() -> Gates:
    return Gates()


@pytest.fixture
def api_registry(registry: Registry, gates: Gates) -> Registry:
    register(registry, gates)
    return registry


@pytest.fixture
def api_config() -> ApiConfig:
    return ApiConfig(tokens=TOKEN_ENTRIES, sse_keepalive=5.0, sse_poll=5.0)


@pytest.fixture
async def harness(
    make_runtime: Callable[..., Runtime],
    api_registry: Registry,
    api_config: ApiConfig,
    gates: Gates,
) -> AsyncIterator[Harness]:
    async with make_runtime() as rt:
        app = create_app(rt, api_config)
        async with app.test_app() as test_app:
            yield Harness(rt, app, test_app.test_client(), gates)
