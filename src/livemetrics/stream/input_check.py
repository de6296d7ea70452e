"""Check that the broker still holds the input records the worker has applied.

A memory-only broker (the embedded Tansu) forgets every topic when it
restarts. A running worker then reconnects without an error, its fetch
position is out of range, the consumer resets to the new log's start, and
every new record whose offset is at or below the applied offset looks like a
redelivery: it would be skipped in silence. Apache Kafka can do the same
after an unclean leader election.

So every few seconds the worker reads back, per owned input partition, the
record at its applied offset and compares its CRC-32 with the one it applied.
A log that ends before that offset, or a different record there, means the
broker lost input this worker counted: the worker stops with an error that
says so, rather than publish numbers that silently miss events. A record
gone by retention (the log now starts after it) is not a loss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

log = logging.getLogger("livemetrics.input_check")

PROBE_FETCH_BYTES = 64 * 1024  # one record is enough; the fetcher must not read ahead much


class BrokerLostInput(RuntimeError):
    """The broker no longer holds an input record this worker applied."""


@dataclass(frozen=True, slots=True)
class AppliedRecord:
    topic: str
    partition: int
    offset: int
    crc: int  # -1: unknown (state written before CRCs were kept): only the offset is checked


class InputCheck:
    """Reads back applied records through a group-less consumer of its own."""

    def __init__(self, bootstrap: str, kafka_options: Mapping[str, Any]) -> None:
        self.bootstrap = bootstrap
        self.kafka_options = dict(kafka_options)
        self.consumer: AIOKafkaConsumer | None = None

    async def verify(self, applied: Iterable[AppliedRecord], timeout: float = 10.0) -> None:
        """Raise BrokerLostInput when a partition lost a record; quiet when unsure.

        A broker that cannot be reached now is not a loss: the next round asks again.
        """
        try:
            async with asyncio.timeout(timeout):
                for record in applied:
                    if record.offset >= 0:
                        await self._verify_one(record)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.info("input check skipped: %s", exc)
            await self.close()

    async def close(self) -> None:
        consumer, self.consumer = self.consumer, None
        if consumer is not None:
            with contextlib.suppress(KafkaError, OSError, TimeoutError):
                await consumer.stop()

    async def _consumer(self) -> AIOKafkaConsumer:
        if self.consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.bootstrap,
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                max_partition_fetch_bytes=PROBE_FETCH_BYTES,
                fetch_max_bytes=PROBE_FETCH_BYTES,
                **self.kafka_options,
            )
            await consumer.start()
            self.consumer = consumer
        return self.consumer

    async def _verify_one(self, record: AppliedRecord) -> None:
        consumer = await self._consumer()
        tp = TopicPartition(record.topic, record.partition)
        consumer.assign([tp])
        consumer.seek(tp, record.offset)
        batch = await consumer.getmany(tp, timeout_ms=2000, max_records=1)
        found = batch.get(tp, [])
        where = f"{record.topic}:{record.partition}"
        if not found:
            end = consumer.highwater(tp)
            if end is not None and end <= record.offset:
                raise BrokerLostInput(
                    f"the broker's {where} now ends at offset {end}, but this worker applied "
                    f"offset {record.offset}: the broker lost input (a memory-only broker "
                    "restarted?). Stopping rather than skip new records as redeliveries; "
                    "see README 'Recovering'"
                )
            return  # no answer in time: next round
        first = found[0]
        if first.offset < record.offset:  # out of range: the consumer went back to the start
            raise BrokerLostInput(
                f"the broker's {where} no longer holds offset {record.offset} this worker "
                f"applied (its log restarts below it): the broker lost input (a memory-only "
                "broker restarted?). Stopping rather than skip new records as redeliveries; "
                "see README 'Recovering'"
            )
        if first.offset > record.offset:
            return  # removed by retention: the log starts after it, nothing was replaced
        if record.crc != -1 and zlib.crc32(first.value or b"") != record.crc:
            raise BrokerLostInput(
                f"the broker's {where} holds a different record at offset {record.offset} "
                "than the one this worker applied: the broker lost input and was refilled "
                "(a memory-only broker restarted?). Stopping rather than skip new records "
                "as redeliveries; see README 'Recovering'"
            )
