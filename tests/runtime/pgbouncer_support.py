"""A pgbouncer of the tests' own in transaction mode, in front of the test
PostgreSQL, and store URLs through it.

pgbouncer passes no ``options`` startup parameter, so a schema cannot be
chosen in the URL as the direct tests do. Each test gets a role of its own
instead, owning a schema of the same name: PostgreSQL's default
``search_path`` would find that schema first, and the role's own setting
(``ALTER ROLE ... SET search_path``) leaves out public too, on every server
connection pgbouncer hands out. Prepared statements are off in the
URLs (``prepare_threshold=none``): pgbouncer before 1.21 cannot keep them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

START_TIMEOUT = 10.0


def find_pgbouncer() -> str | None:
    found = shutil.which("pgbouncer")
    if found is None and os.path.exists("/usr/sbin/pgbouncer"):
        found = "/usr/sbin/pgbouncer"
    return found


class Bouncer:
    """A pgbouncer process on a free loopback port, forwarding every database
    to the server of ``base_url``."""

    def __init__(self, binary: str, base_url: str) -> None:
        self.base_url = base_url
        base = make_url(base_url)
        self.database = base.database or "postgres"
        self.admin = base.username or "postgres"
        self._dir = Path(tempfile.mkdtemp(prefix="callboard-pgbouncer-"))
        self._dir.chmod(0o755)  # pgbouncer refuses to run as root: it runs as nobody then
        self._users = self._dir / "users.txt"
        self._users.write_text(f'"{self.admin}" ""\n')
        self._users.chmod(0o644)
        self.port = _free_port()
        ini = self._dir / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"* = host={base.host or '127.0.0.1'} port={base.port or 5432}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {self._users}\n"
            "pool_mode = transaction\n"
            "max_client_conn = 500\n"
            "default_pool_size = 20\n"
        )
        ini.chmod(0o644)
        command = [binary, str(ini)]
        if os.geteuid() == 0:
            command[1:1] = ["-u", "nobody"]
        self._log = (self._dir / "pgbouncer.log").open("wb")
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_for(self.admin)

    def url(self, user: str) -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{self.database}?prepare_threshold=none"

    def add_user(self, user: str) -> None:
        with self._users.open("a") as users:
            users.write(f'"{user}" ""\n')
        self.process.send_signal(signal.SIGHUP)  # reread the users
        self._wait_for(user)

    def _wait_for(self, user: str) -> None:
        """Until ``user`` can log in through pgbouncer (it is up, and has reloaded)."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with psycopg.connect(self.url(user).split("?")[0], prepare_threshold=None) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pgbouncer would not let {user} in: {self.log()}") from None
                time.sleep(0.05)

    def log(self) -> str:
        return (self._dir / "pgbouncer.log").read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
        shutil.rmtree(self._dir, ignore_errors=True)


def schema_through(bouncer: Bouncer) -> Iterator[str]:
    """A store URL through ``bouncer`` on a fresh schema (its own role's)."""
    role = f"cb_pgb_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(bouncer.base_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
        conn.execute(f"CREATE SCHEMA {role} AUTHORIZATION {role}")
        # Only its own: tables other tests made in public must stay out of sight.
        conn.execute(f"ALTER ROLE {role} SET search_path = {role}")
    try:
        bouncer.add_user(role)
        yield bouncer.url(role)
    finally:
        with psycopg.connect(bouncer.base_url, autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (role,),
            )
            conn.execute(f"DROP SCHEMA {role} CASCADE")
            conn.execute(f"DROP ROLE {role}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
