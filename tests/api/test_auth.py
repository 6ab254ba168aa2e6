from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from runtime import Registry, Runtime
from runtime.api import ApiConfig, Authenticator, Role, TokenEntry, create_app, load_tokens
from runtime.api.auth import AuthConfigError
from runtime.api.server import InsecureBind, check_bind
from tests.api.conftest import TOKENS, Harness

trio_test = pytest.mark.trio


@trio_test
async def test_missing_or_unknown_token_is_401_with_a_bearer_challenge(harness: Harness) -> None:
    response = await harness.call("GET", "/api/v1/jobs", who=None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = await response.get_json()
    assert body["error"] == "unauthorized" and "missing bearer token" in body["message"]
    for header in ("Bearer not-a-known-token-at-all", "Basic dXNlcjpwYXNz", "Bearer "):
        response = await harness.call(
            "GET", "/api/v1/jobs", who=None, headers={"Authorization": header}
        )
        assert response.status_code == 401


@trio_test
async def test_roles_viewer_reads_operator_controls_admin_manages_queues(harness: Harness) -> None:
    status, body = await harness.body(
        "POST", "/api/v1/jobs", who="acme-viewer", json={"type": "echo"}
    )
    assert (status, body["error"]) == (403, "forbidden")
    assert "operator" in body["message"] and "viewer" in body["message"]
    assert (await harness.call("GET", "/api/v1/jobs", who="acme-viewer")).status_code == 200
    status, _ = await harness.body("POST", "/api/v1/jobs", who="acme", json={"type": "echo"})
    assert status == 201
    status, _ = await harness.body("POST", "/api/v1/queues/default/pause", who="acme")
    assert status == 403
    assert (await harness.call("GET", "/metrics", who="acme")).status_code == 403
    status, _ = await harness.body("POST", "/api/v1/queues/default/pause", who="admin")
    assert status == 200


@trio_test
async def test_a_tenant_cannot_see_or_touch_another_tenants_jobs(harness: Harness) -> None:
    _, theirs = await harness.body(
        "POST", "/api/v1/jobs", who="globex", json={"type": "echo", "delay": 3600}
    )
    _, ours = await harness.body(
        "POST", "/api/v1/jobs", who="acme", json={"type": "echo", "delay": 3600}
    )
    assert theirs["tenant_id"] == "globex"
    path = f"/api/v1/jobs/{theirs['id']}"
    for method, suffix in [
        ("GET", ""),
        ("DELETE", ""),
        ("POST", "/cancel"),
        ("POST", "/suspend"),
        ("POST", "/resume"),
        ("POST", "/retry"),
        ("GET", "/wait"),
        ("GET", "/logs"),
        ("GET", "/events"),
    ]:
        status, body = await harness.body(method, path + suffix, who="acme")
        assert (status, body["error"]) == (404, "not_found"), (method, suffix)
    _, page = await harness.body("GET", "/api/v1/jobs", who="acme")
    assert [j["id"] for j in page["jobs"]] == [ours["id"]]
    _, everything = await harness.body("GET", "/api/v1/jobs", who="admin")
    assert {j["id"] for j in everything["jobs"]} == {ours["id"], theirs["id"]}
    # The tenant comes from the token, never from the body.
    status, body = await harness.body(
        "POST", "/api/v1/jobs", who="acme", json={"type": "echo", "tenant_id": "globex"}
    )
    assert status == 422 and body["details"][0]["loc"] == ["body", "tenant_id"]


@trio_test
async def test_without_tokens_everyone_is_an_anonymous_admin(
    make_runtime: Callable[..., Runtime], api_registry: Registry
) -> None:
    async with make_runtime() as rt:
        app = create_app(rt, ApiConfig())
        async with app.test_app() as test_app:
            client = test_app.test_client()
            response = await client.post("/api/v1/jobs", json={"type": "echo"})
            assert response.status_code == 201
            assert (await response.get_json())["user_id"] == "anonymous"
            assert (await client.get("/metrics")).status_code == 200


def test_tokens_load_from_a_toml_file_and_the_environment(tmp_path: Path) -> None:
    file = tmp_path / "tokens.toml"
    file.write_text(
        '[[tokens]]\ntoken = "file-token-0123456789"\ntenant = "acme"\nrole = "operator"\n'
        f'[[tokens]]\ntoken_sha256 = "{"ab" * 32}"\nrole = "admin"\n'
    )
    env = {"CALLBOARD_TOKENS": "env-token-01234567890:globex:viewer, root-token-0123456789::admin"}
    entries = load_tokens(file, env)
    assert [(e.tenant, e.role) for e in entries] == [
        ("acme", Role.OPERATOR),
        (None, Role.ADMIN),
        ("globex", Role.VIEWER),
        (None, Role.ADMIN),
    ]
    auth = Authenticator(entries)
    principal = auth.authenticate("Bearer env-token-01234567890")
    assert (principal.tenant_id, principal.role, principal.scope) == (
        "globex",
        Role.VIEWER,
        "globex",
    )
    assert auth.authenticate("bearer root-token-0123456789").scope is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("short:acme:viewer", "at least 16 characters"),
        ("a-long-enough-token-1::viewer", "a viewer token needs a tenant"),
        ("a-long-enough-token-1:acme:boss", "role"),
    ],
)
def test_bad_token_configuration_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(AuthConfigError, match=message) as caught:
        load_tokens(None, {"CALLBOARD_TOKENS": text})
    assert "CALLBOARD_TOKENS item 1" in str(caught.value)
    assert text.split(":")[0] not in str(caught.value)  # never echo a token


def test_unreadable_tokens_file_is_a_configuration_error(tmp_path: Path) -> None:
    bad = tmp_path / "tokens.toml"
    bad.write_text("tokens = [[[")
    with pytest.raises(AuthConfigError, match="cannot read tokens file"):
        load_tokens(bad, {})


def test_serving_beyond_loopback_needs_tokens_or_insecure() -> None:
    for bind in ("127.0.0.1:8000", "localhost:0", "[::1]:8000"):
        check_bind(bind, has_tokens=False, insecure=False)
    with pytest.raises(InsecureBind, match=r"refusing to serve on 0\.0\.0\.0:8000 without tokens"):
        check_bind("0.0.0.0:8000", has_tokens=False, insecure=False)
    with pytest.raises(InsecureBind):
        check_bind("example.com:80", has_tokens=False, insecure=False)
    check_bind("0.0.0.0:8000", has_tokens=True, insecure=False)
    check_bind("0.0.0.0:8000", has_tokens=False, insecure=True)
    with pytest.raises(ValueError, match="HOST:PORT"):
        check_bind("nonsense", has_tokens=True, insecure=False)


def test_token_entries_are_validated_on_construction() -> None:
    with pytest.raises(ValueError, match="exactly one of token and token_sha256"):
        TokenEntry(role=Role.ADMIN)
    assert TokenEntry(token=TOKENS["admin"], role=Role.ADMIN).digest != TOKENS["admin"]


def test_token_tenants_and_names_no_store_keeps_are_refused() -> None:
    # Stored with every job the token enqueues: PostgreSQL would refuse the NUL.
    with pytest.raises(ValueError, match="tenant holds a NUL character"):
        TokenEntry(token=TOKENS["acme"], tenant="ac\x00me", role=Role.OPERATOR)
    with pytest.raises(ValueError, match="unable to parse raw data as a unicode string"):
        TokenEntry(token=TOKENS["admin"], role=Role.ADMIN, name="r\udcffoot")
