"""The worker's input path against a real broker: `InputReader` and the hole refill.

The worker reads each owned partition itself (`InputReader`), from the state's
applied offset + 1, so a changelog that recovered short simply reads those
records again. A record that still arrives past the state's end (a batch
fetched before a reassignment, or Faust delivering after all) leaves a hole,
at a batch's start or inside it: `Pipeline` applies the missing records first,
read directly from the broker, in offset order.

`Pipeline` runs here on its own: a stand-in for the Faust app and plain dict
tables, with a real broker holding the input.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from livemetrics.config import Config
from livemetrics.simulate.streams import generate_stream
from livemetrics.stack.broker import EmbeddedBroker
from livemetrics.stream.input_reader import InputReader
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
class StandInApp:
    """What `Pipeline` reads of the Faust app outside a tick."""

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
    """Input records as the reader (or Faust) hands them over."""
    return [SimpleNamespace(topic=topic, partition=0, offset=o, value=lines[o]) for o in offsets]


def _outcomes(pipeline: Pipeline, topic: str) -> int:
    """How many input records got an outcome (processed, duplicate, dead-lettered)."""
    return sum(pipeline.processor.partition(topic, 0).counters.values())


async def _run_input(pipeline: Pipeline, done: Callable[[], bool], during: float = 0.0) -> None:
    """Run the worker's input loop until `done()`; `during` seconds in, the app's
    rebalance (if any) ends."""
    task = asyncio.create_task(pipeline.run_input())
    try:
        if during:
            await asyncio.sleep(during)
            assert not done(), "read while the rebalance was going on"
            assert pipeline.reader_stale
            pipeline.app.rebalancing = False
        deadline = time.monotonic() + 30
        while not done():
            assert not task.done(), task.exception()
            assert time.monotonic() < deadline, "the input loop did not catch up in 30 s"
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


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
    pipeline.settled = True
    try:
        await pipeline.process(_batch(topic, lines, range(10)))
        await pipeline.process(_batch(topic, lines, second_batch))
    finally:
        await pipeline.output.stop()
    assert pipeline.processor.partition(topic, 0).applied_offset == RECORDS - 1
    assert _outcomes(pipeline, topic) == RECORDS


@pytest.mark.parametrize(
    ("assigned", "settled"),
    [
        # a batch fetched before a revoke: another worker owns the partition now
        pytest.param(False, True, id="not-owned"),
        # assigned, but the tables are not recovered yet: its state is unknown (the
        # reader reads the records again once the rebalance has settled)
        pytest.param(True, False, id="before-recovery"),
    ],
)
async def test_records_of_a_partition_not_ready_are_left_alone(
    broker: EmbeddedBroker, input_topic: tuple[str, list[bytes]], assigned: bool, settled: bool
) -> None:
    topic, lines = input_topic
    pipeline = _pipeline(broker, StandInApp())
    pipeline.assigned = {(topic, 0)} if assigned else set()
    pipeline.settled = settled
    try:
        await pipeline.process(_batch(topic, lines, range(10)))
    finally:
        await pipeline.output.stop()
    assert _outcomes(pipeline, topic) == 0
    assert (topic, 0) not in pipeline.active


async def test_the_reader_starts_at_the_applied_offset(
    broker: EmbeddedBroker, input_topic: tuple[str, list[bytes]]
) -> None:
    """State that has applied 0..19 reads on from 20: each record gets one outcome."""
    topic, lines = input_topic
    pipeline = _pipeline(broker, StandInApp())
    pipeline.assigned = {(topic, 0)}
    pipeline.settled = True
    try:
        await pipeline.process(_batch(topic, lines, range(20)))
        await _run_input(pipeline, lambda: _outcomes(pipeline, topic) == RECORDS)
    finally:
        await pipeline.output.stop()
    assert pipeline.reader.positions == {(topic, 0): 20}
    assert _outcomes(pipeline, topic) == RECORDS


async def test_the_reader_waits_for_the_end_of_a_rebalance(
    broker: EmbeddedBroker, input_topic: tuple[str, list[bytes]]
) -> None:
    """Until the tables are recovered the partition's state is not known: nothing is read."""
    topic, _ = input_topic
    pipeline = _pipeline(broker, StandInApp(rebalancing=True))
    pipeline.assigned = {(topic, 0)}
    pipeline.settled = True
    try:
        await _run_input(pipeline, lambda: _outcomes(pipeline, topic) == RECORDS, during=1.0)
    finally:
        await pipeline.output.stop()
    assert pipeline.processor.partition(topic, 0).applied_offset == RECORDS - 1


async def test_a_read_interleaves_the_partitions_in_time_order(broker: EmbeddedBroker) -> None:
    """aiokafka hands out one partition's fetched records at a time; the engine clock is
    shared, so a read takes a share of each partition and orders them by timestamp."""
    topic = f"interleave-{uuid.uuid4().hex[:8]}"
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    try:
        for n in range(600):  # partition 0 holds the even timestamps, 1 the odd ones
            await producer.send_and_wait(
                topic, b"x", partition=n % 2, timestamp_ms=1_700_000_000_000 + n
            )
    finally:
        await producer.stop()
    reader = InputReader(broker.bootstrap, {})
    await reader.start()
    try:
        reader.assign({(topic, 0): 0, (topic, 1): 0})
        records: list[Any] = []
        deadline = time.monotonic() + 30
        while len(records) < 600 and time.monotonic() < deadline:
            batch = await reader.read(timeout_ms=500, max_records=200)
            partitions = {r.partition for r in batch}
            assert len(batch) <= 200 and (partitions == {0, 1} or len(records) + len(batch) > 400)
            records += batch
    finally:
        await reader.stop()
    assert [r.timestamp for r in records] == sorted(r.timestamp for r in records)
    assert len(records) == 600
