"""``serve`` and ``worker`` take every retention setting the Python API has."""

from __future__ import annotations

import pytest

from runtime import JobRetention
from runtime.cli.main import build_parser
from runtime.cli.retention import retention_from, sweep_interval_from


def test_retention_options_make_the_policy_and_keep_the_defaults_they_leave() -> None:
    args = build_parser().parse_args(
        [
            *("serve", "--retain", "completed=1 day", "--retain", "failed=forever"),
            *("--retain", "skipped=90", "--max-finished", "100000"),
            *("--max-finished-per-type", "50", "--sweep-interval", "30"),
        ]
    )
    assert retention_from(args) == JobRetention(
        completed=86400.0,
        failed=None,
        skipped=90.0,
        max_finished=100_000,
        max_finished_per_type=50,
    )
    assert sweep_interval_from(args) == 30.0
    worker = build_parser().parse_args(["worker", "--max-finished-per-type", "3"])
    assert retention_from(worker) == JobRetention(max_finished_per_type=3)
    assert retention_from(build_parser().parse_args(["serve"])) is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--retain", "done=1d"], "--retain 'done=1d': expected STATUS=AGE"),
        (["--retain", "completed"], "expected STATUS=AGE"),
        (["--retain", "completed=soon"], "--retain 'completed=soon':"),
        (["--retain", "completed=continuous"], "not an age"),
        (["--max-finished-per-type", "-1"], "--max-finished-per-type must be >= 0"),
    ],
)
def test_a_bad_retention_option_names_itself(options: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        retention_from(build_parser().parse_args(["serve", *options]))


@pytest.mark.parametrize("value", ["0", "-5", "inf", "nan"])
def test_a_sweep_interval_must_be_a_positive_number_of_seconds(value: str) -> None:
    args = build_parser().parse_args(["worker", "--sweep-interval", value])
    with pytest.raises(ValueError, match="--sweep-interval must be > 0 seconds"):
        sweep_interval_from(args)
