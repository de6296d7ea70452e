"""The worker's input consumer: a plain aiokafka consumer of the owned input partitions.

Faust still runs the consumer group (which worker owns which partition) and
recovers the tables; only the reading of the input records moved here. Why:
Faust's per-message path (conductor, stream, acks, `take_events`) cost about a
third of a busy worker's time, more than our whole processor, while a plain
`getmany` costs a few microseconds per record (`bench/pipeline.py` (a)).

The position is the state's, not the group's commit: each owned partition is
read from its applied offset + 1. A changelog that recovered short after a
`kill -9` then simply reads those records again, and no record fetched across
a rebalance can be dropped in between, because every reassignment seeks again
from the state. Committed offsets only show the lag to Kafka tools.
"""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

FETCH_MAX_BYTES = 16 * 1024 * 1024
MIN_SHARE = 100  # records per partition and read, at least


class InputReader:
    """Reads a set of partitions, each from a position the caller gives."""

    def __init__(self, bootstrap: str, kafka_options: Mapping[str, Any]) -> None:
        self.bootstrap = bootstrap
        self.kafka_options = dict(kafka_options)
        self.consumer: AIOKafkaConsumer | None = None
        self.positions: dict[tuple[str, int], int] = {}  # as last assigned

    async def start(self) -> None:
        if self.consumer is not None:
            return
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_bytes=FETCH_MAX_BYTES,
            **self.kafka_options,
        )
        await consumer.start()
        self.consumer = consumer

    async def stop(self) -> None:
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            await consumer.stop()

    def assign(self, positions: Mapping[tuple[str, int], int]) -> None:
        """Read exactly these partitions, each from its offset; records fetched
        before are dropped (they are read again from these positions)."""
        consumer = self._consumer()
        tps = [TopicPartition(topic, partition) for topic, partition in sorted(positions)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, max(positions[(tp.topic, tp.partition)], 0))
        self.positions = dict(positions)

    async def read(self, timeout_ms: int, max_records: int) -> list[ConsumerRecord[Any, Any]]:
        """The next records of the assigned partitions, in offset order per partition;
        returns as soon as any are there, empty after `timeout_ms`."""
        if not self.positions:  # nothing owned: wait as a read would (never spin)
            await asyncio.sleep(timeout_ms / 1000)
            return []
        consumer = self._consumer()
        share = max(MIN_SHARE, max_records // len(self.positions))
        batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=share)
        if not batches:
            return []
        # aiokafka hands out one partition's fetched records at a time; the engine's
        # clock is shared by the partitions (SPEC D50), so take a share of every
        # partition's fetched records and apply them in time order, as replay does
        for topic, partition in self.positions:
            tp = TopicPartition(topic, partition)
            if tp not in batches:
                more = await consumer.getmany(tp, timeout_ms=0, max_records=share)
                batches.update(more)
        if len(batches) == 1:
            return next(iter(batches.values()))
        return list(heapq.merge(*batches.values(), key=_timestamp))

    def highwater(self, topic: str, partition: int) -> int | None:
        """The partition's end offset as of the last fetch (None before one)."""
        consumer = self.consumer
        if consumer is None or (topic, partition) not in self.positions:
            return None
        return consumer.highwater(TopicPartition(topic, partition))

    def _consumer(self) -> AIOKafkaConsumer:
        if self.consumer is None:
            raise RuntimeError("InputReader.start() was not awaited")
        return self.consumer


def _timestamp(record: ConsumerRecord[Any, Any]) -> int:
    return int(record.timestamp)
