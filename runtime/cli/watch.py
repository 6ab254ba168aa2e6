"""``callboard jobs watch``: live progress bars from the event streams.

On a terminal the bars are redrawn in place; otherwise (a pipe, a log) each
change is one line, so scripts and tests read the same story.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TextIO

from runtime.cli.client import EXIT_JOB_FAILED, EXIT_NOT_FOUND, EXIT_OK, ApiClient, SseEvent
from runtime.cli.render import progress_line

BOARD_SIZE_DEFAULT = 20  # jobs shown at once by ``watch`` without an id
_FINAL = frozenset({"completed", "failed", "canceled", "timeout", "skipped"})


def merge(job: dict[str, Any], event: SseEvent) -> dict[str, Any]:
    """The job's state after ``event`` (a snapshot replaces it, other events update it)."""
    data = event.data if isinstance(event.data, dict) else {}
    if event.kind == "snapshot":
        return dict(data)
    if event.kind == "child":  # a child's change: its status is the child's, not this job's
        return {**job, "message": data.get("message", job.get("message"))}
    job = {
        **job,
        "id": data.get("job_id", job.get("id")),
        "type": data.get("type", job.get("type")),
    }
    job["status"] = data.get("status", job.get("status"))
    if data.get("progress") is not None:
        job["progress"] = data["progress"]
    if event.kind == "check_in":
        job["check_in"] = data.get("message")
    elif data.get("check_in"):
        job["check_in"] = data["check_in"]
    if event.kind in ("status", "warning", "step") and data.get("message"):
        job["message"] = data["message"]
    return job


class _Screen:
    def __init__(self, out: TextIO, tty: bool) -> None:
        self.out = out
        self.tty = tty
        self._drawn = 0
        self._last: list[str] = []

    def draw(self, lines: list[str]) -> None:
        if lines == self._last:
            return
        if self.tty:
            up = f"\x1b[{self._drawn}F" if self._drawn else ""
            self.out.write(up + "".join(f"\x1b[2K{line}\n" for line in lines))
            self._drawn = len(lines)
        else:
            changed = [line for line in lines if line not in self._last]
            self.out.write("".join(f"{line}\n" for line in changed))
        self._last = list(lines)
        self.out.flush()


def watch_job(client: ApiClient, job_id: str, out: TextIO, tty: bool) -> int:
    """Follow one job until it finishes; the exit code says how it ended."""
    screen = _Screen(out, tty)
    job: dict[str, Any] = {}
    # The stream ending before a final status is a drop: resumed, then exit 6.
    for event in client.events(f"/jobs/{job_id}/events", resume_on_end=True):
        if event.kind == "deleted":
            out.write(f"job {job_id} was deleted\n")
            return EXIT_NOT_FOUND
        if event.kind in ("reset", "retry"):
            continue
        job = merge(job, event)
        screen.draw([progress_line(job)])
        if job.get("status") in _FINAL:
            break
    return EXIT_OK if job.get("status") == "completed" else EXIT_JOB_FAILED


def watch_all(
    client: ApiClient,
    filters: Mapping[str, Any],
    out: TextIO,
    tty: bool,
    *,
    limit: int | None = None,
) -> int:
    """Follow every job the token may see; stop after ``limit`` jobs finished, if given."""
    screen = _Screen(out, tty)
    board: dict[str, dict[str, Any]] = {}
    finished = 0
    for event in client.events("/events", filters):
        if event.kind == "retry" and not tty:
            out.write("watching jobs; Ctrl-C stops\n")
            out.flush()
        if event.kind in ("reset", "retry") or not isinstance(event.data, dict):
            continue
        key = str(event.data.get("job_id"))
        board[key] = merge(board.get(key, {}), event)
        if board[key].get("status") in _FINAL and event.kind == "status":
            finished += 1
        while len(board) > BOARD_SIZE_DEFAULT:
            board.pop(next(iter(board)))
        screen.draw([progress_line(job) for job in board.values()])
        if limit is not None and finished >= limit:
            break
    return EXIT_OK
