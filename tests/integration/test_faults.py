"""Faults against the real broker, Redis and worker processes: the report still equals replay.

Reuses `test_pipeline`'s `LiveStack` (own Tansu broker and redis-server per
test, worker processes, `kill -9`) and `_settle` (poll until every report
query equals `replay`'s). Each test is bounded (settling gives up after two
minutes and shows the first difference and the worker logs).

Two bugs these tests found (each lost one event's effect on some runs) are
fixed and covered on their own: records Faust fetched and dropped at a
rebalance (`test_worker_gaps.py`), and timers of a partition taken over by a
worker whose clock had passed them (`test_live_processor.py`).
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis as redis_sync
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition

from livemetrics.aggregate.report import build_report
from livemetrics.engine.outputs import DIM_INDEX
from livemetrics.events import Event, Rejection, decode_line
from livemetrics.kafka_admin import end_offsets, ensure_topics
from livemetrics.produce import ProduceCounts, produce_file
from livemetrics.replay import replay_lines
from livemetrics.simulate.streams import generate_stream, reorder_conversations
from livemetrics.sinks.redis_store import RedisStore
from livemetrics.stack.broker import EmbeddedBroker
from livemetrics.stack.redis_server import EmbeddedRedis
from livemetrics.stream.processor import DLQ, DLQ_ORIGINAL_LIMIT
from livemetrics.stream.resync import ResyncError, resync
from tests.integration.test_pipeline import (
    QUERIES,
    LiveStack,
    _config,
    _expected,
    _first_difference,
    _live,
    _produce,
    _settle,
    _write,
    live_stack,
)

__all__ = ["live_stack"]  # the fixture, imported so pytest finds it here

APP_ID = "livemetrics-test"  # LiveStack.start_worker's default
STATUS_BASE = 1000  # status partitions in Redis (LiveProcessor.flush)


# --- helpers -----------------------------------------------------------------


def _slices(lines: list[bytes], count: int) -> list[list[bytes]]:
    size = len(lines) // count + 1
    return [lines[i : i + size] for i in range(0, len(lines), size)]


def _produce_in_background(stack: LiveStack, parts: list[Path], pause: float) -> threading.Thread:
    def feed() -> None:
        for part in parts:
            _produce(stack, part)
            time.sleep(pause)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    return thread


def _restart_redis_empty(stack: LiveStack, down_seconds: float) -> EmbeddedRedis:
    """Stop Redis (no persistence: its data is gone) and start a new one on the same port."""
    port = stack.redis.port
    stack.redis.stop()
    time.sleep(down_seconds)
    fresh = EmbeddedRedis(port=port, log_path=stack.home / "redis-2.log")
    fresh.start()
    stack.redis = fresh
    return fresh


@contextmanager
def _restarted_redis(stack: LiveStack, down_seconds: float) -> Iterator[EmbeddedRedis]:
    """`_restart_redis_empty`, stopping the new server at the end (the fixture stops the old)."""
    fresh = _restart_redis_empty(stack, down_seconds)
    try:
        yield fresh
    finally:
        fresh.stop()


def _restart_broker_empty(stack: LiveStack) -> EmbeddedBroker:
    """Stop the memory-only broker (every topic, offset and changelog is lost); start anew."""
    port = stack.broker.port
    stack.broker.stop()
    fresh = EmbeddedBroker(port=port, log_path=stack.home / "broker-2.log")
    fresh.start()
    asyncio.run(ensure_topics(fresh.bootstrap, timeout=20))
    stack.broker = fresh
    return fresh


def _settle_to(stack: LiveStack, expected: list[dict[str, Any]], timeout: float) -> None:
    """Like `_settle`, against reports computed by the test (not from a file)."""
    deadline = time.monotonic() + timeout
    live: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        live = asyncio.run(_live(stack.redis.url))
        if live == expected:
            return
        time.sleep(1.0)
    pytest.fail(f"live != expected after {timeout}s: {_first_difference(live, expected)}")


async def _partition_status(redis_url: str) -> dict[int, dict[str, int]]:
    client = aioredis.from_url(redis_url)
    try:
        return await RedisStore(client).partition_status()
    finally:
        await client.aclose()


def _assert_every_input_accounted(stack: LiveStack, lines: list[bytes]) -> None:
    """One outcome (processed, duplicate, dead-lettered) per offset of every input
    partition up to its applied one, and one per non-blank line in all: nothing
    lost and nothing counted twice, whatever crashed or moved meanwhile."""
    rows = asyncio.run(_partition_status(stack.redis.url))
    outcomes = ("processed", "duplicates", "dead_lettered")
    for number, row in rows.items():
        assert sum(row.get(name, 0) for name in outcomes) == row["applied_offset"] + 1, (
            number,
            row,
        )
    produced = sum(1 for line in lines if decode_line(line) is not None)
    assert sum(row.get(name, 0) for row in rows.values() for name in outcomes) == produced


async def _read_topic(bootstrap: str, topic: str) -> list[bytes]:
    """Every value of `topic`, read to its end (high watermark from a fetch: right on Tansu)."""
    ends = await end_offsets(bootstrap, [topic])
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    values: list[bytes] = []
    try:
        partitions = [tp for tp, end in ends.items() if end > 0]
        if not partitions:
            return values
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                values.extend(r.value or b"" for r in records)
            positions = [await consumer.position(tp) for tp in partitions]
            if all(p >= ends[tp] for p, tp in zip(positions, partitions, strict=True)):
                break
    finally:
        await consumer.stop()
    return values


def _valid(lines: list[bytes]) -> list[bytes]:
    return [line for line in lines if isinstance(decode_line(line), Event)]


# --- crashes and rebalances -------------------------------------------------


def test_three_kill_9s_of_two_workers_mid_stream_give_replay(live_stack: LiveStack) -> None:
    """Repeated `kill -9` (no flush, no leave) while two workers share the stream."""
    lines = generate_stream(31, conversations=200)
    parts = [
        _write(live_stack.home / f"part-{i}.jsonl", p) for i, p in enumerate(_slices(lines, 4))
    ]
    workers = [live_stack.start_worker(index=0), live_stack.start_worker(index=1)]
    _produce(live_stack, parts[0])
    for kill, (victim, part) in enumerate(zip((0, 1, 0), parts[1:], strict=True)):
        time.sleep(3 + kill)  # mid-stream: processing, recovering or rebalancing
        live_stack.kill(workers[victim])
        _produce(live_stack, part)  # input arrives while the victim is down
        workers[victim] = live_stack.start_worker(index=victim)
    _settle(live_stack, lines)
    _assert_every_input_accounted(live_stack, lines)


def test_rebalance_storm_one_two_one_workers_while_producing(live_stack: LiveStack) -> None:
    """Scale 1 -> 2 -> 1 three times while input keeps arriving; partitions move each time."""
    lines = generate_stream(32, conversations=200)
    parts = [
        _write(live_stack.home / f"part-{i}.jsonl", p) for i, p in enumerate(_slices(lines, 8))
    ]
    live_stack.start_worker(index=0)
    feeder = _produce_in_background(live_stack, parts, pause=2.0)
    for cycle in range(3):
        time.sleep(4)
        live_stack.start_worker(index=cycle + 1)  # 1 -> 2
        time.sleep(6)
        live_stack.retire(1 if cycle % 2 == 0 else 0)  # 2 -> 1: newcomer, then veteran
    feeder.join(timeout=60)
    assert not feeder.is_alive()
    _settle(live_stack, lines)
    _assert_every_input_accounted(live_stack, lines)


# --- Redis ------------------------------------------------------------------


def test_redis_restarted_empty_is_rebuilt_by_resync(live_stack: LiveStack) -> None:
    """Redis loses everything; `resync` rebuilds it from the changelogs, idempotently.

    One conversation was dropped after retention (D4) before the restart: its
    cells lived only in Redis, so after the resync exactly they are missing
    (the documented limit), while the late event that came after the drop is
    kept (partition cells are in the changelog).
    """
    old, dropped_id = _dropped_conversation()
    lines = [*generate_stream(33, conversations=150), _late_for_old()]
    first = old + lines
    live_stack.start_worker()
    # the old conversation alone first, so a later event's clock drops it with all its
    # cells in its own snapshot (had the clock passed its retention before its close
    # arrived, the close's cells would go to the partition's cells, which resync keeps)
    _produce(live_stack, _write(live_stack.home / "old.jsonl", old))
    _settle(live_stack, old)
    _produce(live_stack, _write(live_stack.home / "first.jsonl", first[len(old) :]))
    _settle(live_stack, first)
    time.sleep(3)  # a gauge snapshot (with the clock) after the last batch
    live_stack.retire(0)  # resync runs with the workers stopped (README: Recovering)

    with _restarted_redis(live_stack, down_seconds=1.0) as fresh:
        assert asyncio.run(_partition_status(fresh.url)) == {}
        counts = asyncio.run(resync(live_stack.broker.bootstrap, fresh.url, APP_ID))
        assert counts.dropped == 1
        assert counts.conversations == len({_key(line) for line in first} - {None}) - 1
        _settle_to(live_stack, _expected_without(first, dropped_id), timeout=10)
        again = asyncio.run(resync(live_stack.broker.bootstrap, fresh.url, APP_ID))
        assert (again.conversations, again.partitions) == (0, 0)  # nothing older overwrites
        assert again.skipped == counts.conversations + counts.partitions
        _settle_to(live_stack, _expected_without(first, dropped_id), timeout=10)


def test_resync_refuses_an_unknown_app_id_with_one_line(live_stack: LiveStack) -> None:
    with pytest.raises(ResyncError) as refused:
        asyncio.run(resync(live_stack.broker.bootstrap, live_stack.redis.url, "no-such-app"))
    message = str(refused.value)
    assert "no topic no-such-app-conversations-changelog" in message
    assert "\n" not in message
    with pytest.raises(ResyncError, match="cannot reach Redis"):
        asyncio.run(resync(live_stack.broker.bootstrap, "redis://127.0.0.1:1/0", APP_ID))


def test_worker_keeps_running_through_a_redis_restart(live_stack: LiveStack) -> None:
    lines = generate_stream(34, conversations=60)
    half = len(lines) // 2
    live_stack.start_worker()
    _produce(live_stack, _write(live_stack.home / "first.jsonl", lines[:half]))
    _settle(live_stack, lines[:half])
    with _restarted_redis(live_stack, down_seconds=2.0) as fresh:
        time.sleep(3)
        assert live_stack.workers[0].poll() is None, live_stack.logs()
        asyncio.run(resync(live_stack.broker.bootstrap, fresh.url, APP_ID))
        _produce(live_stack, _write(live_stack.home / "second.jsonl", lines[half:]))
        _settle(live_stack, lines)


def test_snapshots_refused_by_redis_are_written_once_it_accepts_again(
    live_stack: LiveStack,
) -> None:
    """Redis refuses every write (maxmemory, its data kept) while half the input flows.

    The worker must keep running and processing, say so on /metrics, and once
    Redis accepts writes again the live report must equal replay's with no
    resync: the outbox held the latest snapshots.
    """
    lines = generate_stream(35, conversations=80)
    half = len(lines) // 2
    live_stack.start_worker()
    _produce(live_stack, _write(live_stack.home / "first.jsonl", lines[:half]))
    _settle(live_stack, lines[:half])
    admin = redis_sync.Redis.from_url(live_stack.redis.url)
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1)
    try:
        _produce(live_stack, _write(live_stack.home / "second.jsonl", lines[half:]))
        metrics = _wait_for_metrics(
            live_stack,
            lambda m: (
                m.get("livemetrics_redis_up") == 0.0
                and m.get("livemetrics_redis_pending_snapshots", 0.0) > 0
                and m.get("livemetrics_redis_write_failures_total", 0.0) >= 1
            ),
        )
        assert metrics["livemetrics_redis_discarded_snapshots_total"] == 0.0
        time.sleep(2)
        assert live_stack.workers[0].poll() is None, live_stack.logs()
        assert asyncio.run(_live(live_stack.redis.url)) != _expected(lines)  # still stale
    finally:
        admin.config_set("maxmemory", 0)
    _settle(live_stack, lines)
    metrics = _wait_for_metrics(live_stack, lambda m: m.get("livemetrics_redis_up") == 1.0)
    assert metrics["livemetrics_redis_pending_snapshots"] == 0.0
    assert "Redis write failed" in live_stack.logs()


def _wait_for_metrics(stack: LiveStack, ready: Any, timeout: float = 60.0) -> dict[str, float]:
    """The first worker's unlabelled samples once `ready(samples)` holds."""
    url = f"http://127.0.0.1:{stack.web_ports[0]}/metrics"
    deadline = time.monotonic() + timeout
    samples: dict[str, float] = {}
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
        except OSError:
            time.sleep(0.5)
            continue
        samples = {
            line.split(" ")[0]: float(line.split(" ")[1])
            for line in text.splitlines()
            if line and not line.startswith("#") and "{" not in line.split(" ")[0]
        }
        if ready(samples):
            return samples
        time.sleep(0.5)
    pytest.fail(f"/metrics never got ready: {samples}\n{stack.logs()}")


_OLD_TENANT = "initech"


def _dropped_conversation() -> tuple[list[bytes], str]:
    """A conversation closed on 2026-10-01: dropped once the clock passes 10-08 (D4)."""
    cid = "c-retention-dropped"
    base = {"tenant": _OLD_TENANT, "conversation_id": cid}
    events = [
        {"type": "conversation.started", "ts": "2026-10-01T09:00:00Z", "channel": "chat",
         "direction": "inbound", "customer_id": "cust-old"},
        {"type": "message.sent", "ts": "2026-10-01T09:00:10Z", "sender": "customer"},
        {"type": "conversation.assigned", "ts": "2026-10-01T09:00:20Z", "agent_id": "ag-old",
         "via": "routing"},
        {"type": "message.sent", "ts": "2026-10-01T09:01:00Z", "sender": "agent",
         "agent_id": "ag-old"},
        {"type": "conversation.resolved", "ts": "2026-10-01T09:05:00Z", "agent_id": "ag-old"},
        {"type": "conversation.closed", "ts": "2026-10-01T09:06:00Z"},
    ]  # fmt: skip
    return [
        orjson.dumps({"event_id": f"old-{i}", **base, **event}) for i, event in enumerate(events)
    ], cid


def _late_for_old() -> bytes:
    return orjson.dumps(
        {
            "event_id": "old-late",
            "type": "conversation.rated",
            "ts": "2026-10-02T10:00:00Z",
            "tenant": _OLD_TENANT,
            "conversation_id": "c-retention-dropped",
            "survey": "csat",
            "score": 5,
        }
    )


def _key(line: bytes) -> tuple[str, str] | None:
    item = decode_line(line)
    if isinstance(item, Event) and item.conversation_id is not None:
        return (item.tenant, item.conversation_id)
    return None


def _expected_without(lines: list[bytes], dropped_id: str) -> list[dict[str, Any]]:
    """Replay's reports minus the cells a dropped conversation had while it was kept.

    Those cells always carry the conversation's channel; what arrives after the
    drop counts `late_events` with tenant and conversation only (D4).
    """
    result = replay_lines(lines, _config())
    conversation, channel = DIM_INDEX["conversation"], DIM_INDEX["channel"]

    def kept(item: tuple[Any, Any]) -> bool:
        dims = item[0][2]
        return not (dims[conversation] == dropped_id and dims[channel] is not None)

    attributes = {k: v for k, v in result.store.attributes.items() if k[1] != dropped_id}
    return [
        build_report(
            filter(kept, result.store.items()), attributes, _config(), query, result.now_us
        )
        for query in QUERIES
    ]


# --- the embedded broker ----------------------------------------------------


def test_broker_restart_is_recovered_by_restarting_workers_and_reproducing(
    live_stack: LiveStack,
) -> None:
    """Memory-only broker: a restart loses topics, offsets and changelogs (not Redis).

    The documented recovery: restart the workers (their state came from the lost
    changelogs), then publish the source data again; the report is replay's. The
    worker goes down with the broker here (as under `livemetrics up`): one left
    running reconnects and can auto-create the input topics with the broker's default
    partition count before they are declared (seen: chat.agent-status with 4).
    A running worker noticing the restart is `test_running_worker_notices_...`.
    """
    before = generate_stream(35, conversations=60)
    after = generate_stream(36, conversations=60)
    live_stack.start_worker(index=0)
    _produce(live_stack, _write(live_stack.home / "before.jsonl", before))
    _settle(live_stack, before)
    live_stack.kill(0)
    live_stack.forget(0)
    _restart_broker_empty(live_stack)
    assert asyncio.run(end_offsets(live_stack.broker.bootstrap, ["chat.events"])) == {
        TopicPartition("chat.events", n): 0 for n in range(6)
    }
    live_stack.start_worker(index=1)
    _produce(live_stack, _write(live_stack.home / "again.jsonl", before + after))
    _settle(live_stack, before + after)


def test_running_worker_notices_a_broker_restart(live_stack: LiveStack) -> None:
    before = generate_stream(37, conversations=60)
    after = generate_stream(38, conversations=60)
    live_stack.start_worker()
    _produce(live_stack, _write(live_stack.home / "before.jsonl", before))
    _settle(live_stack, before)
    _restart_broker_empty(live_stack)
    _produce(live_stack, _write(live_stack.home / "after.jsonl", after))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        worker = live_stack.workers[0]
        if worker.poll() is not None:  # exited: it must say why
            log = live_stack.logs().lower()
            assert worker.returncode != 0
            assert "broker" in log and "offset" in log, live_stack.logs()
            return
        if asyncio.run(_live(live_stack.redis.url)) == _replay_reports(before + after):
            return  # or it noticed and processed the new input
        time.sleep(2)
    pytest.fail("the worker neither processed the new input nor exited with a reason")


def _replay_reports(lines: list[bytes]) -> list[dict[str, Any]]:
    result = replay_lines(lines, _config())
    return [result.report(_config(), query) for query in QUERIES]


def test_worker_reconnects_after_the_broker_was_unreachable(live_stack: LiveStack) -> None:
    """The broker frozen (SIGSTOP: a network partition, data kept) for longer than the
    session timeout; once it answers again the worker carries on, nothing lost twice."""
    lines = generate_stream(39, conversations=100)
    half = len(lines) // 2
    live_stack.start_worker()
    _produce(live_stack, _write(live_stack.home / "first.jsonl", lines[:half]))
    _settle(live_stack, lines[:half])
    broker_pid = live_stack.broker.pid
    assert broker_pid is not None
    os.killpg(broker_pid, signal.SIGSTOP)
    try:
        time.sleep(15)
        assert live_stack.workers[0].poll() is None, live_stack.logs()  # neither dead nor stuck
    finally:
        os.killpg(broker_pid, signal.SIGCONT)
    _produce(live_stack, _write(live_stack.home / "second.jsonl", lines[half:]))
    _settle(live_stack, lines)


# --- bad input storms and accounting -----------------------------------------


def test_storm_of_duplicates_out_of_order_and_late_events_gives_replay(
    live_stack: LiveStack,
) -> None:
    """Heavy duplicate, late and chaotic traffic, conversations reshuffled, then replayed
    copies of a third of it in random order: every copy is counted once as a duplicate."""
    lines = generate_stream(
        40, conversations=150, duplicate_rate=0.25, late_rate=0.25, chaotic_rate=0.25
    )
    lines = reorder_conversations(lines, seed=40)
    rng = random.Random(40)
    copies = rng.sample(_valid(lines), len(lines) // 3)
    copies += rng.sample(copies, len(copies) // 2)  # some copied twice
    rng.shuffle(copies)  # out of order within each conversation too
    live_stack.start_worker(index=0)
    live_stack.start_worker(index=1)
    _produce(live_stack, _write(live_stack.home / "storm.jsonl", lines))
    _produce(live_stack, _write(live_stack.home / "copies.jsonl", copies))
    _settle(live_stack, lines + copies)
    report = _replay_reports(lines + copies)[0]
    assert sum(r["late_events"] for r in report["rows"]) > 50
    assert sum(r["duplicate_events"] for r in report["rows"]) > len(copies)


def test_every_input_is_accounted_for(live_stack: LiveStack) -> None:
    """Each input has exactly one outcome (processed, duplicate or dead-lettered, as
    `LiveProcessor` counts them per partition): the outcomes add up to what was
    produced, per input topic; duplicates and dead letters are what replay counts;
    one DLQ message per bad input, with its reason and original bytes."""
    lines = generate_stream(41, conversations=120, invalid_rate=0.05, duplicate_rate=0.05)
    garbage = [
        b"\xff\xfe not utf-8 \x80",
        b"{" * 10_000,
        b'{"event_id": "big", "type": "message.sent", "text": "' + b"x" * (1 << 20) + b'"}',
        b"[]",
        b'{"event_id": "e-str-ts", "type": "conversation.closed", "ts": 12, "tenant": "acme"}',
    ]
    lines = lines + garbage
    path = _write(live_stack.home / "events.jsonl", lines)
    live_stack.start_worker()
    produced: ProduceCounts = asyncio.run(produce_file(live_stack.broker.bootstrap, path))
    _settle(live_stack, lines)

    status = asyncio.run(_partition_status(live_stack.redis.url))
    events = [c for n, c in status.items() if n < STATUS_BASE]
    presence = [c for n, c in status.items() if n >= STATUS_BASE]

    def total(rows: list[dict[str, int]], name: str) -> int:
        return sum(row.get(name, 0) for row in rows)

    outcomes = ("processed", "duplicates", "dead_lettered")
    assert sum(total(events, name) for name in outcomes) == produced.events
    assert sum(total(presence, name) for name in outcomes) == produced.status
    for row in events + presence:  # per partition: every offset up to the applied one
        assert sum(row.get(name, 0) for name in outcomes) == row["applied_offset"] + 1
    report = _replay_reports(lines)[0]["rows"]
    invalid = sum(r["invalid_events"] for r in report)
    duplicates = sum(r["duplicate_events"] for r in report)
    assert total(events + presence, "dead_lettered") == invalid
    assert total(events + presence, "duplicates") == duplicates
    blank = sum(1 for line in lines if decode_line(line) is None)
    assert produced.events + produced.status + blank == len(lines)

    dlq = asyncio.run(_read_topic(live_stack.broker.bootstrap, DLQ))
    assert len(dlq) == invalid  # no crash in this test: each dead letter exactly once
    bad_inputs = {line for line in lines if isinstance(decode_line(line), Rejection)}
    for letter in map(orjson.loads, dlq):
        assert letter["reason"]
        original = base64.b64decode(letter["original"])
        assert len(original) <= DLQ_ORIGINAL_LIMIT
        if letter["truncated"]:
            assert any(
                line.startswith(original) and len(line) == letter["original_bytes"]
                for line in bad_inputs
            )
        else:
            assert original in bad_inputs
