"""The dashboard's pages and assets: served without a token, from the package's data."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from runtime import Runtime
from runtime.api import ApiConfig, create_app
from runtime.dashboard import CSP, assets
from tests.api.conftest import Harness

REPO = Path(__file__).resolve().parents[2]
SHIPPED = (
    "index.html",
    "docs.html",
    "style.css",
    "js/app.js",
    "js/views/jobs.js",
    "vendor/swagger-ui/swagger-ui-bundle.js",
    "vendor/swagger-ui/swagger-ui.css",
    "vendor/swagger-ui/LICENSE",
    "vendor/swagger-ui/README.md",
)


@pytest.mark.trio
async def test_pages_and_assets_need_no_token_but_the_api_does(harness: Harness) -> None:
    for path, kind in [
        ("/", "text/html"),
        ("/docs", "text/html"),
        ("/dashboard/js/app.js", "text/javascript"),
        ("/dashboard/style.css", "text/css"),
        ("/dashboard/vendor/swagger-ui/swagger-ui-bundle.js", "text/javascript"),
    ]:
        response = await harness.call("GET", path, who=None)
        assert response.status_code == 200, path
        assert response.mimetype == kind
        assert response.headers["Content-Security-Policy"] == CSP
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/api/v1/jobs", "/api/v1/whoami", "/api/v1/queues"):
        assert (await harness.call("GET", path, who=None)).status_code == 401


@pytest.mark.trio
async def test_an_app_may_leave_the_dashboard_out(make_runtime: Callable[..., Runtime]) -> None:
    async with make_runtime() as rt:
        app = create_app(rt, ApiConfig(dashboard=False))
        async with app.test_app() as test_app:
            client = test_app.test_client()
            for path in ("/", "/docs", "/dashboard/js/app.js"):
                assert (await client.get(path)).status_code == 404
            assert (await client.get("/healthz")).status_code == 200


@pytest.mark.trio
async def test_only_the_packages_files_are_served(harness: Harness) -> None:
    for path in (
        "/dashboard/nope.js",
        "/dashboard/../__init__.py",
        "/dashboard/%2e%2e/__init__.py",
        "/dashboard/js",
        "/dashboard/",
    ):
        response = await harness.call("GET", path, who=None)
        assert response.status_code == 404, path


@pytest.mark.trio
async def test_an_unchanged_asset_answers_304(harness: Harness) -> None:
    first = await harness.call("GET", "/dashboard/js/api.js", who=None)
    etag = first.headers["ETag"]
    again = await harness.call(
        "GET", "/dashboard/js/api.js", who=None, headers={"If-None-Match": etag}
    )
    assert again.status_code == 304 and await again.get_data() == b""


def test_the_pages_load_nothing_from_elsewhere() -> None:
    for name, file in assets().items():
        if name.startswith("vendor/") or not name.endswith((".html", ".js", ".css")):
            continue
        text = file.read_text().replace('"http://www.w3.org/2000/svg"', "")  # a name
        assert "http://" not in text and "https://" not in text, name


def test_a_built_wheel_ships_the_static_files(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("callboard-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"runtime/dashboard/static/{name}" for name in assets()}
    assert expected <= names
    assert {f"runtime/dashboard/static/{name}" for name in SHIPPED} <= names
