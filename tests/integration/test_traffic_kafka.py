"""`simulate_to_kafka` against the embedded broker: real-time, keyed, stamped now, clean stop."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from livemetrics.events import Event, decode_event
from livemetrics.kafka_admin import end_offsets
from livemetrics.produce import AGENT_STATUS_TOPIC, EVENTS_TOPIC, route_line
from livemetrics.simulate.traffic import SimulationCounts, simulate_to_kafka
from livemetrics.stack.broker import EmbeddedBroker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Offsets = dict[TopicPartition, int]
TOPICS = [EVENTS_TOPIC, AGENT_STATUS_TOPIC]


async def _records_since(bootstrap: str, since: Offsets) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record after `since` up to each partition's current end, in offset order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await consumer.start()
    try:
        consumer.assign(list(since))
        for tp, offset in since.items():
            consumer.seek(tp, offset)
        end = await end_offsets(bootstrap, TOPICS)
        records: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(30):
            while [tp for tp in since if await consumer.position(tp) < end[tp]]:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def test_simulated_traffic_is_published_live_keyed_and_stamped_with_the_wall_clock(
    broker: EmbeddedBroker,
) -> None:
    before = await end_offsets(broker.bootstrap, TOPICS)
    progress: list[SimulationCounts] = []
    began = time.time()

    counts = await asyncio.wait_for(
        simulate_to_kafka(
            broker.bootstrap,
            seed=4,
            duration_s=5,
            rate_per_s=3,
            speed=120,  # 10 simulated minutes
            on_progress=progress.append,
        ),
        60,
    )

    ended = time.time()
    assert ended - began >= 5
    assert progress and progress[-1] is counts
    assert counts.conversations > 0 and counts.status > 0
    records = await _records_since(broker.bootstrap, before)
    topics = Counter(record.topic for record in records)
    assert topics == {EVENTS_TOPIC: counts.events, AGENT_STATUS_TOPIC: counts.status}

    partitions: dict[bytes, set[int]] = defaultdict(set)
    latest: dict[bytes, int] = {}
    seen: set[str] = set()
    out_of_order = 0
    for record in records:
        assert record.value is not None and record.key is not None
        assert (record.topic, record.key.decode()) == route_line(record.value)
        event = decode_event(record.value)
        assert isinstance(event, Event), event
        assert began - 1 <= event.ts_us / 1e6 <= ended + 1, event
        partitions[record.key].add(record.partition)
        if record.topic == EVENTS_TOPIC and event.event_id not in seen:
            out_of_order += event.ts_us < latest.get(record.key, 0)
            latest[record.key] = max(latest.get(record.key, 0), event.ts_us)
        seen.add(event.event_id)
    assert all(len(found) == 1 for found in partitions.values())
    assert out_of_order <= counts.late


async def test_a_cancelled_simulation_flushes_what_it_counted_then_stops(
    broker: EmbeddedBroker,
) -> None:
    """Ctrl-C cancels the task: everything counted so far is on the broker."""
    before = await end_offsets(broker.bootstrap, TOPICS)
    progress: list[SimulationCounts] = []
    task = asyncio.create_task(
        simulate_to_kafka(
            broker.bootstrap, seed=5, duration_s=600, rate_per_s=3, speed=60,
            on_progress=progress.append,
        )
    )  # fmt: skip
    await asyncio.sleep(3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 30)

    final = progress[-1]
    assert final.total > 0
    records = await _records_since(broker.bootstrap, before)
    assert len(records) == final.total
