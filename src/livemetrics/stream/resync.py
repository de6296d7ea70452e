"""`livemetrics resync`: rebuild the Redis store from the workers' changelog topics.

Redis holds only what the workers can rebuild: every conversation's absolute
cells and attributes, and every input partition's cells without a
conversation, are also in the Faust changelogs (`<app_id>-conversations-changelog`,
`<app_id>-presence-changelog`), stamped with the input offset they include.
When Redis lost its data (restarted without persistence, flushed, a new
instance), this standalone job reads both changelogs from the beginning, keeps
the latest record per key, loads them with the worker's own
`LiveProcessor.restore` (a processor per partition, so decoded state stays bounded by a
partition) and writes the same absolute snapshots the worker writes, plus the
event clock. The report is then what it was.

    counts = await resync("127.0.0.1:9092", "redis://127.0.0.1:6379/0", "livemetrics")

Safe while workers run and on a Redis that still holds data: a snapshot is
written only when Redis has none for that conversation (partition) or an older
one (a smaller source offset), so a worker's newer write is never replaced by
the changelog's older copy. (A worker writing the same conversation in the
few milliseconds between the check and the write is corrected by that
conversation's next event; stop the workers for an exact rebuild in one step.)

What resync cannot rebuild:
- the cells of conversations dropped after retention (D4, `retention_days`
  after close): their changelog record is a tombstone without cells, so their
  numbers lived only in Redis and are gone with it;
- anything the changelogs lost: the embedded broker keeps nothing across a
  restart (restart the workers and re-produce the source data instead);
- the live gauges: each worker rewrites them every few seconds;
- the exact clock when the latest events were agent.status or duplicates:
  the clock written is the latest of the conversations' last event times and
  the clock carried by the latest `livemetrics.live` snapshot; the workers
  move it forward again with their next batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from livemetrics.config import Config
from livemetrics.events import parse_ts
from livemetrics.sinks.redis_store import ConversationSnapshot, PartitionSnapshot, RedisStore
from livemetrics.stream.processor import EVENTS, STATUS, LiveProcessor

__all__ = ["ResyncCounts", "ResyncError", "changelog_topic", "resync"]

log = logging.getLogger("livemetrics.resync")

TABLES = (("conversations", EVENTS), ("presence", STATUS))
LIVE = "livemetrics.live"
#: Status-topic partitions are stored in Redis as 1000 + n (see `LiveProcessor.flush`).
STATUS_PARTITION_BASE = 1000
WRITE_CHUNK = 500
_FETCH_MS = 500
_MAX_RECORDS = 5000


class ResyncError(RuntimeError):
    """The broker or Redis cannot be used for a resync; one line naming the cause and fix."""


@dataclass(slots=True)
class ResyncCounts:
    """What one resync read and wrote."""

    records: int = 0  # changelog records restored (the latest per key)
    conversations: int = 0  # conversation snapshots written
    partitions: int = 0  # partition snapshots written
    skipped: int = 0  # snapshots Redis already held at the same or a newer offset
    dropped: int = 0  # conversations dropped after retention: cells not rebuildable
    clock_us: int = 0  # the event clock written


def changelog_topic(app_id: str, table: str) -> str:
    """Faust's name for a table's changelog topic."""
    return f"{app_id}-{table}-changelog"


async def resync(
    bootstrap: str,
    redis_url: str,
    app_id: str = "livemetrics",
    *,
    config: Config | None = None,
    kafka_options: Mapping[str, Any] | None = None,
    redis_options: Mapping[str, Any] | None = None,
    timeout: float = 60.0,
) -> ResyncCounts:
    """Write every conversation and partition snapshot the changelogs hold into Redis.

    `kafka_options` / `redis_options` are the client settings of
    `livemetrics.security` (TLS, SASL, ACL). Each changelog must be read
    within `timeout` seconds. Raises ResyncError when the broker or Redis
    cannot be reached or the app's changelog topics do not exist (wrong
    `app_id`, or a broker that lost its data).
    """
    counts = ResyncCounts()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        **dict(kafka_options or {}),
    )
    try:
        async with asyncio.timeout(timeout):
            await consumer.start()
            topics = await consumer.topics()
            # now, while the metadata covers every topic: an assign() narrows it to its own
            partitions = {
                name: sorted(consumer.partitions_for_topic(name) or ()) for name in topics
            }
    except (TimeoutError, KafkaError, OSError) as exc:
        await consumer.stop()
        raise ResyncError(f"cannot reach the broker at {bootstrap}: {_one_line(exc)}") from None
    client = aioredis.from_url(redis_url, **dict(redis_options or {}))
    try:
        await _ping(client, redis_url)
        store = RedisStore(client)
        wanted = [changelog_topic(app_id, table) for table, _ in TABLES]
        _check_topics(wanted, topics, app_id, bootstrap)
        clock_us = 0
        for table, source in TABLES:
            topic = changelog_topic(app_id, table)
            tps = [TopicPartition(topic, n) for n in partitions[topic]]
            latest = await _read_latest(consumer, tps, timeout)
            for tp in tps:
                written_clock = await _write_partition(
                    store, config or Config(), table, source, latest.pop(tp), counts
                )
                clock_us = max(clock_us, written_clock)
        live_partitions = [TopicPartition(LIVE, n) for n in partitions.get(LIVE, ())]
        clock_us = max(clock_us, await _live_clock(consumer, live_partitions, timeout))
        await store.write([], [], clock_us)
        counts.clock_us = await store.clock_us()
    finally:
        await consumer.stop()
        await client.aclose()
    log.info(
        "resync: %s records, %s conversations, %s partitions written, %s already current, "
        "%s dropped conversations not rebuildable",
        counts.records,
        counts.conversations,
        counts.partitions,
        counts.skipped,
        counts.dropped,
    )
    return counts


async def _ping(client: aioredis.Redis, redis_url: str) -> None:
    from redis.exceptions import RedisError

    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        raise ResyncError(
            f"cannot reach Redis at {_safe_url(redis_url)}: {_one_line(exc)}"
        ) from None


def _check_topics(wanted: Iterable[str], topics: set[str], app_id: str, bootstrap: str) -> None:
    """Refuse a resync from nothing: a wrong app id (or an emptied broker) is a user error."""
    missing = [name for name in wanted if name not in topics]
    if not missing:
        return
    present = sorted(t for t in topics if t.endswith("-changelog"))
    hint = (
        f"changelogs on the broker: {', '.join(present)} (check --app-id)"
        if present
        else "the broker has no changelog topics: it lost its data or no worker ran there"
    )
    raise ResyncError(f"no topic {missing[0]} on {bootstrap} for app id {app_id!r}; {hint}")


async def _read_latest(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], timeout: float
) -> dict[TopicPartition, dict[bytes, bytes | None]]:
    """The latest value per key of each changelog partition, up to its end when we started.

    The end is the high watermark of the first fetch answer (ListOffsets is
    short of the end on Tansu, see `kafka_admin`); records written after it
    by running workers may be included, which is harmless (they are newer).
    """
    latest: dict[TopicPartition, dict[bytes, bytes | None]] = {tp: {} for tp in partitions}
    if not partitions:
        return latest
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)
    ends: dict[TopicPartition, int] = {}
    pending = set(partitions)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while pending:
        batch = await consumer.getmany(*pending, timeout_ms=_FETCH_MS, max_records=_MAX_RECORDS)
        for tp, records in batch.items():
            values = latest[tp]
            for record in records:
                if record.key is not None:
                    values[record.key] = record.value
        for tp in list(pending):
            if tp not in ends:
                end = consumer.highwater(tp)
                if end is None:
                    continue
                ends[tp] = end
            if await consumer.position(tp) >= ends[tp]:
                pending.discard(tp)
        if pending and loop.time() > deadline:
            tp = min(pending)
            raise ResyncError(
                f"reading {tp.topic}:{tp.partition} did not reach its end "
                f"({ends.get(tp, 'unknown')}) within {timeout:g} s"
            )
    return latest


async def _write_partition(
    store: RedisStore,
    config: Config,
    table: str,
    source: str,
    latest: Mapping[bytes, bytes | None],
    counts: ResyncCounts,
) -> int:
    """Restore one changelog partition into a processor; write its snapshots; its clock."""
    counts.records += len(latest)
    processor = LiveProcessor(config, publish_observations=False)
    for key, value in latest.items():
        if value is not None:
            processor.restore(table, key, value)
    processor.reconcile()
    engine = processor.engine
    counts.dropped += len(engine.dropped)
    conversations = [
        ConversationSnapshot(
            key[0],
            key[1],
            processor.cells.get(key, {}),
            processor.attributes.get(key),
            (partition, processor.offsets.get(key, -1)),
        )
        for key, partition in processor.home.items()
        if key in engine.conversations  # a dropped conversation's cells are not in its tombstone
    ]
    offset_base = 0 if source == EVENTS else STATUS_PARTITION_BASE
    partitions = []
    for (topic, number), state in processor.partitions.items():
        if topic == source:
            # with what records ahead of the partition record put outside themselves
            cells, counters = state.reported()
            partitions.append(
                PartitionSnapshot(offset_base + number, cells, state.applied_offset, counters)
            )
    for start in range(0, len(conversations), WRITE_CHUNK):
        chunk = await _newer_conversations(store, conversations[start : start + WRITE_CHUNK])
        counts.skipped += min(WRITE_CHUNK, len(conversations) - start) - len(chunk)
        if chunk:
            await store.write(chunk, [], 0)
            counts.conversations += len(chunk)
    fresh = await _newer_partitions(store, partitions)
    counts.skipped += len(partitions) - len(fresh)
    if fresh:
        await store.write([], fresh, 0)
        counts.partitions += len(fresh)
    return max((c.last_event_us for c in engine.conversations.values()), default=0)


async def _newer_conversations(
    store: RedisStore, snapshots: list[ConversationSnapshot]
) -> list[ConversationSnapshot]:
    """The snapshots Redis has no blob for, or an older one (smaller source offset)."""
    by_tenant: dict[str, list[ConversationSnapshot]] = {}
    for snap in snapshots:
        by_tenant.setdefault(snap.tenant, []).append(snap)
    newer: list[ConversationSnapshot] = []
    for tenant, group in by_tenant.items():
        blobs = await store.client.hmget(
            store.keys.conversations(tenant), [s.conversation_id for s in group]
        )
        for snap, blob in zip(group, blobs, strict=True):
            if blob is None or orjson.loads(blob)[2] < snap.source_offset[1]:
                newer.append(snap)
    return newer


async def _newer_partitions(
    store: RedisStore, snapshots: list[PartitionSnapshot]
) -> list[PartitionSnapshot]:
    if not snapshots:
        return []
    stored = await store.client.hmget(store.keys.offsets, [str(s.partition) for s in snapshots])
    return [
        snap
        for snap, applied in zip(snapshots, stored, strict=True)
        if applied is None or int(applied) < snap.applied_offset
    ]


async def _live_clock(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition], timeout: float
) -> int:
    """The latest clock a worker published with its gauges on `livemetrics.live` (0: none)."""
    if not partitions:
        return 0
    consumer.assign(partitions)
    ends = await consumer.end_offsets(partitions)
    for tp in partitions:
        # on Tansu the end offset is the last batch's base + 1: start one before it
        consumer.seek(tp, max(ends[tp] - 1, 0))
    clock_us = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = {tp for tp in partitions if ends[tp] > 0}
    while pending and loop.time() < deadline:
        batch = await consumer.getmany(*pending, timeout_ms=_FETCH_MS, max_records=_MAX_RECORDS)
        for records in batch.values():
            for record in records:
                clock_us = max(clock_us, _snapshot_clock(record.value))
        for tp in list(pending):
            end = consumer.highwater(tp)
            if end is not None and await consumer.position(tp) >= end:
                pending.discard(tp)
    return clock_us


def _snapshot_clock(value: bytes | None) -> int:
    try:
        ts = orjson.loads(value or b"null")["ts"]
        return parse_ts(ts) if isinstance(ts, str) else 0
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return 0


def _safe_url(url: str) -> str:
    from livemetrics.security import redact

    return str(redact({"url": url})["url"])


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
