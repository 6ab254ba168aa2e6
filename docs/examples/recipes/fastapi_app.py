"""FastAPI: a client runtime for the app's lifetime, handed to routes as a dependency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from jobs import Welcome, registry

from runtime import JobNotFound, Runtime


def create_app(url: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # workers=False: this process enqueues and reads; workers run the jobs.
        async with Runtime(url, registry=registry, workers=False) as rt:
            app.state.callboard = rt
            yield

    app = FastAPI(lifespan=lifespan)
    return _routes(app)


def callboard(request: Request) -> Runtime:
    rt: Runtime = request.app.state.callboard
    return rt


Callboard = Annotated[Runtime, Depends(callboard)]


def _routes(app: FastAPI) -> FastAPI:
    @app.post("/signup", status_code=202)
    async def signup(body: Welcome, rt: Callboard) -> dict[str, str]:
        job = await rt.enqueue("welcome", body)
        return {"job": str(job.id)}

    @app.get("/jobs/{job_id}")
    async def job_status(job_id: str, rt: Callboard) -> dict[str, str]:
        try:
            return {"status": (await rt.get(job_id)).status}
        except JobNotFound:
            raise HTTPException(404, "no such job") from None

    return app
