"""Holes in what Faust delivers are filled from the broker (real broker, no Faust consumer).

Faust drops records it already fetched when a rebalance or a flow pause
interrupts a fetch, and later commits past them as a gap. Seen after a
`kill -9` and restart: a partition delivered offset 328, then 336. The
worker's `Pipeline` must notice such a hole wherever it is (at a batch's
start, inside a batch, or at the partition's end with nothing after it) and
apply the missing records, read directly from the broker, in offset order.

`Pipeline` runs here on its own: a stand-in for the Faust app (the consumer's
highwater only) and plain dict tables, with a real broker holding the input.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from livemetrics.config import Config
from livemetrics.simulate.streams import generate_stream
from livemetrics.stack.broker import EmbeddedBroker
from livemetrics.stream import worker as worker_module
from livemetrics.stream.settings import WorkerSettings
from livemetrics.stream.worker import Pipeline

pytestmark = pytest.mark.asyncio

RECORDS = 40


@dataclass
class PlainTable:
    """What `Pipeline` uses of a Faust table: its data and its changelog writes."""

    data: dict[bytes, bytes] = field(default_factory=dict)

    def send_changelog(self, partition: int, key: bytes, value: bytes | None) -> None:
        pass


@dataclass
class StandInConsumer:
    highwaters: dict[Any, int] = field(default_factory=dict)
    positions: dict[Any, int] = field(default_factory=dict)  # next offset to fetch

    def highwater(self, tp: Any) -> int:
        return self.highwaters[tp]

    async def position(self, tp: Any) -> int | None:
        return self.positions.get(tp)


@dataclass
class StandInApp:
    consumer: StandInConsumer = field(default_factory=StandInConsumer)
    rebalancing: bool = False


def _lines(count: int) -> list[bytes]:
    """The start of a generated stream: events of several conversations, a few bad lines."""
    return generate_stream(5, conversations=10)[:count]


@pytest.fixture
async def input_topic(broker: EmbeddedBroker) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A fresh one-partition topic holding RECORDS events at offsets 0..RECORDS-1."""
    topic = f"gaps-{uuid.uuid4().hex[:8]}"
    lines = _lines(RECORDS)
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    try:
        for line in lines:
            await producer.send_and_wait(topic, line, key=b"k", partition=0)
    finally:
        await producer.stop()
    yield topic, lines


def _pipeline(broker: EmbeddedBroker, app: StandInApp) -> Pipeline:
    pipeline = Pipeline(app, WorkerSettings(bootstrap=broker.bootstrap), Config())
    pipeline.processor.publish_observations = False
    pipeline.tables = {"conversations": PlainTable(), "presence": PlainTable()}
    return pipeline


def _batch(topic: str, lines: list[bytes], offsets: range | list[int]) -> list[Any]:
    """Stream events as Faust hands them to an agent (only `.message` is used)."""
    return [
        SimpleNamespace(message=SimpleNamespace(topic=topic, partition=0, offset=o, value=lines[o]))
        for o in offsets
    ]


def _outcomes(pipeline: Pipeline, topic: str) -> int:
    """How many input records got an outcome (processed, duplicate, dead-lettered)."""
    return sum(pipeline.processor.partition(topic, 0).counters.values())


@pytest.mark.parametrize(
    "second_batch",
    [
        # starts where the state ends; 15..21 were dropped in the middle
        pytest.param([*range(10, 15), *range(22, RECORDS)], id="inside-a-batch"),
        pytest.param(list(range(17, RECORDS)), id="at-a-batch-start"),
    ],
)
async def test_a_hole_in_the_delivered_records_is_refilled(
    broker: EmbeddedBroker, input_topic: tuple[str, list[bytes]], second_batch: list[int]
) -> None:
    topic, lines = input_topic
    pipeline = _pipeline(broker, StandInApp())
    pipeline.assigned = {(topic, 0)}
    try:
        await pipeline.process(_batch(topic, lines, range(10)))
        await pipeline.process(_batch(topic, lines, second_batch))
    finally:
        await pipeline.output.stop()
    assert pipeline.processor.partition(topic, 0).applied_offset == RECORDS - 1
    assert _outcomes(pipeline, topic) == RECORDS


async def test_records_of_a_partition_not_owned_are_left_alone(
    broker: EmbeddedBroker, input_topic: tuple[str, list[bytes]]
) -> None:
    """A batch fetched before a revoke: another worker owns the partition now."""
    topic, lines = input_topic
    pipeline = _pipeline(broker, StandInApp())
    pipeline.assigned = set()
    try:
        await pipeline.process(_batch(topic, lines, range(10)))
    finally:
        await pipeline.output.stop()
    assert _outcomes(pipeline, topic) == 0
    assert (topic, 0) not in pipeline.active


async def test_a_hole_at_the_partition_end_is_refilled_by_the_tick(
    broker: EmbeddedBroker,
    input_topic: tuple[str, list[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No later record reveals it: the consumer's position past what was applied does,
    once the partition is quiet."""
    topic, lines = input_topic
    app = StandInApp()
    pipeline = _pipeline(broker, app)
    pipeline.assigned = {(topic, 0)}
    app.consumer.highwaters[worker_module.TP(topic, 0)] = RECORDS
    app.consumer.positions[worker_module.TP(topic, 0)] = RECORDS  # fetched, then dropped
    try:
        await pipeline.process(_batch(topic, lines, range(30)))  # 30..39 dropped
        pipeline.settled = True
        await pipeline.tick()
        assert _outcomes(pipeline, topic) == 30, "refilled while records may still come"
        monkeypatch.setattr(worker_module, "TAIL_GAP_SECONDS", 0.0)
        await pipeline.tick()
    finally:
        await pipeline.output.stop()
        await pipeline.input_check.close()
    assert pipeline.processor.partition(topic, 0).applied_offset == RECORDS - 1
    assert _outcomes(pipeline, topic) == RECORDS


async def _quiet_after_30(
    broker: EmbeddedBroker, topic: str, lines: list[bytes], *, position: int, rebalancing: bool
) -> Pipeline:
    """Offsets 0..29 delivered, then a tick of a partition quiet long enough, whose
    highwater is at RECORDS and whose consumer position is at `position`."""
    app = StandInApp(rebalancing=rebalancing)
    pipeline = _pipeline(broker, app)
    pipeline.assigned = {(topic, 0)}
    app.consumer.highwaters[worker_module.TP(topic, 0)] = RECORDS
    app.consumer.positions[worker_module.TP(topic, 0)] = position
    try:
        await pipeline.process(_batch(topic, lines, range(30)))
        pipeline.settled = True
        await pipeline.tick()
    finally:
        await pipeline.output.stop()
        await pipeline.input_check.close()
    return pipeline


async def test_no_refill_of_records_not_fetched_yet(
    broker: EmbeddedBroker,
    input_topic: tuple[str, list[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A backlog Faust has not fetched yet is no hole: Faust delivers it in turn."""
    topic, lines = input_topic
    monkeypatch.setattr(worker_module, "TAIL_GAP_SECONDS", 0.0)
    pipeline = await _quiet_after_30(broker, topic, lines, position=30, rebalancing=False)
    assert _outcomes(pipeline, topic) == 30


async def test_no_refill_during_a_rebalance(
    broker: EmbeddedBroker,
    input_topic: tuple[str, list[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between a revoke and the end of recovery the partition may not be ours."""
    topic, lines = input_topic
    monkeypatch.setattr(worker_module, "TAIL_GAP_SECONDS", 0.0)
    pipeline = await _quiet_after_30(broker, topic, lines, position=RECORDS, rebalancing=True)
    assert _outcomes(pipeline, topic) == 30


async def test_a_quiet_partition_fetched_past_its_state_is_refilled(
    broker: EmbeddedBroker,
    input_topic: tuple[str, list[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same tick outside a rebalance, with the position past the state: refilled
    (what the two tests above leave alone is then left alone for their reason)."""
    topic, lines = input_topic
    monkeypatch.setattr(worker_module, "TAIL_GAP_SECONDS", 0.0)
    pipeline = await _quiet_after_30(broker, topic, lines, position=RECORDS, rebalancing=False)
    assert _outcomes(pipeline, topic) == RECORDS
