"""The embedded stack: Tansu broker, topics, producing a file, lag, Redis."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
import redis.asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.structs import ConsumerRecord

from livemetrics.kafka_admin import (
    BrokerUnavailable,
    KafkaAdminError,
    end_offsets,
    partition_lag,
    topic_partitions,
)
from livemetrics.produce import (
    AGENT_STATUS_TOPIC,
    EVENTS_TOPIC,
    ProduceCounts,
    produce_file,
    route_line,
)
from livemetrics.simulate.streams import generate_stream
from livemetrics.stack.broker import BrokerError, EmbeddedBroker
from livemetrics.stack.ports import free_port
from livemetrics.stack.redis_server import REDIS_NOT_FOUND, EmbeddedRedis, RedisServerError
from livemetrics.topics import load_manifest
from tests.integration.conftest import broker_binary_or_skip, redis_server_or_skip, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

EXAMPLE = Path(__file__).resolve().parents[3] / "shared" / "examples" / "one-conversation.jsonl"
Offsets = dict[TopicPartition, int]


async def _records_since(bootstrap: str, since: Offsets) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record after `since` up to each partition's current end, in offset order."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await consumer.start()
    try:
        consumer.assign(list(since))
        for tp, offset in since.items():
            consumer.seek(tp, offset)
        end = await end_offsets(bootstrap, sorted({tp.topic for tp in since}))
        records: list[ConsumerRecord[bytes, bytes]] = []
        async with asyncio.timeout(20):
            while [tp for tp in since if await consumer.position(tp) < end[tp]]:
                batches = await consumer.getmany(timeout_ms=500)
                for batch in batches.values():
                    records.extend(batch)
        return records
    finally:
        await consumer.stop()


def _lines_of(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().split(b"\n") if line.strip()]


# --- broker and topics -------------------------------------------------------


async def test_broker_has_every_manifest_topic_with_its_partitions(
    broker: EmbeddedBroker,
) -> None:
    manifest = load_manifest()
    found = await topic_partitions(broker.bootstrap, list(manifest))
    assert found == {name: spec.partitions for name, spec in manifest.items()}


async def test_topics_carry_the_manifest_cleanup_policy_and_retention(
    broker: EmbeddedBroker,
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        spec = load_manifest()[AGENT_STATUS_TOPIC]
        resource = ConfigResource(ConfigResourceType.TOPIC, spec.name)
        async with asyncio.timeout(15):
            (response,) = await admin.describe_configs([resource])
    finally:
        await admin.close()
    entries = {entry[0]: entry[1] for entry in response.resources[0][4]}
    assert entries["cleanup.policy"] == "compact"
    assert entries["retention.ms"] == str(spec.retention_ms)


# --- produce_file ------------------------------------------------------------


async def test_produce_file_sends_each_line_as_is_keyed_and_in_order(
    broker: EmbeddedBroker,
) -> None:
    events_before = await end_offsets(broker.bootstrap, [EVENTS_TOPIC])
    status_before = await end_offsets(broker.bootstrap, [AGENT_STATUS_TOPIC])
    progress: list[int] = []

    counts = await asyncio.wait_for(
        produce_file(broker.bootstrap, EXAMPLE, on_progress=progress.append), 30
    )

    size = EXAMPLE.stat().st_size
    assert counts == ProduceCounts(events=14, status=1, blank=0, bytes=size)
    assert progress[-1] == size
    lines = _lines_of(EXAMPLE)
    events = await _records_since(broker.bootstrap, events_before)
    assert [record.value for record in events] == lines[:14]
    assert {record.key for record in events} == {b"c-1001"}
    assert len({record.partition for record in events}) == 1
    (status,) = await _records_since(broker.bootstrap, status_before)
    assert (status.key, status.value) == (b"ag-luis", lines[14])


async def test_produce_file_sends_invalid_lines_to_chat_events_for_the_dead_letter_count(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    lines = [
        b'{"type":"message.sent","conversation_id":"c-bad","sender":"nobody"}',
        b"not json at all",
        b'{"type":"agent.status","agent_id":"ag-x"}',
        b'{"event_id":"s1","type":"agent.status","ts":"2026-11-23T09:15:00Z",'
        b'"tenant":"acme","agent_id":"ag-x","status":"online"}',
        b'["conversation_id"]',
    ]
    source = tmp_path / "mixed.jsonl"
    source.write_bytes(b"\n".join([lines[0], b"", lines[1], b"   ", *lines[2:]]) + b"\r\n")
    events_before = await end_offsets(broker.bootstrap, [EVENTS_TOPIC])
    status_before = await end_offsets(broker.bootstrap, [AGENT_STATUS_TOPIC])

    counts = await asyncio.wait_for(produce_file(broker.bootstrap, source), 30)

    assert (counts.events, counts.status, counts.blank) == (4, 1, 2)
    events = await _records_since(broker.bootstrap, events_before)
    by_value = {record.value: record.key for record in events}
    assert by_value == {lines[0]: b"c-bad", lines[1]: None, lines[2]: None, lines[4]: None}
    (status,) = await _records_since(broker.bootstrap, status_before)
    assert (status.key, status.value) == (b"ag-x", lines[3])


async def test_produce_file_keeps_each_conversation_in_file_order_on_its_partition(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    """Many batches over every partition, a 2 MiB (oversized, still sent) line included."""
    lines = generate_stream(7, conversations=300)
    huge = b'{"conversation_id":"c-huge","text":"' + b"x" * (2 << 20) + b'"}'
    lines.insert(len(lines) // 2, huge)
    source = tmp_path / "stream.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    before = await end_offsets(broker.bootstrap, [EVENTS_TOPIC])

    counts = await asyncio.wait_for(produce_file(broker.bootstrap, source), 60)

    events = await _records_since(broker.bootstrap, before)
    assert len(events) == counts.events
    partitions = sorted(tp.partition for tp in before)
    sent: dict[bytes | None, list[bytes]] = defaultdict(list)
    for record in events:
        sent[record.key].append(record.value)
        if record.key is not None:
            assert record.partition == DefaultPartitioner()(record.key, partitions, partitions)
    expected: dict[bytes | None, list[bytes]] = defaultdict(list)
    for line in filter(bytes.strip, lines):
        topic, key = route_line(line)
        if topic == EVENTS_TOPIC:
            expected[None if key is None else key.encode()].append(line)
    keyed = {key: values for key, values in expected.items() if key is not None}
    assert {key: sent[key] for key in keyed} == keyed
    assert sorted(sent[None]) == sorted(expected[None])
    assert huge in sent[b"c-huge"]


async def test_produce_file_names_the_broker_it_cannot_reach(tmp_path: Path) -> None:
    source = tmp_path / "one.jsonl"
    source.write_bytes(b"{}\n")
    bootstrap = f"127.0.0.1:{free_port()}"
    with pytest.raises(BrokerUnavailable, match=bootstrap):
        await asyncio.wait_for(produce_file(bootstrap, source), 30)


# --- consumer groups and lag ---------------------------------------------------


async def test_partition_lag_reports_end_offsets_and_committed_positions(
    broker: EmbeddedBroker,
) -> None:
    """produce_file sends the example's 14 events as one batch, where Tansu's
    ListOffsets would say +1; the end offsets must grow by 14."""
    group = f"lag-{uuid.uuid4().hex}"
    before = {
        lag.partition: lag for lag in await partition_lag(broker.bootstrap, group, [EVENTS_TOPIC])
    }
    await asyncio.wait_for(produce_file(broker.bootstrap, EXAMPLE), 30)

    fresh = await partition_lag(broker.bootstrap, group, [EVENTS_TOPIC])

    growth = {lag.partition: lag.end_offset - before[lag.partition].end_offset for lag in fresh}
    assert sorted(growth.values()) == [0, 0, 0, 0, 0, 14]
    assert all(lag.committed is None and lag.lag == lag.end_offset for lag in fresh)

    (partition,) = [number for number, grown in growth.items() if grown]
    tp = TopicPartition(EVENTS_TOPIC, partition)
    end = next(lag.end_offset for lag in fresh if lag.partition == partition)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([tp])
        async with asyncio.timeout(15):
            await consumer.commit({tp: end - 3})
    finally:
        await consumer.stop()

    after = await partition_lag(broker.bootstrap, group, [EVENTS_TOPIC])
    (committed,) = [lag for lag in after if lag.committed is not None]
    assert (committed.partition, committed.committed, committed.lag) == (partition, end - 3, 3)


async def test_partition_lag_refuses_a_topic_that_does_not_exist(broker: EmbeddedBroker) -> None:
    with pytest.raises(KafkaAdminError, match=r"no topic 'no\.such\.topic'"):
        await partition_lag(broker.bootstrap, "any", ["no.such.topic"])
    assert await topic_partitions(broker.bootstrap, ["no.such.topic"]) == {}


async def test_consumer_group_joins_commits_and_resumes_from_its_offsets(
    broker: EmbeddedBroker,
) -> None:
    """The worker is a consumer group (Faust); Tansu must honour join, commit and fetch."""
    topic = f"group-check-{uuid.uuid4().hex}"
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, acks="all")
    await producer.start()
    try:
        for index in range(10):
            await producer.send_and_wait(topic, b"m%d" % index, partition=0)
    finally:
        await producer.stop()
    group = f"group-{uuid.uuid4().hex}"
    tp = TopicPartition(topic, 0)

    async def read(count: int) -> tuple[list[bytes], int | None]:
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=broker.bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # Tansu answers a join after about half the session timeout, and a
            # rejoin only once the previous member's session expired.
            session_timeout_ms=3000,
            heartbeat_interval_ms=500,
        )
        await consumer.start()
        try:
            seen: list[bytes] = []
            async with asyncio.timeout(30):
                while len(seen) < count:
                    batch = await consumer.getmany(
                        tp, timeout_ms=500, max_records=count - len(seen)
                    )
                    seen.extend(record.value for record in batch.get(tp, []) if record.value)
            await consumer.commit()
            return seen, await consumer.committed(tp)
        finally:
            await consumer.stop()

    assert await read(4) == ([b"m0", b"m1", b"m2", b"m3"], 4)
    assert await read(6) == ([b"m%d" % index for index in range(4, 10)], 10)
    (lag,) = await partition_lag(broker.bootstrap, group, [topic])
    assert (lag.committed, lag.end_offset, lag.lag) == (10, 10, 0)


# --- process lifecycle ---------------------------------------------------------


def _group_is_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def test_broker_stop_leaves_no_process_and_is_idempotent(tmp_path: Path) -> None:
    broker_binary_or_skip()
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log")
    broker.start(timeout=30)
    pid = broker.pid
    assert pid is not None and not _group_is_gone(pid)

    broker.stop()
    broker.stop()

    assert broker.pid is None
    assert _group_is_gone(pid)


def test_broker_that_cannot_listen_fails_naming_its_log(tmp_path: Path) -> None:
    broker_binary_or_skip()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        broker = EmbeddedBroker(port=taken.getsockname()[1], log_path=tmp_path / "tansu.log")
        with pytest.raises(BrokerError, match=r"tansu\.log"):
            broker.start(timeout=5)
    assert broker.pid is None


async def test_redis_answers_ping(redis_url: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=5)
    try:
        assert await client.ping()
        assert await client.config_get("save") == {"save": ""}
        assert await client.config_get("appendonly") == {"appendonly": "no"}
    finally:
        await client.aclose()


async def test_redis_stop_leaves_no_process(tmp_path: Path) -> None:
    redis_server_or_skip()
    server = EmbeddedRedis(log_path=tmp_path / "redis.log")
    server.start(timeout=10)
    pid = server.pid
    assert pid is not None

    server.stop()
    server.stop()

    await wait_for(lambda: _group_is_gone(pid), timeout=5)
    assert not list(tmp_path.glob("*.rdb"))


def test_missing_redis_server_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RedisServerError) as caught:
        EmbeddedRedis().start()
    assert str(caught.value) == REDIS_NOT_FOUND
