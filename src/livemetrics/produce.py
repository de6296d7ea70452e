"""Publish a JSONL file of chat events to the input topics (SPEC §1).

Each non-blank line becomes one message whose value is the line's original
bytes (without the newline), so the worker sees exactly what `replay` reads.
Valid `agent.status` events go to `chat.agent-status` keyed by agent; every
other line, invalid ones included, goes to `chat.events` keyed by its
conversation when one can be read: the worker dead-letters and counts invalid
input (SPEC §1), so it must reach the topic, and keying it keeps it in order
with its conversation.

    counts = await produce_file("127.0.0.1:9092", Path("events.jsonl"))
    print(counts.events, counts.status, counts.blank)
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from livemetrics.events import AGENT_STATUS, Event, decode_event
from livemetrics.kafka_admin import broker_unavailable

__all__ = [
    "AGENT_STATUS_TOPIC",
    "EVENTS_TOPIC",
    "MAX_MESSAGE_BYTES",
    "ProduceCounts",
    "produce_file",
]

EVENTS_TOPIC = "chat.events"
AGENT_STATUS_TOPIC = "chat.agent-status"
# Oversized events (over 1 MiB, SPEC §7 [1]) are still produced so the worker
# can dead-letter them; a line over this limit is refused with its line number.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_CONNECT_TIMEOUT = 15.0
_PROGRESS_EVERY = 1 << 20  # bytes of file between two on_progress calls


@dataclass(slots=True)
class ProduceCounts:
    """Lines sent to `chat.events` and `chat.agent-status`, blank lines skipped, bytes read."""

    events: int = 0
    status: int = 0
    blank: int = 0
    bytes: int = 0


async def produce_file(
    bootstrap: str,
    path: Path,
    *,
    on_progress: Callable[[int], None] | None = None,
) -> ProduceCounts:
    """Send every non-blank line of `path` in line order; return once all are acknowledged.

    `on_progress` receives the bytes of the file read so far (about every MiB
    and at the end). Order within a key is kept: aiokafka has one request in
    flight per partition, and retries resend that request before any later one.
    Raises BrokerUnavailable when the broker cannot be reached, ValueError for
    a line over MAX_MESSAGE_BYTES, and aiokafka's KafkaError if a send fails.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        # Tansu fails InitProducerId, so the idempotent producer cannot start;
        # ordering rests on one in-flight request per partition instead.
        enable_idempotence=False,
        linger_ms=20,
        max_batch_size=256 * 1024,
        max_request_size=MAX_MESSAGE_BYTES + 64 * 1024,
        request_timeout_ms=30_000,
        partitioner=_CachedPartitioner(),
    )
    try:
        async with asyncio.timeout(_CONNECT_TIMEOUT):
            await producer.start()
    except (TimeoutError, KafkaError) as exc:
        await producer.stop()
        raise broker_unavailable(bootstrap, exc, _CONNECT_TIMEOUT) from exc
    try:
        return await _send_lines(producer, path, on_progress)
    finally:
        await producer.stop()


async def _send_lines(
    producer: AIOKafkaProducer,
    path: Path,
    on_progress: Callable[[int], None] | None,
) -> ProduceCounts:
    counts = ProduceCounts()
    pending: deque[asyncio.Future[object]] = deque()
    reported = 0
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            counts.bytes += len(line)
            value = _without_newline(line)
            if not value.strip():
                counts.blank += 1
                continue
            if len(value) > MAX_MESSAGE_BYTES:
                raise ValueError(
                    f"{path}: line {number} is {len(value)} bytes, over the "
                    f"{MAX_MESSAGE_BYTES // (1024 * 1024)} MiB a message may have"
                )
            topic, key = _route(value)
            if topic == AGENT_STATUS_TOPIC:
                counts.status += 1
            else:
                counts.events += 1
            pending.append(
                await producer.send(topic, value, key=None if key is None else key.encode())
            )
            _raise_failed(pending)
            if on_progress is not None and counts.bytes - reported >= _PROGRESS_EVERY:
                reported = counts.bytes
                on_progress(reported)
    await producer.flush()
    await asyncio.gather(*pending)
    if on_progress is not None:
        on_progress(counts.bytes)
    return counts


def _route(value: bytes) -> tuple[str, str | None]:
    """(topic, key) of one non-blank line.

    Only a line that claims to be `agent.status` is fully validated: the worker
    validates everything else, and the key of any JSON object with a non-empty
    string `conversation_id` is that id, whether or not the event is valid.
    """
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError:
        return EVENTS_TOPIC, None
    if not isinstance(obj, dict):
        return EVENTS_TOPIC, None
    if obj.get("type") == AGENT_STATUS:
        event = decode_event(value)
        if isinstance(event, Event):
            return AGENT_STATUS_TOPIC, str(event.data["agent_id"])
    conversation_id = obj.get("conversation_id")
    if isinstance(conversation_id, str) and conversation_id:
        return EVENTS_TOPIC, conversation_id
    return EVENTS_TOPIC, None


class _CachedPartitioner:
    """aiokafka's default partitioner (murmur2, as Java and Faust) with a cache per key.

    The pure-Python murmur2 costs more than the rest of a send; a
    conversation's ~20 events share a key, so most lookups are cache hits.
    """

    _LIMIT = 1 << 16

    def __init__(self) -> None:
        self._default = DefaultPartitioner()
        self._cache: dict[tuple[bytes, int], int] = {}

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is None:
            return int(self._default(key, all_partitions, available))
        cache_key = (key, len(all_partitions))
        partition = self._cache.get(cache_key)
        if partition is None:
            if len(self._cache) >= self._LIMIT:
                self._cache.clear()
            partition = self._cache[cache_key] = int(self._default(key, all_partitions, available))
        return partition


def _without_newline(line: bytes) -> bytes:
    """The line as `decode_line` sees it: without its `\\n` or `\\r\\n`."""
    if line.endswith(b"\n"):
        return line[:-2] if line.endswith(b"\r\n") else line[:-1]
    return line


def _raise_failed(pending: deque[asyncio.Future[object]]) -> None:
    """Drop acknowledged sends from the front; raise the first failure at once."""
    while pending and pending[0].done():
        pending.popleft().result()
