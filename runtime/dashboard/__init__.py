"""The web dashboard at ``/`` and the API docs at ``/docs``: static files in this package.

The pages hold no data and need no token: they are the login page and the
code that asks the API (with the token the browser keeps for the session)
for everything else. Plain ES modules and hand-written CSS, served as they
are; Swagger UI is vendored under ``static/vendor/swagger-ui`` (see its
README for the version and licence).
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from quart import Quart, Response, request
from werkzeug.exceptions import NotFound

ASSET_PREFIX = "/dashboard/"
PAGES = {"/": "index.html", "/docs": "docs.html"}
_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".md": "text/plain"}
# Swagger UI sets inline styles; nothing of either page loads from elsewhere.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def _walk(folder: Traversable, prefix: str = "") -> dict[str, Traversable]:
    found: dict[str, Traversable] = {}
    for item in folder.iterdir():
        name = prefix + item.name
        if item.is_dir():
            found.update(_walk(item, name + "/"))
        elif item.is_file():
            found[name] = item
    return found


def assets() -> dict[str, Traversable]:
    """Every file the dashboard serves, by its path under ``static/``."""
    return _walk(resources.files(__name__).joinpath("static"))


class Assets:
    """The package's static files, read once each; only these names are served."""

    def __init__(self) -> None:
        self._files = assets()
        self._loaded: dict[str, Asset] = {}

    def get(self, name: str) -> Asset | None:
        if name not in self._files:
            return None
        if name not in self._loaded:
            body = self._files[name].read_bytes()
            suffix = "." + name.rpartition(".")[2]
            kind = _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "text/plain"
            if kind.startswith("text/"):
                kind += "; charset=utf-8"
            etag = hashlib.sha256(body).hexdigest()[:32]
            self._loaded[name] = Asset(body, kind, f'"{etag}"')
        return self._loaded[name]


def _respond(asset: Asset) -> Response:
    headers = {
        "Cache-Control": "no-cache",  # revalidate: an upgrade shows at once
        "ETag": asset.etag,
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    if asset.etag in request.headers.get("If-None-Match", ""):
        return Response(b"", 304, headers=headers)
    return Response(asset.body, 200, headers=headers, content_type=asset.content_type)


def install(app: Quart) -> None:
    """Serve the dashboard's pages and assets from ``app`` (no token needed)."""
    files = Assets()

    async def page() -> Response:
        asset = files.get(PAGES[request.path])
        assert asset is not None, "the pages ship with the package"
        return _respond(asset)

    async def asset(name: str) -> Response:
        found = files.get(name)
        if found is None:
            raise NotFound(f"no dashboard file {name!r}")  # the app answers it as JSON
        return _respond(found)

    for path in PAGES:
        app.add_url_rule(path, endpoint=f"dashboard {path}", view_func=page, methods=["GET"])
    app.add_url_rule(
        ASSET_PREFIX + "<path:name>", endpoint="dashboard asset", view_func=asset, methods=["GET"]
    )
