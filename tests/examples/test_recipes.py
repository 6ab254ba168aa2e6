"""docs/recipes.md: each framework recipe, run for real (FastAPI, Flask, Django, a script)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import anyio
import pytest

from runtime import Job, JobStatus, Runtime, SyncClient

RECIPES = Path(__file__).resolve().parents[2] / "docs" / "examples" / "recipes"
sys.path.insert(0, str(RECIPES))  # as the user's project folder would be

import django_views  # noqa: E402
import fastapi_app  # noqa: E402
import flask_app  # noqa: E402
import over_http  # noqa: E402
import script  # noqa: E402
from jobs import registry  # noqa: E402


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'app.db'}"


def _run_all(url: str) -> list[str]:
    """A worker's view: run every waiting job, return their results."""

    async def work() -> list[str]:
        async with Runtime(url, registry=registry) as rt:
            jobs = await rt.list()
            return [(await rt.wait(j.id, timeout=10)).result for j in jobs]

    return anyio.run(work)


def test_docs_show_the_recipes_as_they_are_tested() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "recipes.md").read_text()
    for name in ("jobs", "script", "flask_app", "fastapi_app", "django_views", "over_http"):
        body = (RECIPES / f"{name}.py").read_text()
        assert body.split('"""', 2)[2].strip() in text, name


def test_script(url: str) -> None:
    job_id = script.main(url, "a@example.com")
    assert _run_all(url) == ["sent to a@example.com"]
    with SyncClient(url, registry=registry) as client:
        assert client.get(job_id).status is JobStatus.COMPLETED


def test_flask(url: str) -> None:
    app = flask_app.create_app(url)
    try:
        http = app.test_client()
        answer = http.post("/signup", data={"email": "f@example.com"})
        assert answer.status_code == 202
        job_id = answer.get_json()["job"]
        assert http.get(f"/jobs/{job_id}").get_json() == {"status": "waiting"}
        assert http.get(f"/jobs/{uuid.uuid4()}").status_code == 404
    finally:
        app.extensions["callboard"].close()
    assert _run_all(url) == ["sent to f@example.com"]


def test_fastapi(url: str) -> None:
    import httpx

    app = fastapi_app.create_app(url)

    async def requests() -> None:
        # The ASGI server's part: the lifespan around the requests.
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
                answer = await http.post("/signup", json={"email": "q@example.com"})
                assert answer.status_code == 202, answer.text
                job_id = answer.json()["job"]
                assert (await http.get(f"/jobs/{job_id}")).json() == {"status": "waiting"}
                assert (await http.get(f"/jobs/{uuid.uuid4()}")).status_code == 404
                assert (await http.post("/signup", json={"mail": "x"})).status_code == 422

    anyio.run(requests)
    assert _run_all(url) == ["sent to q@example.com"]


@pytest.fixture
def django_client(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import django
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            INSTALLED_APPS=[],
        )
        django.setup()
    with SyncClient(url, registry=registry) as client:
        monkeypatch.setattr(django_views, "client", client)
        yield


def test_django_enqueues_on_commit_only(url: str, django_client: None) -> None:
    from django.db import transaction
    from django.test import RequestFactory

    request = RequestFactory().post("/signup", {"email": "d@example.com"})
    assert django_views.signup(request).status_code == 202
    with pytest.raises(ZeroDivisionError), transaction.atomic():  # the outer request fails
        django_views.signup(RequestFactory().post("/signup", {"email": "no@example.com"}))
        1 / 0  # noqa: B018
    assert _run_all(url) == ["sent to d@example.com"]


def test_over_http(url: str) -> None:
    """A live server (runtime and API on trio, in a thread of its own); the
    recipe calls it from sync code."""
    from anyio.abc import TaskStatus
    from anyio.from_thread import start_blocking_portal

    from runtime.api import ApiConfig, TokenEntry
    from runtime.api.server import serve_api

    token = TokenEntry(token="shop-operator-token-0001", tenant="shop", role="operator")

    async def serve(*, task_status: TaskStatus[list[str]]) -> None:
        async with Runtime(url, registry=registry) as rt:
            config = ApiConfig(tokens=(token,))
            await serve_api(rt, bind="127.0.0.1:0", config=config, task_status=task_status)

    with start_blocking_portal("trio") as portal:
        running, urls = portal.start_task(serve)
        try:
            welcome = partial(over_http.welcome, urls[0], token.token)
            assert welcome("h@example.com") == "sent to h@example.com"
            assert welcome("h@example.com") == "sent to h@example.com"  # the same job
            assert welcome(["x"]).startswith("refused: ")
        finally:
            running.cancel()

    async def stored() -> list[Job]:
        async with Runtime(url, registry=registry, workers=False) as rt:
            return await rt.list()

    [job] = anyio.run(stored)  # the idempotency key kept it to one
    assert (job.tenant_id, job.idempotency_key) == ("shop", "welcome:h@example.com")
