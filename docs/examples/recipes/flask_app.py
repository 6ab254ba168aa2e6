"""Flask: one SyncClient for the app, shared by its request threads."""

from __future__ import annotations

import atexit

from flask import Flask, request
from jobs import registry

from runtime import JobNotFound, SyncClient


def create_app(url: str) -> Flask:
    app = Flask(__name__)
    client = SyncClient(url, registry=registry)
    client.open()
    atexit.register(client.close)

    @app.post("/signup")
    def signup() -> tuple[dict[str, str], int]:
        job = client.enqueue("welcome", {"email": request.form["email"]})
        return {"job": str(job.id)}, 202

    @app.get("/jobs/<job_id>")
    def job_status(job_id: str) -> tuple[dict[str, str], int]:
        try:
            return {"status": client.get(job_id).status}, 200
        except JobNotFound:
            return {"error": "no such job"}, 404

    app.extensions["callboard"] = client
    return app
