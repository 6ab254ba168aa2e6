"""The CLI's HTTP client against scripted transports: stream ends and bad URLs."""

from __future__ import annotations

import io
import json
import uuid

import httpx
import pytest

from runtime.cli.client import (
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    RECONNECTS_DEFAULT,
    ApiClient,
    ClientError,
    SseEvent,
)
from runtime.cli.main import main
from runtime.cli.watch import merge, watch_job

JOB_ID = str(uuid.uuid4())


def _frame(event_id: str, kind: str, data: dict[str, object]) -> str:
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data)}\n\n"


class Script:
    """Answers each stream request with the next body; records the Last-Event-ID sent."""

    def __init__(self, bodies: list[str]) -> None:
        self.bodies = bodies
        self.resumed_from: list[str | None] = []
        self.last = ""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.resumed_from.append(request.headers.get("Last-Event-ID"))
        body = self.bodies.pop(0) if self.bodies else self.last
        self.last = body
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, text=body)


RUNNING = "retry: 2000\n\n" + _frame(
    "3.0", "snapshot", {"id": JOB_ID, "type": "echo", "status": "running", "progress": 40.0}
)
COMPLETED = _frame("3.1", "status", {"job_id": JOB_ID, "status": "completed", "progress": 100.0})


def test_watch_resumes_a_stream_the_server_ended_before_the_job_finished() -> None:
    script = Script([RUNNING, COMPLETED])
    client = ApiClient("http://test", transport=httpx.MockTransport(script))
    out = io.StringIO()
    assert watch_job(client, JOB_ID, out, tty=False) == EXIT_OK, out.getvalue()
    assert script.resumed_from == [None, "3.0"]
    assert out.getvalue().splitlines()[-1].endswith("completed")


def test_watch_gives_up_as_unavailable_when_the_stream_keeps_ending_without_news() -> None:
    script = Script([RUNNING])  # every reconnect replays the same snapshot, then ends
    client = ApiClient("http://test", transport=httpx.MockTransport(script))
    with pytest.raises(ClientError) as caught:  # main() turns it into the exit code
        watch_job(client, JOB_ID, io.StringIO(), tty=False)
    assert caught.value.exit_code == EXIT_UNAVAILABLE, caught.value
    assert "event stream lost" in str(caught.value)
    assert len(script.resumed_from) == RECONNECTS_DEFAULT + 1


@pytest.mark.parametrize("url", ["http://[::1", "http://a..b/", "http://xn--/"])
def test_an_unusable_url_is_a_usage_error_with_a_message(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["jobs", "list", "--url", url], out=io.StringIO()) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "invalid --url" in err and "Traceback" not in err


def test_watch_keeps_a_parents_status_through_its_childrens_events() -> None:
    job = {"id": JOB_ID, "type": "fan", "status": "blocked"}
    child = {
        "job_id": JOB_ID,
        "kind": "child",
        "type": "item",
        "status": "completed",
        "child_status": "completed",
        "message": "child 1 item: completed",
    }
    merged = merge(job, SseEvent("child", child, "3.1"))
    assert merged == {**job, "message": "child 1 item: completed"}
