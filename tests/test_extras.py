"""Extras: the base install embeds on SQLite; each import path names the extra it misses.

Each case runs in a subprocess whose ``sys.modules`` hides the extra's modules
(an entry of None makes ``import`` fail as if the package were not installed).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from runtime.domain.extras import EXTRAS


def run_without(extras: tuple[str, ...], code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    hidden = [m for extra in extras for m in EXTRAS[extra]]
    prelude = f"import sys\nfor name in {hidden!r}:\n    sys.modules[name] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CALLBOARD_HOOK_SECRET": "s"},
    )


def test_the_base_install_runs_jobs_on_sqlite(tmp_path: Path) -> None:
    proc = run_without(
        ("postgres", "server"),
        """
        import trio
        from pydantic import BaseModel
        from runtime import JobContext, Registry, Runtime

        registry = Registry()

        class Two(BaseModel):
            a: int
            b: int

        @registry.job(name="add")
        async def add(ctx: JobContext, params: Two) -> int:
            return params.a + params.b

        async def main() -> None:
            async with Runtime("sqlite:///base.db", registry=registry) as rt:
                job = await rt.enqueue("add", {"a": 2, "b": 3})
                print((await rt.wait(job.id, timeout=10)).result)
            assert not {"psycopg", "quart", "hypercorn", "httpx"} & {
                m for m in sys.modules if sys.modules[m] is not None
            }

        trio.run(main)
        """,
        tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "5\n"


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (
            "postgres",
            "from runtime.store.engine import open_engine\nopen_engine('postgresql://x/y')",
            "a PostgreSQL store needs the callboard[postgres] extra (psycopg is not installed): "
            "pip install 'callboard[postgres]'",
        ),
        (
            "server",
            "import runtime.api",
            "the HTTP API needs the callboard[server] extra (quart is not installed): "
            "pip install 'callboard[server]'",
        ),
        (
            "server",
            "from runtime.api.server import serve_api",
            "the HTTP API needs the callboard[server] extra (quart is not installed): "
            "pip install 'callboard[server]'",
        ),
        (
            "client",
            "import runtime.client",
            "the HTTP client needs the callboard[client] extra (httpx is not installed): "
            "pip install 'callboard[client]'",
        ),
        (
            "otel",
            "from runtime import Runtime\nRuntime('sqlite:///x.db', otel=True)",
            "tracing (otel=) needs the callboard[otel] extra (opentelemetry.trace is not "
            "installed): pip install 'callboard[otel]'",
        ),
    ],
)
def test_an_import_path_names_the_extra_it_misses(
    tmp_path: Path, extra: str, code: str, message: str
) -> None:
    proc = run_without((extra,), code, tmp_path)
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1 and last.endswith("MissingExtra: " + message), proc.stderr


@pytest.mark.parametrize(
    ("extra", "argv", "message"),
    [
        ("server", ["serve"], "callboard: the callboard command needs the callboard[server]"),
        (
            "postgres",
            ["worker", "--db", "postgresql://127.0.0.1/none"],
            "callboard: a PostgreSQL store needs the callboard[postgres] extra",
        ),
        (
            "postgres",
            ["migrate", "--db", "postgresql://127.0.0.1/none"],
            "callboard: a PostgreSQL store needs the callboard[postgres] extra",
        ),
        ("otel", ["worker", "--otel"], "callboard: tracing (otel=) needs the callboard[otel]"),
    ],
)
def test_the_command_says_which_extra_is_missing_in_one_line(
    tmp_path: Path, extra: str, argv: list[str], message: str
) -> None:
    code = f"from runtime.cli.entry import run\nsys.argv[1:] = {argv!r}\nraise SystemExit(run())"
    proc = run_without((extra,), code, tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(message) and proc.stderr.count("\n") == 1, proc.stderr
