from __future__ import annotations

from runtime.status import TERMINAL, TRANSITIONS, JobStatus, can_transition, sources_of


def test_terminal_statuses_never_change() -> None:
    for status in TERMINAL:
        assert TRANSITIONS[status] == frozenset()


def test_every_status_has_a_row_in_the_table() -> None:
    assert set(TRANSITIONS) == set(JobStatus)


def test_lifecycle_edges_from_the_design() -> None:
    S = JobStatus
    assert can_transition(S.SCHEDULED, S.WAITING)
    assert can_transition(S.WAITING, S.RUNNING)
    assert can_transition(S.RUNNING, S.CANCELING) and can_transition(S.CANCELING, S.CANCELED)
    assert can_transition(S.RUNNING, S.SCHEDULED)  # retry with backoff
    assert not can_transition(S.COMPLETED, S.WAITING)
    assert not can_transition(S.WAITING, S.COMPLETED)
    assert sources_of(S.CANCELING) == {S.RUNNING, S.SUSPENDING}
