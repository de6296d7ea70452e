"""The recovery guard re-seeks changelog partitions whose Faust recovery stopped moving."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import pytest

from livemetrics.stream.recovery_guard import RecoveryGuard

pytestmark = pytest.mark.asyncio


class TP(NamedTuple):
    topic: str
    partition: int


STALLED, MOVING, DONE = TP("c-changelog", 0), TP("c-changelog", 1), TP("c-changelog", 2)


@dataclass
class FakeRecovery:
    in_recovery: bool = True
    active_highwaters: dict[TP, int | None] = field(default_factory=dict)
    active_offsets: dict[TP, int | None] = field(default_factory=dict)


@dataclass
class FakeConsumer:
    positions: dict[TP, int] = field(default_factory=dict)
    seeks: list[tuple[TP, int]] = field(default_factory=list)
    resumed: list[TP] = field(default_factory=list)

    async def position(self, tp: TP) -> int | None:
        return self.positions.get(tp)

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))

    def resume_partitions(self, tps: Any) -> None:
        self.resumed.extend(tps)


@dataclass
class Clock:
    now: float = 100.0

    def __call__(self) -> float:
        return self.now


def _guard() -> tuple[RecoveryGuard, FakeRecovery, FakeConsumer, Clock]:
    recovery = FakeRecovery(
        active_highwaters={STALLED: 40, MOVING: 40, DONE: 12},
        active_offsets={STALLED: 17, MOVING: 5, DONE: 12},
    )
    consumer = FakeConsumer(positions={STALLED: 41})  # fetched past, records dropped
    clock = Clock()
    guard = RecoveryGuard(recovery, lambda: consumer, stall_seconds=20, monotonic=clock)
    return guard, recovery, consumer, clock


async def test_a_partition_without_progress_is_fetched_again_after_its_last_record() -> None:
    guard, recovery, consumer, clock = _guard()
    assert await guard.check() == []
    clock.now += 10
    recovery.active_offsets[MOVING] = 15
    assert await guard.check() == []
    clock.now += 10
    recovery.active_offsets[MOVING] = 25
    assert await guard.check() == [STALLED]
    assert consumer.seeks == [(STALLED, 18)]
    assert consumer.resumed == [STALLED]


async def test_a_partition_never_read_starts_again_from_its_first_record() -> None:
    guard, recovery, consumer, clock = _guard()
    recovery.active_offsets[MOVING] = 40  # done
    recovery.active_offsets[STALLED] = None  # nothing recovered yet (Faust's -1)
    await guard.check()
    clock.now += 25
    assert await guard.check() == [STALLED]
    assert consumer.seeks == [(STALLED, 0)]


async def test_it_waits_a_whole_stall_again_after_a_reseek() -> None:
    guard, recovery, consumer, clock = _guard()
    recovery.active_offsets[MOVING] = 40  # done
    await guard.check()
    clock.now += 20
    await guard.check()
    clock.now += 10
    assert await guard.check() == []
    clock.now += 10
    assert await guard.check() == [STALLED]
    assert len(consumer.seeks) == 2


async def test_nothing_happens_outside_recovery() -> None:
    guard, recovery, consumer, clock = _guard()
    await guard.check()
    recovery.in_recovery = False
    clock.now += 100
    assert await guard.check() == []
    recovery.in_recovery = True  # a new recovery: its stall counts from now
    assert await guard.check() == []
    assert consumer.seeks == []
