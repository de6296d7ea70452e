"""The worker's consumer-group session timeout: flag, variable, and refusals."""

from __future__ import annotations

import pytest

from livemetrics.cli import UserError, _session_timeout, main
from livemetrics.stack.up import EMBEDDED_SESSION_TIMEOUT

ENV = "LIVEMETRICS_SESSION_TIMEOUT"


def test_unset_leaves_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert _session_timeout(None) is None


def test_the_flag_wins_over_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "10")
    assert _session_timeout(3.0) == 3.0
    assert _session_timeout(None) == 10.0


@pytest.mark.parametrize("raw", ["soon", "1.5", "0", "-3", "nan"])
def test_a_bad_variable_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv(ENV, raw)
    with pytest.raises(UserError, match=ENV):
        _session_timeout(None)


def test_the_worker_refuses_a_timeout_shorter_than_two_heartbeats(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert main(["worker", "--session-timeout", "1"]) != 0
    assert "--session-timeout must be at least 2 seconds" in capsys.readouterr().err


def test_up_runs_a_timeout_its_broker_and_the_worker_accept() -> None:
    assert _session_timeout(EMBEDDED_SESSION_TIMEOUT) == EMBEDDED_SESSION_TIMEOUT
