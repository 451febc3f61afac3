from __future__ import annotations

import pytest

from vidmill.core.states import IllegalTransition, JobStatus as J, TaskStatus as T, aggregate, check_transition


@pytest.mark.parametrize("jobs,task", [
    pytest.param([], T.QUEUED, id="nothing"),
    pytest.param([J.QUEUED, J.QUEUED], T.QUEUED, id="all-queued"),
    pytest.param([J.DOWNLOADING, J.QUEUED], T.DOWNLOADING, id="downloading"),
    pytest.param([J.ENCODING, J.DOWNLOADING], T.ENCODING, id="encoding-wins"),
    pytest.param([J.SAVING, J.QUEUED], T.SAVING, id="saving"),
    pytest.param([J.COMPLETED, J.QUEUED], T.ENCODING, id="part-done"),
    pytest.param([J.COMPLETED, J.SKIPPED], T.COMPLETED, id="done-with-skip"),
    pytest.param([J.COMPLETED, J.ERROR], T.ERROR, id="one-failed"),
])
def test_aggregate(jobs, task):
    assert aggregate(jobs) is task


def test_transitions():
    check_transition(J.QUEUED, J.DOWNLOADING)
    check_transition(J.ENCODING, J.SAVING)
    with pytest.raises(IllegalTransition):
        check_transition(J.COMPLETED, J.ENCODING)
    with pytest.raises(IllegalTransition):
        check_transition(J.QUEUED, J.COMPLETED)
