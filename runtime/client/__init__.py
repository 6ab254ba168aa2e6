"""A client of Callboard's HTTP API, sync and async, for code that enqueues
and reads jobs on a Callboard server it does not run::

    from runtime.client import Client

    with Client("http://127.0.0.1:8000", token="...") as client:
        job = client.enqueue("resize", {"path": "a.png"})
        done = client.wait(job.id, timeout=60)

``AsyncClient`` is the same with ``await`` (on asyncio or trio). Each
method answers as the :class:`runtime.Runtime` method of the same name: the
same :class:`runtime.Job` and :class:`runtime.Schedule`, and the API's
errors raised as the same exceptions (``JobNotFound``, ``InvalidParams``,
``IllegalTransition``, ``StorageUnavailable``...; :mod:`runtime.client.errors`).
Code that can reach the database itself can use ``runtime.SyncClient`` or
``Runtime(url, workers=False)`` instead, and enqueue in its own transaction.

An interface, like :mod:`runtime.api`, whose server it talks to: it needs
only httpx (the ``client`` extra, which the ``server`` extra includes).
"""

from __future__ import annotations

from runtime.domain.extras import require

require("client", "the HTTP client")

from runtime.client.asynchronous import AsyncClient
from runtime.client.calls import EnqueueFields, JobFilters, JobPage, ScheduleFields
from runtime.client.errors import (
    ClientError,
    Forbidden,
    InvalidRequest,
    NotFound,
    ServerUnreachable,
    Unauthorized,
)
from runtime.client.sync import Client

__all__ = [
    "AsyncClient",
    "Client",
    "ClientError",
    "EnqueueFields",
    "Forbidden",
    "InvalidRequest",
    "JobFilters",
    "JobPage",
    "NotFound",
    "ScheduleFields",
    "ServerUnreachable",
    "Unauthorized",
]
