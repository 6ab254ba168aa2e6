"""A real ``callboard serve`` process and raw sockets to abuse it with."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

STARTUP_TIMEOUT = 30.0
ADMIN = "admin-token-0123456789"
VIEWER = "viewer-token-0123456789"
OTHER = "other-token-0123456789ab"
TOKENS = f"{ADMIN}::admin,{VIEWER}:acme:viewer,{OTHER}:acme:admin"


class Service:
    """A running ``callboard serve``; a thread collects its stderr lines."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._seen = 0
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        started = self.lines_until(r"API on http://127\.0\.0\.1:\d+")
        self.url = re.findall(r"API on (http://127\.0\.0\.1:\d+)", started)[0]
        self.port = int(self.url.rsplit(":", 1)[1])

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self.lines.append("")  # the end
            self._changed.notify_all()

    def lines_until(self, pattern: str, timeout: float = STARTUP_TIMEOUT) -> str:
        """The new stderr lines up to the first that matches ``pattern``."""
        deadline = time.monotonic() + timeout
        taken: list[str] = []
        with self._changed:
            while True:
                while self._seen < len(self.lines):
                    line = self.lines[self._seen]
                    self._seen += 1
                    if line == "":
                        raise AssertionError(f"exited before {pattern!r}:\n{''.join(self.lines)}")
                    taken.append(line)
                    if re.search(pattern, line):
                        return "".join(taken)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {pattern!r} in time:\n{''.join(self.lines)}")
                self._changed.wait(left)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def finish(self, timeout: float = 30.0) -> str:
        """Wait for the exit; all of stderr."""
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        if self.proc.stderr is not None and not self._reader.is_alive():
            self.proc.stderr.close()  # or the pipe's file is reported unclosed at exit
        return "".join(self.lines)


def serve(tmp_path: Path, *args: str, tokens: bool = True) -> Service:
    """``callboard serve`` on a free loopback port in ``tmp_path`` (kill it with :func:`stop`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBOARD_")}
    env["CALLBOARD_HOOK_SECRET"] = "test-secret"
    if tokens:
        env["CALLBOARD_TOKENS"] = TOKENS
    proc = subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "serve", "--bind", "127.0.0.1:0", *args],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        return Service(proc)
    except BaseException:
        proc.kill()
        proc.communicate()  # reaps it and closes the stderr pipe
        raise


def stop(service: Service) -> None:
    if service.proc.poll() is None:
        service.proc.kill()
    service.finish()


def request_head(
    method: str, path: str, *, length: int | None = None, token: str | None = None
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: test", "Content-Type: application/json"]
    if length is not None:
        lines.append(f"Content-Length: {length}")
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def read_response(sock: socket.socket, timeout: float) -> bytes:
    """One response's head and body (by Content-Length); b"" if the server closed first."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    want = int(match.group(1)) if match else 0
    while len(body) < want:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def closed_within(sock: socket.socket, timeout: float) -> bool:
    """Whether the server closes ``sock`` within ``timeout`` (reading and dropping any data)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True
    return False
