"""The API's configuration and the state its routes share."""

from __future__ import annotations

from dataclasses import dataclass, field

import anyio
from anyio.abc import TaskStatus
from pydantic import BaseModel, ConfigDict, Field

from runtime.api.auth import Authenticator, TokenEntry
from runtime.api.eventlog import EVENT_BUFFER_DEFAULT, EventLog
from runtime.api.hook_policy import HookPolicy
from runtime.api.metrics import Metrics
from runtime.api.streams import StreamSlots
from runtime.runtime import Runtime

BODY_LIMIT_DEFAULT = 1 << 20  # 1 MiB
SSE_KEEPALIVE_DEFAULT = 15.0
SSE_POLL_DEFAULT = 2.0
HEADER_TIMEOUT_DEFAULT = 5.0  # also how long an idle keep-alive connection stays open
BODY_TIMEOUT_DEFAULT = 30.0
STREAMS_PER_TOKEN_DEFAULT = 16
SEND_TIMEOUT_DEFAULT = 30.0


class ApiConfig(BaseModel):
    """Settings of one API app; validated on construction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    body_limit: int = Field(default=BODY_LIMIT_DEFAULT, ge=1024, le=1 << 30)
    event_buffer: int = Field(default=EVENT_BUFFER_DEFAULT, ge=1, le=10_000_000)
    sse_keepalive: float = Field(default=SSE_KEEPALIVE_DEFAULT, gt=0, le=3600)
    # A job's stream re-reads the job this often when no event came: it sees
    # jobs run by other processes, whose events this process never gets.
    sse_poll: float = Field(default=SSE_POLL_DEFAULT, gt=0, le=3600)
    tokens: tuple[TokenEntry, ...] = ()
    # A connection gets this long for a request's headers, then for its body:
    # a client that stalls (slowloris) is closed instead of holding a socket.
    header_timeout: float = Field(default=HEADER_TIMEOUT_DEFAULT, gt=0, le=3600)
    body_timeout: float = Field(default=BODY_TIMEOUT_DEFAULT, gt=0, le=3600)
    # The longest one write to a client may take: one that stops reading is dropped.
    send_timeout: float = Field(default=SEND_TIMEOUT_DEFAULT, gt=0, le=3600)
    streams_per_token: int = Field(default=STREAMS_PER_TOKEN_DEFAULT, ge=1, le=100_000)
    # Where a status_hook may point (checked on its text at enqueue; the hook
    # service checks the addresses again when it sends): public addresses only.
    hook_policy: HookPolicy = Field(default_factory=HookPolicy)
    # The web dashboard at / and the API docs at /docs (runtime.dashboard).
    dashboard: bool = True


@dataclass(slots=True)
class ApiState:
    runtime: Runtime
    config: ApiConfig
    auth: Authenticator
    events: EventLog
    streams: StreamSlots
    metrics: Metrics = field(default_factory=Metrics)
    ready: bool = False
    _scope: anyio.CancelScope | None = None

    @classmethod
    def create(cls, runtime: Runtime, config: ApiConfig) -> ApiState:
        return cls(
            runtime,
            config,
            Authenticator(config.tokens),
            EventLog(config.event_buffer),
            StreamSlots(config.streams_per_token),
        )

    async def run(self, *, task_status: TaskStatus[None]) -> None:
        """Follow the runtime's events (for SSE and metrics) until :meth:`stop`."""
        self._scope = anyio.CancelScope()
        with self._scope:
            async with anyio.create_task_group() as tg:
                await tg.start(self.events.follow, self.runtime)
                await tg.start(self.metrics.follow, self.runtime)
                self.ready = True
                task_status.started()
        self.ready = False

    def stop(self) -> None:
        self.ready = False
        self.events.close()
        if self._scope is not None:
            self._scope.cancel()
