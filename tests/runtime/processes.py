"""A worker in a real subprocess for the cross-process tests: started from a
script, ready once it prints a line, SIGKILLed when the test is done."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def worker_process(script: str, url: str, *, ready_within: float) -> AsyncIterator[None]:
    """Run ``python -c script url`` from the repository's root until the block
    ends; enter the block once the script has printed its first line."""
    child = await trio.lowlevel.open_process(
        [sys.executable, "-c", script, url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None
        line = b""
        with trio.fail_after(ready_within):
            while not line.endswith(b"\n"):
                chunk = await child.stdout.receive_some()
                assert chunk, "the worker exited before it was ready"
                line += chunk
        yield
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
        if child.stdout is not None:
            await child.stdout.aclose()
