"""Over HTTP: a service that talks to a Callboard server, not to its database."""

from __future__ import annotations

from runtime import InvalidParams
from runtime.client import Client


def welcome(url: str, token: str, email: str) -> str:
    # The token decides the tenant: the job is enqueued in the token's.
    with Client(url, token) as client:
        try:
            job = client.enqueue("welcome", {"email": email}, idempotency_key=f"welcome:{email}")
        except InvalidParams as err:  # the server's 422, as the Python API raises it
            return f"refused: {err.errors[0]['msg']}"
        done = client.wait(job.id, timeout=60)  # or leave: a worker runs it anyway
        return str(done.result)
