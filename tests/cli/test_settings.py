"""One settings model for serve and worker: flags over environment over TOML file."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from runtime.cli.main import build_parser, service_settings
from runtime.cli.settings import load_settings
from runtime.runtime import DATABASE_URL_DEFAULT


def settings_for(argv: list[str], env: dict[str, str]) -> object:
    return service_settings(build_parser().parse_args(argv), env)


def test_defaults_without_flags_environment_or_file() -> None:
    settings = load_settings({}, {})
    assert settings.db == DATABASE_URL_DEFAULT
    assert settings.bind == "127.0.0.1:8000" and settings.log_level == "info"
    assert settings.retention() is None and settings.sweep_interval is None


def test_flags_beat_environment_which_beats_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "callboard.toml"
    config.write_text(
        'db = "sqlite:///file.db"\ngrace_period = 3\nbind = "127.0.0.1:1"\n'
        'poll_interval = 4\nretain = ["failed=forever", "completed=1h"]\nlog_format = "json"\n'
    )
    env = {"CALLBOARD_CONFIG": str(config), "CALLBOARD_GRACE_PERIOD": "5", "CALLBOARD_BIND": ":2"}
    settings = service_settings(build_parser().parse_args(["serve", "--grace-period", "7"]), env)
    assert settings.grace_period == 7  # flag
    assert settings.bind == ":2"  # environment
    assert settings.db == "sqlite:///file.db" and settings.poll_interval == 4  # file
    policy = settings.retention()
    assert policy is not None and policy.failed is None and policy.completed == 3600
    assert settings.log_format == "json"


def test_worker_takes_the_database_from_callboard_db_or_database_url() -> None:
    args = build_parser().parse_args(["worker"])
    assert service_settings(args, {"DATABASE_URL": "sqlite:///u.db"}).db == "sqlite:///u.db"
    both = {"DATABASE_URL": "sqlite:///u.db", "CALLBOARD_DB": "sqlite:///c.db"}
    assert service_settings(args, both).db == "sqlite:///c.db"
    with_flag = build_parser().parse_args(["worker", "--db", "sqlite:///f.db"])
    assert service_settings(with_flag, both).db == "sqlite:///f.db"


def test_list_settings_are_comma_separated_in_the_environment() -> None:
    env = {"CALLBOARD_QUEUES": "a=2,b", "CALLBOARD_HOOK_ALLOW": "10.0.0.0/8, intranet"}
    settings = settings_for(["worker"], env)
    assert settings.queues == ["a=2", "b"]  # type: ignore[attr-defined]
    assert settings.hook_allow == ["10.0.0.0/8", "intranet"]  # type: ignore[attr-defined]
    flags = settings_for(["worker", "--queues", "c,d=1", "--hook-allow-host", "x"], env)
    assert flags.queues == ["c", "d=1"] and flags.hook_allow == ["x"]  # type: ignore[attr-defined]


def test_hook_secret_and_retention_from_the_environment() -> None:
    env = {
        "CALLBOARD_HOOK_SECRET": "s3cret",
        "CALLBOARD_RETAIN": "completed=60,failed=2 days",
        "CALLBOARD_MAX_FINISHED": "1000",
    }
    settings = load_settings({}, env)
    assert settings.hook_env() == {"CALLBOARD_HOOK_SECRET": "s3cret"}
    assert "s3cret" not in repr(settings)
    policy = settings.retention()
    assert policy is not None and (policy.completed, policy.failed) == (60, 2 * 86400)
    assert policy.max_finished == 1000
    flags = settings_for(["worker", "--retain", "completed=5", "--max-finished", "3"], env)
    policy = flags.retention()  # type: ignore[attr-defined]
    assert (policy.completed, policy.failed, policy.max_finished) == (5, 30 * 86400, 3)


@pytest.mark.parametrize(
    ("flags", "env", "config"),
    [
        ({"grace_period": -1.0}, {}, ""),
        ({}, {"CALLBOARD_POLL_INTERVAL": "soon"}, ""),
        ({}, {"CALLBOARD_LOG_FORMAT": "xml"}, ""),
        ({}, {}, "nonsense_key = 1\n"),
    ],
)
def test_a_bad_value_from_anywhere_is_refused(
    tmp_path: Path, flags: dict[str, object], env: dict[str, str], config: str
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(config)
    with pytest.raises(ValidationError):
        load_settings(flags, env, str(path))


def test_a_missing_config_file_is_one_clear_error() -> None:
    with pytest.raises(ValueError, match=r"config file 'nope\.toml' not found"):
        load_settings({}, {}, "nope.toml")


def test_bad_settings_exit_2_with_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "worker", "--poll-interval", "0"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "poll_interval" in proc.stderr
    assert not (tmp_path / "callboard.db").exists()


def test_version_and_plain_help() -> None:
    version = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "--version"], capture_output=True, text=True
    )
    assert version.returncode == 0 and version.stdout.startswith("callboard ")
    text = build_parser().format_help()
    assert "``" not in text and "callboard: run the service" in text


def test_a_port_in_use_is_one_line_and_exit_8(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "runtime.cli", "serve", "--bind", f"127.0.0.1:{port}"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "CALLBOARD_HOOK_SECRET": "s", "CALLBOARD_LOG_LEVEL": "error"},
        )
    assert proc.returncode == 8, proc.stderr
    assert proc.stderr == (
        f"callboard: cannot listen on 127.0.0.1:{port}: the address is in use: stop what "
        "listens there or pick another (--bind or CALLBOARD_BIND)\n"
    )
