"""The Redis outbox keeps the latest snapshots while a real redis-server refuses writes.

Refusal is made with `maxmemory 1` + `noeviction`: Redis stays up, keeps its
data and aborts every write transaction, so what got through can be read back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from livemetrics.sinks.redis_outbox import RedisOutbox
from livemetrics.sinks.redis_store import ConversationSnapshot, PartitionSnapshot, RedisStore
from livemetrics.stack.redis_server import EmbeddedRedis
from tests.integration.conftest import redis_server_or_skip

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    redis_server_or_skip()
    with EmbeddedRedis(log_path=tmp_path / "redis.log") as started:
        yield started


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _refuse(server: EmbeddedRedis, refuse: bool) -> None:
    admin = redis.Redis.from_url(server.url)
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1 if refuse else 0)
    admin.close()


def _conversation(cid: str, partition: int, offset: int, agent: str) -> ConversationSnapshot:
    return ConversationSnapshot("acme", cid, {}, {"agents": [agent]}, (partition, offset))


def _partition(number: int, applied: int) -> PartitionSnapshot:
    return PartitionSnapshot(number, {}, applied, {"processed": applied + 1})


async def _stored(url: str) -> tuple[dict[str, object], dict[int, dict[str, int]], int]:
    client = aioredis.from_url(url)
    store = RedisStore(client)
    try:
        agents = {}
        for cid in ("c1", "c2", "c3"):
            found = await store.read_conversation("acme", cid)
            agents[cid] = None if found is None else found.attributes
        return agents, await store.partition_status(), await store.clock_us()
    finally:
        await client.aclose()


def test_refused_snapshots_wait_and_only_the_latest_is_written(server: EmbeddedRedis) -> None:
    async def scenario() -> None:
        client = aioredis.from_url(server.url)
        clock = Clock()
        outbox = RedisOutbox(RedisStore(client), retry_seconds=1.0, monotonic=clock)
        try:
            outbox.add([_conversation("c1", 0, 1, "a1")], [_partition(0, 1)], 1_000)
            assert await outbox.send() and outbox.healthy and outbox.pending == 0

            _refuse(server, True)
            outbox.add([_conversation("c1", 0, 5, "a2")], [_partition(0, 5)], 2_000)
            outbox.add([_conversation("c2", 1, 6, "a3")], [_partition(1, 6)], 3_000)
            assert not await outbox.send()
            assert not outbox.healthy and outbox.failures == 1
            assert outbox.pending == 4  # c1 and c2, partitions 0 and 1
            outbox.add([_conversation("c1", 0, 7, "a4")], [_partition(0, 7)], 2_500)
            assert outbox.pending == 4  # the newer c1 and partition 0 replaced the older
            assert not await outbox.send()  # within retry_seconds: not even tried
            assert outbox.failures == 1

            agents, status, clock_us = await _stored(server.url)
            assert agents == {"c1": {"agents": ["a1"]}, "c2": None, "c3": None}
            assert status[0]["applied_offset"] == 1 and clock_us == 1_000

            _refuse(server, False)
            assert not await outbox.send()  # still spaced: the last attempt was just now
            clock.now += 1.0
            assert await outbox.send()
            assert outbox.healthy and outbox.pending == 0 and outbox.failures == 1
            agents, status, clock_us = await _stored(server.url)
            assert agents == {"c1": {"agents": ["a4"]}, "c2": {"agents": ["a3"]}, "c3": None}
            assert {n: s["applied_offset"] for n, s in status.items()} == {0: 7, 1: 6}
            assert clock_us == 3_000  # the largest clock waiting, not the last one
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_discard_drops_only_the_revoked_partitions(server: EmbeddedRedis) -> None:
    async def scenario() -> None:
        client = aioredis.from_url(server.url)
        outbox = RedisOutbox(RedisStore(client))
        try:
            _refuse(server, True)
            outbox.add(
                [_conversation("c1", 0, 3, "a1"), _conversation("c2", 1, 4, "a2")],
                [_partition(0, 3), _partition(1, 4), _partition(1000, 9)],
                5_000,
            )
            assert not await outbox.send(force=True)
            assert outbox.discard([1, 1000]) == 3
            assert outbox.discarded == 3 and outbox.pending == 2
            assert outbox.discard([5]) == 0
            _refuse(server, False)
            assert await outbox.send(force=True)
            agents, status, _ = await _stored(server.url)
            assert agents == {"c1": {"agents": ["a1"]}, "c2": None, "c3": None}
            assert set(status) == {0}
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_an_unreachable_redis_is_a_refusal_not_a_crash(tmp_path: Path) -> None:
    redis_server_or_skip()
    server = EmbeddedRedis(log_path=tmp_path / "redis.log")  # never started: nothing listens

    async def scenario() -> None:
        client = aioredis.from_url(server.url, socket_connect_timeout=2)
        outbox = RedisOutbox(RedisStore(client))
        try:
            outbox.add([_conversation("c1", 0, 1, "a1")], [], 1_000)
            assert not await outbox.send()
            assert outbox.pending == 1 and not outbox.healthy
        finally:
            await client.aclose()

    asyncio.run(scenario())
