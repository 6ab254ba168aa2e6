"""The app factory: a Quart app over one running :class:`runtime.Runtime`.

The app holds no jobs: every route calls the runtime. Run it with
:func:`runtime.api.server.serve_api` (Hypercorn, inside the runtime's
lifetime) or any ASGI server. The routes are written against anyio, so one
app serves on either loop: Quart-trio's app class on trio, Quart's own on
asyncio (the loop the runtime runs on).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Literal

import anyio
import sniffio
from quart import Quart, Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from runtime import dashboard
from runtime.api import (
    bulk,
    catalogue,
    chords,
    errors,
    events,
    jobs,
    queues,
    schedules,
    system,
    whoami,
)
from runtime.api.errors import ApiError
from runtime.api.routing import Api, RouteSpec
from runtime.api.state import ApiConfig, ApiState
from runtime.runtime import Runtime

STATE_KEY = "callboard"
ROUTES_KEY = "callboard.routes"
FOLLOW_KEY = "callboard.follow"  # asyncio: the task following the runtime's events


RouteAdder = Callable[[Api, ApiState], None]


Loop = Literal["trio", "asyncio"]


def running_loop() -> Loop:
    """The loop this code runs on; trio outside any (trio is the default)."""
    try:
        return "asyncio" if sniffio.current_async_library() == "asyncio" else "trio"
    except sniffio.AsyncLibraryNotFoundError:
        return "trio"


def create_app(
    runtime: Runtime,
    config: ApiConfig | None = None,
    *,
    extra_routes: Sequence[RouteAdder] = (),
    loop: Loop | None = None,
) -> Quart:
    """The API over ``runtime``. ``extra_routes`` add an application's own routes
    (``add(api, state)`` declaring them with ``api.route``, like the built-in ones).

    ``loop``: the loop the app will be served on, which must be the runtime's
    (default: the one running now, trio outside any): a :class:`QuartTrio`
    app on trio, a plain :class:`Quart` app on asyncio.
    """
    config = config if config is not None else ApiConfig()
    state = ApiState.create(runtime, config)
    loop = loop if loop is not None else running_loop()
    app = (QuartTrio if loop == "trio" else Quart)("callboard", static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = config.body_limit
    app.config["JSON_SORT_KEYS"] = False
    app.config["BODY_TIMEOUT"] = config.body_timeout
    app.extensions[STATE_KEY] = state
    errors.install(app)

    @app.before_request
    async def _limit_body() -> None:
        """413 from the declared length, before anything reads the body."""
        length = request.content_length
        if length is not None and length > config.body_limit:
            raise ApiError(
                413,
                "payload_too_large",
                f"the request body is larger than the limit of {config.body_limit} bytes",
            )

    @app.after_request
    async def _settle_body(response: Response) -> Response:
        """Read what is left of the request's body (bounded by the body limit and
        timeout), so the connection can serve the next request; if that fails,
        ``Connection: close``: a keep-alive client must not wait on a connection
        whose unread body would be taken for its next request."""
        if request.content_length is None and "chunked" not in request.headers.get(
            "Transfer-Encoding", ""
        ):
            return response
        if response.status_code in (408, 413):  # the body is what went wrong: no second try
            response.headers["Connection"] = "close"
            return response
        try:
            await request.get_data(cache=False)
        except HTTPException:  # over the limit (413) or too slow (408)
            response.headers["Connection"] = "close"
        return response

    _follow_while_serving(app, state)
    api = Api(app, state.auth)
    for module in (bulk, jobs, chords, events, catalogue, queues, schedules, system, whoami):
        module.add_routes(api, state)
    for add in extra_routes:
        add(api, state)
    app.extensions[ROUTES_KEY] = api.specs
    if config.dashboard:
        dashboard.install(app)
    return app


def _follow_while_serving(app: Quart, state: ApiState) -> None:
    """Run ``state`` (it follows the runtime's events) from before the app
    serves until after: in the app's nursery on trio; on asyncio, whose Quart
    has none, in a task of its own that stopping the state ends."""
    if isinstance(app, QuartTrio):

        @app.before_serving
        async def _start() -> None:
            await app.nursery.start(state.run)

        @app.after_serving
        async def _stop() -> None:
            state.stop()

        return

    @app.before_serving
    async def _start_task() -> None:
        ready = anyio.Event()

        async def follow() -> None:
            async with anyio.create_task_group() as tg:
                await tg.start(state.run)
                ready.set()

        task = asyncio.create_task(follow())
        app.extensions[FOLLOW_KEY] = task
        waiting = asyncio.create_task(ready.wait())
        await asyncio.wait((task, waiting), return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if task.done():
            task.result()  # it failed to start: its error, raised here, fails the start-up

    @app.after_serving
    async def _stop_task() -> None:
        state.stop()
        task = app.extensions.pop(FOLLOW_KEY, None)
        if task is not None:
            await task


def app_state(app: Quart) -> ApiState:
    state = app.extensions[STATE_KEY]
    assert isinstance(state, ApiState)
    return state


def app_routes(app: Quart) -> list[RouteSpec]:
    """Every route the app declares (what its OpenAPI document describes)."""
    routes: list[RouteSpec] = app.extensions[ROUTES_KEY]
    return routes
