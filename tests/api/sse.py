"""Reading Server-Sent Events from the Quart test client."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio
from quart.typing import TestHTTPConnectionProtocol

from tests.api.conftest import TOKENS, Harness


@dataclass
class Frame:
    event: str
    data: Any
    id: str | None


class SseReader:
    def __init__(self, conn: TestHTTPConnectionProtocol) -> None:
        self.conn = conn
        self.buffer = b""
        self.ended = False

    async def ready(self) -> None:
        """Wait for the stream's first bytes (the server has set its position)."""
        while b"\n\n" not in self.buffer:
            self.buffer += await self.conn.receive()

    async def next(self) -> Frame:
        """The next frame with data; ``trio.EndOfChannel`` once the server ended."""
        while True:
            while b"\n\n" not in self.buffer:
                try:
                    self.buffer += await self.conn.receive()
                except trio.EndOfChannel:
                    self.ended = True
                    raise
            raw, self.buffer = self.buffer.split(b"\n\n", 1)
            fields: dict[str, str] = {}
            for line in raw.decode().split("\n"):
                if line and not line.startswith(":"):
                    name, _, value = line.partition(": ")
                    fields[name] = value
            if "data" in fields:
                return Frame(
                    fields.get("event", "message"), json.loads(fields["data"]), fields.get("id")
                )

    async def until(self, event: str, **match: Any) -> list[Frame]:
        """Frames up to and including the first ``event`` whose data has ``match``."""
        seen = []
        while True:
            frame = await self.next()
            seen.append(frame)
            data = frame.data if isinstance(frame.data, dict) else {}
            if frame.event == event and all(data.get(k) == v for k, v in match.items()):
                return seen


@asynccontextmanager
async def open_stream(
    h: Harness,
    path: str,
    *,
    who: str = "admin",
    last_event_id: str | None = None,
    query: dict[str, Any] | None = None,
) -> AsyncIterator[SseReader]:
    headers = {"Authorization": f"Bearer {TOKENS[who]}"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    async with h.client.request(path, method="GET", headers=headers, query_string=query) as conn:
        await conn.send_complete()
        reader = SseReader(conn)
        try:
            yield reader
        finally:
            if not reader.ended:
                await conn.disconnect()
                # The test connection drains its body channel on exit, and only a
                # finished response closes it: close it for a stream we walked away from.
                conn._client_send.close()  # type: ignore[attr-defined]
