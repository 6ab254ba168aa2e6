"""Django: enqueue once the request's transaction commits (transaction.on_commit)."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest, JsonResponse
from jobs import registry

from runtime import SyncClient

# One client per process, e.g. opened in AppConfig.ready(); settings.CALLBOARD_URL.
client = SyncClient("sqlite:///callboard.db", registry=registry)


def signup(request: HttpRequest) -> JsonResponse:
    email = request.POST["email"]
    with transaction.atomic():
        # ... create the user row here ...
        # The job is stored only if the user is: a rolled-back signup sends nothing.
        transaction.on_commit(lambda: client.enqueue("welcome", {"email": email}))
    return JsonResponse({"queued": True}, status=202)
