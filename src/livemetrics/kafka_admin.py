"""Kafka administration livemetrics needs: create the manifest's topics, measure lag.

The topic manifest (`topics/manifest.json`) is the one source of names,
partition counts and retention; this module applies it to a broker. Every call
is bounded by a timeout, so an unreachable broker is an error, not a hang.

    await ensure_topics("127.0.0.1:9092")
    lags = await partition_lag("127.0.0.1:9092", "livemetrics", ["chat.events"])

Tansu (the embedded broker) quirks handled here:
- a metadata request that names an unknown topic *creates* it with the
  broker's default partition count, so topics are looked up through the
  all-topics metadata request;
- an OffsetFetch without an explicit partition list closes the connection, so
  committed offsets are always asked for by partition;
- ListOffsets(latest) answers the last *batch's* base offset + 1, short of the
  log end when that batch holds several records; the high watermark of a Fetch
  response is right, so `end_offsets` reads it from a fetch.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError

from livemetrics.clients import kafka_options
from livemetrics.topics import TopicSpec, load_manifest

__all__ = [
    "BrokerUnavailable",
    "KafkaAdminError",
    "PartitionLag",
    "broker_unavailable",
    "end_offsets",
    "ensure_topics",
    "partition_lag",
    "topic_partitions",
]

DEFAULT_TIMEOUT = 15.0
_TOPIC_ALREADY_EXISTS = 36
REPLICATION_ENV = "LIVEMETRICS_REPLICATION_FACTOR"
_FETCH_WAIT_MS = 50


class KafkaAdminError(RuntimeError):
    """The broker refused an admin request; the message is one line."""


class BrokerUnavailable(KafkaAdminError):
    """The broker did not answer in time; the message names it and the fix."""


@dataclass(slots=True, frozen=True)
class PartitionLag:
    """How far a consumer group is behind on one partition.

    `committed` is None when the group has committed nothing there; `lag` then
    counts from the log start, where a group without offsets begins
    (auto_offset_reset=earliest).
    """

    topic: str
    partition: int
    committed: int | None
    end_offset: int
    lag: int


async def ensure_topics(
    bootstrap: str,
    *,
    partitions: Mapping[str, int] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Create every manifest topic that is missing; existing topics are left as they are.

    `partitions` overrides the manifest's count per topic name (tests, small
    machines). Cleanup policy and retention go as topic configs; Tansu accepts
    and stores them (DescribeConfigs returns them). Whether its memory engine
    enforces them is untested: the embedded broker never lives long enough.
    """
    manifest = load_manifest()
    overrides = dict(partitions or {})
    unknown = sorted(set(overrides) - set(manifest))
    if unknown:
        raise ValueError(f"partitions: unknown topic {unknown[0]!r}; known: {', '.join(manifest)}")
    for name, count in overrides.items():
        if type(count) is not int or count < 1:
            raise ValueError(f"partitions: {name!r} must be a positive integer, got {count!r}")
    async with _deadline(bootstrap, timeout), _admin(bootstrap, timeout) as admin:
        existing = await _existing_topics(admin)
        wanted = [
            _new_topic(spec, overrides.get(spec.name, spec.partitions))
            for spec in manifest.values()
            if spec.name not in existing
        ]
        if not wanted:
            return
        response = await admin.create_topics(wanted, timeout_ms=int(timeout * 1000))
    for topic, error_code, error_message in _topic_errors(response):
        if error_code not in (0, _TOPIC_ALREADY_EXISTS):
            raise KafkaAdminError(
                f"broker {bootstrap} refused to create topic {topic!r}: "
                f"{error_message or f'error code {error_code}'}"
            )


async def topic_partitions(
    bootstrap: str, topics: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT
) -> dict[str, int]:
    """Partition count of each of `topics` that exists (absent ones are left out)."""
    async with _deadline(bootstrap, timeout), _admin(bootstrap, timeout) as admin:
        existing = await _existing_topics(admin)
    return {name: existing[name] for name in topics if name in existing}


async def end_offsets(
    bootstrap: str, topics: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT
) -> dict[TopicPartition, int]:
    """Log end offset (high watermark) of every partition of `topics`, right on Tansu too.

    Raises KafkaAdminError naming a topic that does not exist.
    """
    async with _deadline(bootstrap, timeout), _admin(bootstrap, timeout) as admin:
        partitions = _partitions_of(bootstrap, topics, await _existing_topics(admin))
        if not partitions:
            return {}
        _, end = await _log_bounds(bootstrap, partitions, timeout)
    return end


async def partition_lag(
    bootstrap: str,
    group_id: str,
    topics: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[PartitionLag]:
    """Committed offset, end offset and lag of `group_id` on every partition of `topics`.

    Sorted by topic and partition. Raises KafkaAdminError naming a topic that
    does not exist (asking for it would create it on Tansu).
    """
    async with _deadline(bootstrap, timeout), _admin(bootstrap, timeout) as admin:
        assigned = _partitions_of(bootstrap, topics, await _existing_topics(admin))
        if not assigned:
            return []
        committed = await admin.list_consumer_group_offsets(group_id, partitions=assigned)
        start, end = await _log_bounds(bootstrap, assigned, timeout)
    lags = []
    for tp in assigned:
        offset = committed.get(tp)
        position = offset.offset if offset is not None and offset.offset >= 0 else None
        consumed_to = position if position is not None else start[tp]
        lags.append(
            PartitionLag(tp.topic, tp.partition, position, end[tp], max(end[tp] - consumed_to, 0))
        )
    return lags


def _partitions_of(
    bootstrap: str, topics: Sequence[str], existing: Mapping[str, int]
) -> list[TopicPartition]:
    """Every partition of `topics`, sorted; KafkaAdminError if one does not exist."""
    missing = [name for name in topics if name not in existing]
    if missing:
        raise KafkaAdminError(f"broker {bootstrap} has no topic {missing[0]!r}")
    return [
        TopicPartition(name, index)
        for name in sorted(set(topics))
        for index in range(existing[name])
    ]


def replication_factor(environ: Mapping[str, str] | None = None) -> int:
    """Replicas of every topic livemetrics creates (manifest topics and the workers'
    changelogs): LIVEMETRICS_REPLICATION_FACTOR, default 1 (the embedded broker is
    one node; a production cluster wants 3)."""
    raw = (os.environ if environ is None else environ).get(REPLICATION_ENV, "").strip()
    if not raw:
        return 1
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{REPLICATION_ENV} must be a positive integer, got {raw!r}")
    return int(raw)


def replication_configs(factor: int) -> dict[str, str]:
    """Topic configs that go with `factor` replicas: with more than one, a write is
    acknowledged (acks=all, as every livemetrics producer asks) only once all but
    one replica have it, so losing one broker loses nothing acknowledged."""
    return {"min.insync.replicas": str(factor - 1)} if factor > 1 else {}


def _new_topic(spec: TopicSpec, partitions: int) -> NewTopic:
    factor = replication_factor()
    configs = {
        "cleanup.policy": spec.cleanup_policy,
        "retention.ms": str(spec.retention_ms),
        **replication_configs(factor),
    }
    return NewTopic(spec.name, partitions, factor, topic_configs=configs)


async def _existing_topics(admin: AIOKafkaAdminClient) -> dict[str, int]:
    """Topic name -> partition count, from the all-topics metadata request."""
    described = await admin.describe_topics()
    return {
        topic["topic"]: len(topic["partitions"])
        for topic in described
        if topic.get("error_code", 0) == 0
    }


def _topic_errors(response: Any) -> list[tuple[str, int, str | None]]:
    """(topic, error code, message) from any CreateTopics response version."""
    errors = []
    for entry in response.topic_errors:
        topic, error_code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        errors.append((topic, error_code, message))
    return errors


async def _log_bounds(
    bootstrap: str, partitions: list[TopicPartition], timeout: float
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """(log start offsets, log end offsets) through a group-less consumer.

    The end is the high watermark of a fetch from the listed end offset, which
    is never past the true end: on Kafka the two agree, on Tansu only the
    fetch is right (see the module docstring). The records fetched are dropped.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        request_timeout_ms=int(timeout * 1000),
        fetch_max_wait_ms=_FETCH_WAIT_MS,
        **kafka_options(),
    )
    await consumer.start()
    try:
        start = await consumer.beginning_offsets(partitions)
        listed_end = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, listed_end[tp])
        unknown = list(partitions)
        while unknown:
            await consumer.getmany(*unknown, timeout_ms=_FETCH_WAIT_MS * 2)
            unknown = [tp for tp in unknown if consumer.highwater(tp) is None]
        end = {tp: max(consumer.highwater(tp) or 0, listed_end[tp]) for tp in partitions}
    finally:
        await consumer.stop()
    return start, end


@asynccontextmanager
async def _admin(bootstrap: str, timeout: float) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000), **kafka_options()
    )
    try:
        await admin.start()
        yield admin
    finally:
        await admin.close()


@asynccontextmanager
async def _deadline(bootstrap: str, timeout: float) -> AsyncIterator[None]:
    """Bound a whole call by `timeout`; turn timeouts and client errors into one line."""
    try:
        async with asyncio.timeout(timeout):
            yield
    except (TimeoutError, KafkaError) as exc:
        raise broker_unavailable(bootstrap, exc, timeout) from exc


def broker_unavailable(bootstrap: str, exc: BaseException, timeout: float) -> BrokerUnavailable:
    """The one-line error for a broker that refused, timed out or failed a request."""
    if isinstance(exc, TimeoutError):
        reason = f"no answer within {timeout:g} s"
    elif isinstance(exc, KafkaConnectionError):
        reason = "connection refused"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return BrokerUnavailable(f"cannot reach the broker at {bootstrap} ({reason}); is it running?")
