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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from livemetrics.clients import kafka_options
from livemetrics.event_types import AgentStatus
from livemetrics.events import AGENT_STATUS, Event, decode_event
from livemetrics.kafka_admin import broker_unavailable, ensure_topics, topic_partitions
from livemetrics.kafka_batches import PartitionBatches

__all__ = [
    "AGENT_STATUS_TOPIC",
    "EVENTS_TOPIC",
    "MAX_MESSAGE_BYTES",
    "ProduceCounts",
    "produce_file",
    "route_line",
]

EVENTS_TOPIC = "chat.events"
AGENT_STATUS_TOPIC = "chat.agent-status"
# Oversized events (over 1 MiB, SPEC §7 [1]) are still produced so the worker
# can dead-letter them; a line over this limit is refused with its line number.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_CONNECT_TIMEOUT = 15.0
_PROGRESS_EVERY = 1 << 20  # bytes of file between two on_progress calls
_BATCH_BYTES = 256 * 1024


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

    Creates the manifest's topics first when they are missing: Tansu would
    otherwise create them on first use with its default partition count.
    `on_progress` receives the bytes of the file read so far (about every MiB
    and at the end). Raises BrokerUnavailable when the broker cannot be
    reached, ValueError for a line over MAX_MESSAGE_BYTES, and aiokafka's
    KafkaError if a send fails.
    """
    await ensure_topics(bootstrap)
    partitions = await topic_partitions(bootstrap, [EVENTS_TOPIC, AGENT_STATUS_TOPIC])
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        # Tansu fails InitProducerId, so the idempotent producer cannot start;
        # order rests on one in-flight request per partition (see PartitionBatches).
        enable_idempotence=False,
        max_batch_size=_BATCH_BYTES,
        max_request_size=MAX_MESSAGE_BYTES + 64 * 1024,
        request_timeout_ms=30_000,
        **kafka_options(),
    )
    try:
        async with asyncio.timeout(_CONNECT_TIMEOUT):
            await producer.start()
    except (TimeoutError, KafkaError) as exc:
        await producer.stop()
        raise broker_unavailable(bootstrap, exc, _CONNECT_TIMEOUT) from exc
    try:
        return await _send_lines(PartitionBatches(producer, partitions), path, on_progress)
    finally:
        await producer.stop()


async def _send_lines(
    batches: PartitionBatches,
    path: Path,
    on_progress: Callable[[int], None] | None,
) -> ProduceCounts:
    counts = ProduceCounts()
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
            topic, key = route_line(value)
            if topic == AGENT_STATUS_TOPIC:
                counts.status += 1
            else:
                counts.events += 1
            await batches.add(topic, None if key is None else key.encode(), value)
            if on_progress is not None and counts.bytes - reported >= _PROGRESS_EVERY:
                reported = counts.bytes
                on_progress(reported)
    await batches.flush()
    if on_progress is not None:
        on_progress(counts.bytes)
    return counts


def route_line(value: bytes) -> tuple[str, str | None]:
    """(topic, key) of one non-blank line, without its newline.

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
        if isinstance(event, Event) and isinstance(event.data, AgentStatus):
            return AGENT_STATUS_TOPIC, event.data.agent_id
    conversation_id = obj.get("conversation_id")
    if isinstance(conversation_id, str) and conversation_id:
        return EVENTS_TOPIC, conversation_id
    return EVENTS_TOPIC, None


def _without_newline(line: bytes) -> bytes:
    """The line as `decode_line` sees it: without its `\\n` or `\\r\\n`."""
    if line.endswith(b"\n"):
        return line[:-2] if line.endswith(b"\r\n") else line[:-1]
    return line
