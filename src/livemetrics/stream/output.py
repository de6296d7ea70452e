"""The worker's metric topics (observations, SLA, live, dead letters), in record batches.

Faust's producer sends one message at a time (a future, a buffer slot and a
log record each), which profiling showed to be about 60 % of a busy worker's
time at ~4.7 messages per input event. This sends the same messages in
hand-filled batches (`PartitionBatches`) and `flush` waits until the broker
acknowledged all of them, so the worker's rule holds: what a batch produced is
durable before its input offsets are committed. Table changelogs stay on
Faust's producer (see `Pipeline._write_tables`).

A send the broker refuses (unreachable, timed out) is retried from the kept
messages until it gets through; the batch's input is not acknowledged
meanwhile. A retry after a lost acknowledgement may write a message twice:
changelogs keep the latest value per key anyway, and the metric topics are
at-least-once (README "Guarantees").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from livemetrics.kafka_batches import PartitionBatches

log = logging.getLogger("livemetrics.output")

BATCH_BYTES = 512 * 1024
MAX_REQUEST_BYTES = 32 * 1024 * 1024  # dead letters carry originals up to the input limit
RETRY_SECONDS = 1.0
LOG_EVERY_SECONDS = 30.0

Message = tuple[str, bytes | None, bytes | None, int | None]
"""(topic, key, value, partition or None for the key's); a None value is a tombstone."""


class WorkerOutput:
    """Collects a flush's messages; `flush` sends them in batches and waits for acks."""

    def __init__(
        self, bootstrap: str, kafka_options: Mapping[str, Any], partitions: Mapping[str, int]
    ) -> None:
        self.bootstrap = bootstrap
        self.kafka_options = dict(kafka_options)
        self.partitions = dict(partitions)
        self.pending: list[Message] = []
        self.producer: AIOKafkaProducer | None = None
        self.sent = 0  # messages acknowledged, since start
        self.retries = 0  # flushes that had to be sent again

    def add(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
    ) -> None:
        self.pending.append((topic, key, value, partition))

    async def flush(self) -> None:
        """Send everything added since the last flush; return once all is acknowledged."""
        if not self.pending:
            return
        first_failure: float | None = None
        last_log = 0.0
        while True:
            try:
                await self._send(self.pending)
                break
            except (KafkaError, OSError, TimeoutError) as exc:
                now = time.monotonic()
                self.retries += 1
                if first_failure is None:
                    first_failure = now
                if now - last_log >= LOG_EVERY_SECONDS:
                    last_log = now
                    log.error(
                        "sending %d messages failed (%s) for %.0fs; retrying",
                        len(self.pending),
                        exc,
                        now - first_failure,
                    )
                await self._reset()
                await asyncio.sleep(RETRY_SECONDS)
        self.sent += len(self.pending)
        self.pending = []

    async def stop(self) -> None:
        await self._reset()

    async def _send(self, messages: list[Message]) -> None:
        producer = await self._producer()
        batches = PartitionBatches(producer, self.partitions)
        for topic, key, value, partition in messages:
            await batches.add(topic, key, value, partition)
        await batches.flush()

    async def _producer(self) -> AIOKafkaProducer:
        if self.producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks="all",
                # Tansu refuses InitProducerId; order rests on one request in flight per
                # partition (see PartitionBatches)
                enable_idempotence=False,
                max_batch_size=BATCH_BYTES,
                max_request_size=MAX_REQUEST_BYTES,
                request_timeout_ms=30_000,
                **self.kafka_options,
            )
            await producer.start()
            self.producer = producer
        return self.producer

    async def _reset(self) -> None:
        producer, self.producer = self.producer, None
        if producer is not None:
            try:
                await producer.stop()
            except (KafkaError, OSError, TimeoutError) as exc:
                log.debug("stopping the producer: %s", exc)
