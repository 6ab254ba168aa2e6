"""At most so many open event streams per token.

An event stream holds a connection and a task for as long as the client
likes; without a limit one token could open them until the process runs out
of file descriptors. :meth:`StreamSlots.hold` answers 429 past the limit and
wraps the stream's body so that its place is freed when the stream ends: when
the server closes the body, or at the latest when the body is collected.
"""

from __future__ import annotations

import weakref
from collections import Counter
from collections.abc import AsyncIterator, Callable

from runtime.api.auth import Principal
from runtime.api.errors import ApiError


class StreamSlots:
    """Open streams counted per principal (one per token)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[Principal] = Counter()

    def open_for(self, principal: Principal) -> int:
        return self._open[principal]

    def hold(self, principal: Principal, body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """``body``, holding one of ``principal``'s places until it ends; 429 when none is free."""
        if self._open[principal] >= self.limit:
            raise ApiError(
                429,
                "too_many_requests",
                f"this token already has {self.limit} open event streams; close one first",
            )
        self._open[principal] += 1
        return _Held(body, self._release, principal)

    def _release(self, principal: Principal) -> None:
        self._open[principal] -= 1
        if self._open[principal] <= 0:
            del self._open[principal]


class _Held:
    """An async iterator over ``body`` that frees its place once, when closed or collected."""

    def __init__(
        self,
        body: AsyncIterator[bytes],
        release: Callable[[Principal], None],
        principal: Principal,
    ) -> None:
        self._body = body
        self._free = weakref.finalize(self, release, principal)

    def __aiter__(self) -> _Held:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._body.__anext__()
        except StopAsyncIteration:
            self._free()
            raise

    async def aclose(self) -> None:
        try:
            close = getattr(self._body, "aclose", None)  # a generator: run its finally blocks
            if close is not None:
                await close()
        finally:
            self._free()
