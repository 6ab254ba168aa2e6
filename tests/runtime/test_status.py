from __future__ import annotations

from runtime.domain.status import TERMINAL, TRANSITIONS, JobStatus, can_transition, sources_of


def test_terminal_statuses_only_go_back_to_waiting_by_manual_retry() -> None:
    for status in TERMINAL:
        assert TRANSITIONS[status] <= {JobStatus.WAITING}
    assert TRANSITIONS[JobStatus.COMPLETED] == TRANSITIONS[JobStatus.SKIPPED] == frozenset()


def test_every_outcome_the_runtime_records_is_a_legal_move_from_running() -> None:
    import random

    from actors import Claimed, Ended, Outcome
    from runtime.domain.errors import Fail, Retry, Skip
    from runtime.jobs.outcomes import decide

    errors = [ValueError("x"), Retry(after=1), Fail("f"), Skip("s"), None]
    for ended in Ended:
        for error in errors:
            for attempt in (1, 9):
                row = {"attempt": attempt, "max_retries": 3, "retry_delay": 1.0, "timeout": 1.0}
                values = decide(
                    Outcome(Claimed("j", "q"), ended, error=error), row, 0.0, random.Random(1)
                )
                target = JobStatus(values["status"])
                sources = {
                    Ended.CANCELED: [JobStatus.CANCELING],  # these follow a request
                    Ended.SUSPENDED: [JobStatus.SUSPENDING],
                }.get(ended, [JobStatus.RUNNING, JobStatus.CANCELING, JobStatus.SUSPENDING])
                for source in sources:
                    assert can_transition(source, target), (source, target, ended)


def test_every_status_has_a_row_in_the_table() -> None:
    assert set(TRANSITIONS) == set(JobStatus)


def test_lifecycle_edges_from_the_design() -> None:
    S = JobStatus
    assert can_transition(S.SCHEDULED, S.WAITING)
    assert can_transition(S.WAITING, S.RUNNING)
    assert can_transition(S.RUNNING, S.CANCELING) and can_transition(S.CANCELING, S.CANCELED)
    assert can_transition(S.RUNNING, S.SCHEDULED)  # retry with backoff
    assert not can_transition(S.COMPLETED, S.WAITING)
    assert can_transition(S.FAILED, S.WAITING)  # manual retry
    assert not can_transition(S.WAITING, S.COMPLETED)
    assert sources_of(S.CANCELING) == {S.RUNNING, S.SUSPENDING}
