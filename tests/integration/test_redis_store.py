"""The live Redis store gives exactly `replay`'s report, and absolute writes are idempotent.

A generated stream is replayed, its cells are split into per-conversation and
per-partition snapshots (`snapshots_from_store`), written to a real
redis-server started by this module, and `live_report` must equal the replay
report, JSON dict for JSON dict.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from functools import cache
from typing import Any

import orjson
import pytest
import redis
import redis.asyncio as aredis

from livemetrics.aggregate.distribution import Distribution
from livemetrics.aggregate.query import ReportQuery
from livemetrics.aggregate.report import build_report
from livemetrics.aggregate.store import Cell, CellKey, _cell_to_state
from livemetrics.config import Config, parse_config
from livemetrics.engine.outputs import DIM_FIELDS, DIM_INDEX
from livemetrics.replay import ReplayResult, replay_lines
from livemetrics.simulate.streams import STREAM_CONFIG, generate_stream
from livemetrics.sinks.redis_store import (
    ConversationSnapshot,
    PartitionSnapshot,
    RedisStore,
    decode_conversation,
    decode_misc,
    encode_conversation,
    encode_misc,
    live_report,
    snapshots_from_store,
)

pytestmark = pytest.mark.integration

PARTITIONS = 4
PREFIX = "lmtest"


# --- fixtures ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    """A throw-away redis-server on a free loopback port, no persistence."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not found: apt-get install -y redis-server")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_ready(port, process)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


def _wait_until_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    with redis.Redis(port=port) as probe:
        while True:
            try:
                probe.ping()
                return
            except redis.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {port}") from None
                time.sleep(0.05)


@pytest.fixture
async def client(redis_port: int) -> AsyncIterator[aredis.Redis]:
    connection = aredis.Redis(port=redis_port)
    await connection.flushall()
    yield connection
    await connection.aclose()


@cache
def _config() -> Config:
    return parse_config(STREAM_CONFIG)


@cache
def _replayed() -> ReplayResult:
    return replay_lines(generate_stream(3, conversations=200), _config())


def _partition_of(tenant: str, conversation_id: str) -> int:
    return zlib.crc32(f"{tenant}/{conversation_id}".encode()) % PARTITIONS


def _snapshots() -> tuple[list[ConversationSnapshot], list[PartitionSnapshot]]:
    return snapshots_from_store(_replayed().store, _partition_of)


async def _write_replay(client: aredis.Redis) -> RedisStore:
    store = RedisStore(client, PREFIX)
    conversations, partitions = _snapshots()
    await store.write(conversations, partitions, _replayed().now_us)
    return store


# --- live == replay ---------------------------------------------------------

QUERIES: dict[str, dict[str, Any]] = {
    "tenant": {},
    "agent": {"by": "agent"},
    "conversation": {"by": "conversation"},
    "day": {"by": "day"},
    "agent-day": {"by": "agent,day"},
    "team-where-chat": {"by": "team", "where": ["channel=chat"]},
    "from-to": {"by": "tenant,day", "date_from": "2026-10-23", "date_to": "2026-10-24"},
    "from-only": {"by": "hour", "date_from": "2026-10-25"},
    "range-all": {"by": "channel", "range_name": "all"},
    "this-week": {"by": "tenant,agent", "range_name": "this-week"},
    "today": {"by": "customer", "range_name": "today"},
    "this-month": {"by": "tenant", "range_name": "this-month"},
    "one-tenant-conversations-in-range": {
        "by": "conversation",
        "where": ["tenant=acme"],
        "date_from": "2026-10-24",
        "date_to": "2026-10-24",
    },
    "no-tenant": {"by": "day", "where": ["tenant="]},
    "tag-where-agent": {"by": "tag", "where": ["agent=ag-luis"]},
}


@pytest.mark.parametrize("options", QUERIES.values(), ids=QUERIES.keys())
async def test_live_report_equals_replay(client: aredis.Redis, options: dict[str, Any]) -> None:
    await _write_replay(client)
    query = ReportQuery.parse(**options)
    expected = _replayed().report(_config(), query)
    assert expected["rows"], "the query should select something"
    assert await live_report(client, _config(), query, prefix=PREFIX) == expected


async def test_live_report_equals_replay_when_written_in_many_batches(redis_port: int) -> None:
    """Batches land in any grouping and order; a decoding client reads the same."""
    text_client = aredis.Redis(port=redis_port, decode_responses=True)
    try:
        await text_client.flushall()
        store = RedisStore(text_client, PREFIX)
        conversations, partitions = _snapshots()
        for start in range(0, len(conversations), 37):
            await store.write(conversations[start : start + 37], partitions[:1], start)
        await store.write([], partitions, _replayed().now_us)
        for options in (QUERIES["agent-day"], QUERIES["conversation"], QUERIES["this-week"]):
            query = ReportQuery.parse(**options)
            expected = _replayed().report(_config(), query)
            assert await live_report(text_client, _config(), query, prefix=PREFIX) == expected
    finally:
        await text_client.aclose()


# --- idempotence and monotonic progress -------------------------------------


async def _content(client: aredis.Redis) -> dict[bytes, Any]:
    """Every key with its type and value, to compare whole databases."""
    found: dict[bytes, Any] = {}
    async for key in client.scan_iter(count=1000):
        kind = await client.type(key)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "string":
            found[key] = await client.get(key)
        elif kind == "hash":
            found[key] = await client.hgetall(key)
        elif kind == "set":
            found[key] = await client.smembers(key)
        else:
            raise AssertionError(f"unexpected {kind} at {key!r}")
    return found


async def test_writing_the_same_snapshots_twice_changes_nothing(client: aredis.Redis) -> None:
    store = await _write_replay(client)
    first = await _content(client)
    conversations, partitions = _snapshots()
    await store.write(conversations, partitions, _replayed().now_us)
    await store.write(conversations[:10], partitions[:1], _replayed().now_us)
    assert await _content(client) == first


async def test_an_older_clock_does_not_move_the_clock_back(client: aredis.Redis) -> None:
    store = RedisStore(client, PREFIX)
    assert await store.clock_us() == 0
    await store.write([], [], 1_800_000_000_000_000)
    await store.write([], [], 1_700_000_000_000_000)
    assert await store.clock_us() == 1_800_000_000_000_000
    await store.write([], [], 1_800_000_000_000_001)
    assert await store.clock_us() == 1_800_000_000_000_001


async def test_applied_offset_only_moves_forward_and_counters_are_absolute(
    client: aredis.Redis,
) -> None:
    store = RedisStore(client, PREFIX)
    await store.write([], [PartitionSnapshot(2, {}, 120, {"processed": 121})], 1)
    await store.write([], [PartitionSnapshot(2, {}, 80, {"processed": 81})], 1)
    await store.write([], [PartitionSnapshot(0, {}, 5, {"processed": 6, "duplicates": 1})], 1)
    assert await store.partition_status() == {
        0: {"applied_offset": 5, "processed": 6, "duplicates": 1},
        2: {"applied_offset": 120, "processed": 81},
    }


# --- absolute replacement ---------------------------------------------------


def _multi_cell_conversation() -> ConversationSnapshot:
    conversations, _ = _snapshots()
    return max(conversations, key=lambda snap: len({key[0] for key in snap.cells}))


async def test_a_conversation_whose_cells_shrink_loses_its_old_cells(
    client: aredis.Redis,
) -> None:
    """A retraction empties a cell: the next absolute write must not leave it behind."""
    store = RedisStore(client, PREFIX)
    full = _multi_cell_conversation()
    days = sorted({key[0] for key in full.cells if key[0] is not None})
    assert len(days) >= 2, "need a conversation spanning two days"
    kept = {key: cell for key, cell in full.cells.items() if key[0] == days[-1]}
    shrunk = ConversationSnapshot(full.tenant, full.conversation_id, kept, full.attributes, (0, 99))
    await store.write([full], [], 1)
    await store.write([shrunk], [], 2)

    cells, attributes = await store.read_cells()
    assert _states(cells) == _states(kept.items())
    assert attributes == {(full.tenant, full.conversation_id): full.attributes}
    query = ReportQuery.parse(by="conversation,day", date_from=days[0], date_to=days[-1])
    expected = build_report(kept.items(), attributes, _config(), query, 2)
    assert await live_report(client, _config(), query, prefix=PREFIX) == expected
    assert [row["day"] for row in expected["rows"]] == [days[-1]]


async def test_misc_cells_of_a_partition_are_replaced_whole(client: aredis.Redis) -> None:
    store = RedisStore(client, PREFIX)
    old = {
        _key("2026-10-24", "09", "acme"): {"duplicate_events": 2},
        _key("2026-10-25", "10", "acme"): {"invalid_events": 1},
        _key(None, None, None): {"invalid_events": 1},
    }
    new = {_key("2026-10-24", "09", "acme"): {"duplicate_events": 3}}
    await store.write([], [PartitionSnapshot(1, old, 10, {})], 1)
    await store.write([], [PartitionSnapshot(1, new, 11, {})], 1)
    cells, _ = await store.read_cells()
    assert _states(cells) == _states(new.items())


async def test_a_late_event_after_a_drop_keeps_the_conversation_attributes(
    client: aredis.Redis,
) -> None:
    """D4: the late cell lives in partition misc cells on a day the conversation blob
    is not indexed for; `--by conversation` still shows the attributes, as in replay."""
    store = RedisStore(client, PREFIX)
    attributes = {
        "customer_id": "cust-1",
        "customer_name": "Ana",
        "subject": "hello",
        "agents": ["ag-1"],
        "channel": "chat",
        "status": "closed",
        "started_at": "2026-10-20T10:00:00Z",
        "csat_score": 5,
    }
    conversation_cells = {
        _key("2026-10-20", "10", "acme", conversation="c-1", customer="cust-1"): {
            "conversations_started": 1
        }
    }
    late = {_key("2026-10-29", "08", "acme", conversation="c-1"): {"late_events": 1}}
    snapshot = ConversationSnapshot("acme", "c-1", conversation_cells, attributes, (0, 3))
    await store.write([snapshot], [PartitionSnapshot(0, late, 9, {})], 1)
    query = ReportQuery.parse(by="conversation", date_from="2026-10-29", date_to="2026-10-29")
    everything = [*conversation_cells.items(), *late.items()]
    expected = build_report(everything, {("acme", "c-1"): attributes}, _config(), query, 1)
    report = await live_report(client, _config(), query, prefix=PREFIX)
    assert report == expected
    assert report["rows"][0]["customer_name"] == "Ana"


# --- encoding ---------------------------------------------------------------


def _key(
    day: str | None,
    hour: str | None,
    tenant: str | None,
    agents: tuple[str, ...] = (),
    **dims: str | None,
) -> CellKey:
    values: list[str | None] = [None] * len(DIM_FIELDS)
    values[DIM_INDEX["tenant"]] = tenant
    for name, value in dims.items():
        values[DIM_INDEX[name]] = value
    return (day, hour, tuple(values), agents)


def _states(cells: Any) -> dict[CellKey, dict[str, Any]]:
    return {key: _cell_to_state(cell) for key, cell in cells}


def test_blobs_round_trip_every_cell_and_attribute_exactly() -> None:
    conversations, partitions = _snapshots()
    for snap in conversations:
        blob, _ = encode_conversation(snap)
        cells, attributes, offset = decode_conversation(snap.tenant, snap.conversation_id, blob)
        assert _states(cells) == _states(snap.cells.items())
        assert attributes == snap.attributes
        assert offset == snap.source_offset
    for part in partitions:
        decoded = [
            item
            for field, blob in encode_misc(part.cells).items()
            for item in decode_misc(_misc_tenant(field), blob)
        ]
        assert _states(decoded) == _states(part.cells.items())


def _misc_tenant(field: bytes) -> str | None:
    """The tenant of a misc field ``[tenant, day]``."""
    tenant: str | None = orjson.loads(field)[0]
    return tenant


def test_unusual_distributions_and_metrics_round_trip_bit_for_bit() -> None:
    """Sketch mode, a sum that removals made unreproducible, ints vs floats, -0.0,
    currencies, an uncoded metric and a cell without a day all survive."""
    sketch = Distribution()
    for i in range(300):
        sketch.add(i * 1.37 - 20)
    removed = Distribution()
    for value in (0.1, 0.2, 0.3):
        removed.add(value)
    removed.remove(0.1)
    ints = Distribution()
    ints.add(4)
    ints.add(4.0)
    ints.add(-0.0)
    cells: dict[CellKey, Cell] = {
        _key("2026-10-24", "23", "t{x}:y", ("a1", "a2"), conversation="c:1", team="t"): {
            "handle_seconds": sketch,
            "csat_score": ints,
            "transaction_amount_EUR": removed,
            "some_future_counter": 3,
            "agent_messages": -1,
        },
        _key(None, None, "t{x}:y", conversation="c:1", tag="vip"): {"late_events": 1},
    }
    snap = ConversationSnapshot("t{x}:y", "c:1", cells, {"other": 1}, (3, 7))
    decoded, attributes, _ = decode_conversation("t{x}:y", "c:1", encode_conversation(snap)[0])
    assert attributes == {"other": 1}
    originals = {key: _cell_to_state(cell) for key, cell in cells.items()}
    restored = _states(decoded)
    assert repr(restored) == repr(originals)  # repr tells 4 from 4.0 and 0.0 from -0.0


def test_a_cell_of_another_conversation_is_refused() -> None:
    cells = {_key("2026-10-24", "09", "acme", conversation="c-2"): {"agent_messages": 1}}
    with pytest.raises(ValueError, match="do not match"):
        encode_conversation(ConversationSnapshot("acme", "c-1", cells, None, (0, 0)))


# --- keys and gauges --------------------------------------------------------


async def test_keys_hold_no_customer_or_message_text(client: aredis.Redis) -> None:
    await _write_replay(client)
    keys = [key.decode() async for key in client.scan_iter(count=1000)]
    secrets: set[str] = set()
    for values in _replayed().store.attributes.values():
        for name in ("customer_id", "customer_name", "subject"):
            if values.get(name):
                secrets.add(values[name])
    conversation_ids = {snap.conversation_id for snap in _snapshots()[0]}
    assert secrets and keys
    for key in keys:
        assert key.startswith(f"{PREFIX}:")
        assert not any(secret in key for secret in secrets), key
        assert not any(conversation in key for conversation in conversation_ids), key
    tenant_keys = [key for key in keys if "{" in key]
    assert {key.split("}")[0] for key in tenant_keys} == {
        f"{PREFIX}:{{acme",
        f"{PREFIX}:{{globex",
        f"{PREFIX}:{{initech",
    }


async def test_gauges_are_replaced_per_tenant(client: aredis.Redis) -> None:
    store = RedisStore(client, PREFIX)
    await store.write_gauges("acme", {"open_conversations": 4, "sla_at_risk": 1}, 10)
    await store.write_gauges("acme", {"open_conversations": 3}, 20)
    await store.write_gauges("globex", {"agents_online": 2.0}, 15)
    assert await store.read_gauges() == {
        "acme": {"open_conversations": 3.0, "ts_us": 20.0},
        "globex": {"agents_online": 2.0, "ts_us": 15.0},
    }


async def test_gauges_of_partitions_add_up_and_oldest_wait_is_the_max(
    client: aredis.Redis,
) -> None:
    store = RedisStore(client, PREFIX + "p")
    await store.write_gauges("acme", {"open_conversations": 4, "oldest_waiting_seconds": 30}, 10, 0)
    await store.write_gauges("acme", {"open_conversations": 2, "oldest_waiting_seconds": 90}, 12, 1)
    await store.write_gauges("acme", {"open_conversations": 1, "oldest_waiting_seconds": 5}, 11, 1)
    assert await store.read_gauges() == {
        "acme": {"open_conversations": 5.0, "oldest_waiting_seconds": 30.0, "ts_us": 11.0},
    }
