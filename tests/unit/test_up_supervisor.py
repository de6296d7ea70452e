"""`livemetrics up` restarts exited workers, backing off when one keeps crashing at start."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from livemetrics.stack import up as up_module
from livemetrics.stack.up import Stack


@dataclass
class FakeProcess:
    code: int | None = None

    def poll(self) -> int | None:
        return self.code


def _stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Stack, list[int]]:
    spawned: list[int] = []

    def spawn(self: Stack, index: int, port: int) -> Any:
        spawned.append(port)
        return FakeProcess()

    monkeypatch.setattr(Stack, "_spawn", spawn)
    stack = Stack(broker=None, redis=None, home=tmp_path)
    stack.start_worker(None, 0)
    return stack, spawned


def test_a_worker_killed_after_running_a_while_is_restarted_on_its_port(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stack, spawned = _stack(monkeypatch, tmp_path)
    stack.workers[0].code = -9
    lines = stack.restart_exited(now=stack.started[0] + 100)
    assert lines == [f"worker 0 stopped (signal 9); restarted (log: {tmp_path / 'worker-0.log'})"]
    assert spawned == [stack.ports[0], stack.ports[0]]
    assert stack.workers[0].poll() is None


def test_a_worker_crashing_at_start_is_restarted_later_each_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stack, spawned = _stack(monkeypatch, tmp_path)
    start = stack.started[0]
    waits = []
    now = start
    for _ in range(4):
        stack.workers[0].code = 1
        began = now
        while not stack.restart_exited(now=now):
            now += 0.5
        waits.append(now - began)
    assert waits == sorted(waits) and waits[-1] > waits[0], waits
    assert waits[:3] == [1.0, 2.0, 5.0]
    assert len(spawned) == 5


def test_no_restart_once_the_stack_stops(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    stack, spawned = _stack(monkeypatch, tmp_path)
    stack.stopping.set()
    stack.workers[0].code = -15
    assert stack.restart_exited(now=stack.started[0] + 100) == []
    assert len(spawned) == 1


def test_a_steady_worker_gets_its_backoff_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    stack, _ = _stack(monkeypatch, tmp_path)
    stack.restarts[0] = 4
    # a start time whose sum with STEADY_SECONDS is exact: with time.monotonic()'s
    # value, (start + steady) - start can fall short of steady (it failed a run)
    stack.started[0] = 1000.0
    stack.restart_exited(now=1000.0 + up_module.STEADY_SECONDS)
    assert stack.restarts[0] == 0
