"""Live pipeline benchmark: seven figures side by side, in one run, on the embedded stack.

    .venv/bin/python bench/pipeline.py [--events N] [--quick] [--output FILE]

Issue "Benchmarks: at least 50k events/s per worker". Everything runs on this
machine: the Tansu broker (memory only), redis-server and the processes below,
each on a free 127.0.0.1 port, all stopped at the end (also on errors and
Ctrl-C). Prints one JSON document (see bench/README.md for every field):

(a) raw aiokafka + orjson consume of the N pre-produced `chat.events` (ceiling);
(b) a naive Faust agent (`bench/naive_faust.py`), one table write per event;
(c) `livemetrics worker`, every sink on, from the first applied offset to the last;
(d) produce -> visible in Redis, p50/p99, at 70 % of (c);
(e) `replay_lines` in-process on the same N events;
(f) memory per open conversation, worker RSS and Redis `used_memory`, on a fresh stack;
(g) `kill -9` of the worker under load -> restarted and caught up (lag 0).

Rates are "events handled after the first observation / seconds since it", so
process start, group joins and table recovery are outside (a)-(c); (g) is the
figure that includes them. The input is `generate_stream` traffic (invalid
lines and duplicates included; presence lines left out, so every figure counts
the same `chat.events` messages). Later phases reuse it as "rounds": ids
suffixed and times shifted by whole weeks, so each round is new traffic that
follows the previous one in event time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import urllib.request
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from livemetrics.config import Config, parse_config
from livemetrics.engine.state import OPEN, conversation_to_list
from livemetrics.events import format_ts, parse_ts
from livemetrics.kafka_admin import end_offsets, ensure_topics, partition_lag, topic_partitions
from livemetrics.produce import EVENTS_TOPIC, produce_file, route_line
from livemetrics.replay import replay_lines
from livemetrics.simulate.streams import STREAM_CONFIG, generate_stream
from livemetrics.sinks.redis_store import ConversationSnapshot, RedisStore, encode_conversation
from livemetrics.stack.broker import EmbeddedBroker
from livemetrics.stack.ports import free_port, spawn_in_group, stop_group
from livemetrics.stack.redis_server import EmbeddedRedis
from livemetrics.stack.up import EMBEDDED_SESSION_TIMEOUT
from livemetrics.stream.processor import PARTITION_KEY_PREFIX, LiveProcessor
from livemetrics.stream.settings import WorkerSettings

BENCH_DIR = Path(__file__).resolve().parent
ISSUE = "Benchmarks: at least 50k events/s per worker"
QUICK_EVENTS = 20_000
DEFAULT_EVENTS = 200_000
LATENCY_LOAD = 0.70  # (d) runs at this fraction of (c)
PROBE_TENANT = "acme"
PROBE_EVERY = 0.02  # seconds between two latency probes
PROBE_WARMUP = 1.0  # no probe in the first second of (d)
POLL = 0.02  # seconds between two reads of the applied offsets
TICK = 0.005  # paced producer step
KILL_AFTER = 1.0  # (g): seconds of paced load before kill -9
LOAD_AFTER_KILL = 2.0  # (g): seconds of paced load after it (the backlog)
SETTLE = 1.5  # (f): idle seconds before reading RSS / used_memory
WARMUP_EVENTS = 3000  # (f): events the fresh worker handles before the first reading
MIN_RATE = 100  # events/s any phase's timeout still allows
SIZE_SAMPLE = 2000  # (f): conversations the in-process sizes are taken over
WORKER_BATCH = WorkerSettings().batch_size  # the worker's take_events batch
DAY_US = 86_400_000_000
WEEK_US = 7 * DAY_US
KIB = 1024

# (figure, field, comparison, target, unit) from the issue
TARGETS: tuple[tuple[str, str, str, float, str], ...] = (
    ("c_worker", "events_per_second", ">=", 50_000, "events/s per worker"),
    ("d_latency", "p99_ms", "<=", 250, "ms produce -> visible in Redis"),
    ("e_replay", "events_per_second", ">=", 150_000, "events/s"),
    ("f_memory", "worker_bytes_per_open_conversation", "<=", KIB, "bytes"),
    ("f_memory", "redis_bytes_per_open_conversation", "<=", 300, "bytes"),
    ("g_recovery", "kill_to_caught_up_seconds", "<=", 10, "s"),
)


class BenchError(RuntimeError):
    """A phase could not produce its figure; the message is one line."""


def say(message: str) -> None:
    print(f"[pipeline] {message}", file=sys.stderr, flush=True)


# --- processes ------------------------------------------------------------------------


class Stoppable(Protocol):
    def stop(self) -> None: ...


@dataclass
class WorkerProcess:
    """One `livemetrics worker` subprocess in its own process group."""

    process: subprocess.Popen[bytes]
    app_id: str
    web_port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        stop_group(self.process, grace=10)

    def kill9(self) -> None:
        """`kill -9` of the whole group: no flush, no commit, no goodbye to the group."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            raise BenchError(f"worker exited with code {code}; see {self.log_path}")

    def rss_bytes(self) -> int:
        """VmRSS of the worker process, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * KIB
        raise BenchError(f"no VmRSS in /proc/{self.pid}/status")


@dataclass
class Processes:
    """Everything this run started; `stop_all` ends it in reverse order, even after errors."""

    home: Path
    config_path: Path
    started: list[Stoppable] = field(default_factory=list)

    def broker(self, name: str) -> EmbeddedBroker:
        broker = EmbeddedBroker(log_path=self.home / f"{name}.log")
        self.started.append(broker)
        broker.start()
        return broker

    def redis(self, name: str) -> EmbeddedRedis:
        server = EmbeddedRedis(log_path=self.home / f"{name}.log")
        self.started.append(server)
        server.start()
        return server

    def worker(self, bootstrap: str, redis_url: str, app_id: str, name: str) -> WorkerProcess:
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "livemetrics.cli",
            "worker",
            "--bootstrap",
            bootstrap,
            "--redis-url",
            redis_url,
            "--config",
            str(self.config_path),
            "--app-id",
            app_id,
            "--web-port",
            str(port),
            "--data-dir",
            str(self.home / app_id),
            # as `livemetrics up` runs it on the embedded broker (figure (g))
            "--session-timeout",
            str(EMBEDDED_SESSION_TIMEOUT),
            "--loglevel",
            os.environ.get("LIVEMETRICS_LOGLEVEL", "warning"),
        ]
        log_path = self.home / f"{name}.log"
        worker = WorkerProcess(spawn_in_group(argv, log_path, _child_env()), app_id, port, log_path)
        self.started.append(worker)
        return worker

    def spawn(self, argv: Sequence[str], name: str) -> GroupProcess:
        started = GroupProcess(spawn_in_group(argv, self.home / f"{name}.log", _child_env()))
        self.started.append(started)
        return started

    def stop(self, item: Stoppable) -> None:
        item.stop()
        with contextlib.suppress(ValueError):
            self.started.remove(item)

    def stop_all(self) -> None:
        while self.started:
            item = self.started.pop()
            try:
                item.stop()
            except Exception as exc:  # keep stopping the others
                say(f"stopping {type(item).__name__}: {exc}")


@dataclass
class GroupProcess:
    """Any other subprocess, in its own process group."""

    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        stop_group(self.process, grace=10)


def _child_env() -> dict[str, str]:
    """Our environment without LIVEMETRICS_* (an API token would lock /metrics, etc.)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("LIVEMETRICS_")}


# --- streams ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One `chat.events` message ready to send; `ts_us` when the line has a valid `ts`."""

    key: bytes | None
    value: bytes
    partition: int
    ts_us: int | None


class Partitioner:
    """The partition `produce_file` (aiokafka's default, murmur2) gives a key."""

    def __init__(self, partitions: int) -> None:
        self.all = list(range(partitions))
        self._default = DefaultPartitioner()
        self._cache: dict[bytes, int] = {}
        self._unkeyed = itertools.count()

    def __call__(self, key: bytes | None) -> int:
        if key is None:
            return self.all[next(self._unkeyed) % len(self.all)]
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = int(self._default(key, self.all, self.all))
        return found


def input_lines(events: int, seed: int) -> list[bytes]:
    """Exactly `events` non-blank `chat.events` lines of generated traffic (a prefix in time)."""
    conversations = events // 16 + 10
    while True:
        lines = [
            line
            for line in generate_stream(seed, conversations=conversations)
            if line.strip() and route_line(line)[0] == EVENTS_TOPIC
        ]
        if len(lines) >= events:
            return lines[:events]
        conversations = conversations * 5 // 4 + 10


def round_shift(lines: Sequence[bytes]) -> int:
    """Whole weeks longer than the stream's span: round r + 1 starts after round r ends."""
    stamps = [ts for ts in map(_line_ts, lines) if ts is not None]
    if not stamps:
        return WEEK_US
    return WEEK_US * math.ceil((max(stamps) - min(stamps) + DAY_US) / WEEK_US)


def _line_ts(line: bytes) -> int | None:
    try:
        obj = orjson.loads(line)
        if isinstance(obj, dict) and isinstance(obj.get("ts"), str):
            return parse_ts(obj["ts"])
    except (orjson.JSONDecodeError, ValueError):
        pass
    return None


def rewrite(line: bytes, suffix: str, shift_us: int, partition_of: Partitioner) -> Record:
    """`line` as new traffic: conversation id + `suffix`, `ts` + `shift_us`; invalid lines kept."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return Record(None, line, partition_of(None), None)
    if not isinstance(obj, dict):
        return Record(None, line, partition_of(None), None)
    conversation = obj.get("conversation_id")
    key = None
    if isinstance(conversation, str) and conversation:
        obj["conversation_id"] = conversation + suffix
        key = obj["conversation_id"].encode()
    ts_us = None
    if isinstance(obj.get("ts"), str):
        with contextlib.suppress(ValueError):
            ts_us = parse_ts(obj["ts"]) + shift_us
            obj["ts"] = format_ts(ts_us)
    return Record(key, orjson.dumps(obj), partition_of(key), ts_us)


class RoundSource:
    """Endless new traffic: round 1, 2, ... of `lines`, each a week-multiple later in event time."""

    def __init__(self, lines: Sequence[bytes], shift_us: int, partition_of: Partitioner) -> None:
        self._records = self._rounds(lines, shift_us, partition_of)

    @staticmethod
    def _rounds(
        lines: Sequence[bytes], shift_us: int, partition_of: Partitioner
    ) -> Iterator[Record]:
        for number in itertools.count(1):
            for line in lines:
                yield rewrite(line, f"~r{number}", number * shift_us, partition_of)

    def take(self, count: int) -> list[Record]:
        return list(itertools.islice(self._records, count))


def open_halves(lines: Sequence[bytes]) -> list[bytes]:
    """Each conversation of `lines` cut halfway to its first resolve or close: all stay open.

    Halfway, because a live contact centre's open conversations are on average
    half done; lines without a conversation are left out.
    """
    ended: set[tuple[str, str]] = set()
    before_end: list[tuple[tuple[str, str], bytes]] = []
    for line in lines:
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("conversation_id"), str):
            continue
        key = (str(obj.get("tenant")), obj["conversation_id"])
        if key in ended:
            continue
        if obj.get("type") in ("conversation.resolved", "conversation.closed"):
            ended.add(key)
            continue
        before_end.append((key, line))
    total: dict[tuple[str, str], int] = {}
    for key, _ in before_end:
        total[key] = total.get(key, 0) + 1
    taken: dict[tuple[str, str], int] = {}
    kept = []
    for key, line in before_end:
        if taken.get(key, 0) < math.ceil(total[key] / 2):
            taken[key] = taken.get(key, 0) + 1
            kept.append(line)
    return kept


def write_jsonl(path: Path, values: Sequence[bytes]) -> Path:
    path.write_bytes(b"".join(value + b"\n" for value in values))
    return path


# --- progress of the worker -------------------------------------------------------------


async def events_end(bootstrap: str) -> dict[int, int]:
    """Log end offset of every `chat.events` partition (fetch high watermark: right on Tansu)."""
    ends = await end_offsets(bootstrap, [EVENTS_TOPIC])
    return {tp.partition: offset for tp, offset in ends.items()}


async def applied_offsets(store: RedisStore) -> dict[int, int]:
    """Applied offset per `chat.events` partition, as the worker wrote it to Redis."""
    status = await store.partition_status()
    return {p: s.get("applied_offset", -1) for p, s in status.items() if p < 1000}


def applied_count(applied: dict[int, int]) -> int:
    return sum(offset + 1 for offset in applied.values())


def behind(applied: dict[int, int], end: dict[int, int]) -> int:
    return sum(max(0, offset - 1 - applied.get(p, -1)) for p, offset in end.items())


async def wait_applied(
    store: RedisStore, end: dict[int, int], worker: WorkerProcess, timeout: float
) -> float:
    """perf_counter() when the worker has applied every offset below `end`."""
    deadline = time.monotonic() + timeout
    while True:
        applied = await applied_offsets(store)
        if behind(applied, end) == 0:
            return time.perf_counter()
        worker.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"worker {behind(applied, end)} events behind after {timeout:g} s")
        await asyncio.sleep(POLL)


async def redis_used_memory(client: aioredis.Redis) -> int:
    info = await client.info("memory")
    return int(info["used_memory"])


def scrape(port: int) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        body: bytes = response.read()
    return body


# --- (a) raw consume ----------------------------------------------------------------------


async def raw_consume(bootstrap: str, events: int, timeout: float) -> dict[str, Any]:
    """(a) One group-less aiokafka consumer from the start, `orjson.loads` of every value."""
    count = (await topic_partitions(bootstrap, [EVENTS_TOPIC]))[EVENTS_TOPIC]
    partitions = [TopicPartition(EVENTS_TOPIC, p) for p in range(count)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen, invalid, first_batch, started = 0, 0, 0, 0.0
        deadline = time.monotonic() + timeout
        while seen < events:
            if time.monotonic() > deadline:
                raise BenchError(f"raw consumer saw {seen} of {events} events in {timeout:g} s")
            batches = await consumer.getmany(timeout_ms=500, max_records=1000)
            for records in batches.values():
                for record in records:
                    seen += 1
                    try:
                        orjson.loads(record.value or b"")
                    except orjson.JSONDecodeError:
                        invalid += 1
            if seen and not started:
                first_batch, started = seen, time.perf_counter()
        elapsed = time.perf_counter() - started
    finally:
        await consumer.stop()
    return {
        "events_per_second": _rate(seen - first_batch, elapsed),
        "events": seen,
        "not_json": invalid,
    }


# --- (b) naive Faust --------------------------------------------------------------------


async def naive_faust(procs: Processes, bootstrap: str, events: int) -> dict[str, Any]:
    """(b) `bench/naive_faust.py` as a subprocess; it reports its first and last event times."""
    result = procs.home / "naive-result.json"
    app_id = f"bench-naive-{os.getpid()}-{int(time.time())}"
    argv = [
        sys.executable,
        str(BENCH_DIR / "naive_faust.py"),
        "--bootstrap",
        bootstrap,
        "--events",
        str(events),
        "--result",
        str(result),
        "--app-id",
        app_id,
        "--data-dir",
        str(procs.home / app_id),
    ]
    naive = procs.spawn(argv, "naive-faust")
    timeout = 60 + events / MIN_RATE
    deadline = time.monotonic() + timeout
    try:
        while not result.exists():
            if naive.process.poll() is not None:
                raise BenchError(f"naive Faust exited with code {naive.process.returncode}")
            if time.monotonic() > deadline:
                raise BenchError(f"naive Faust did not see {events} events in {timeout:g} s")
            await asyncio.sleep(0.1)
    finally:
        procs.stop(naive)
    found = orjson.loads(result.read_bytes())
    return {"events_per_second": _rate(found["events"] - 1, found["last"] - found["first"])}


# --- (c) the worker -----------------------------------------------------------------------


async def worker_throughput(
    worker: WorkerProcess, store: RedisStore, end: dict[int, int], timeout: float
) -> dict[str, Any]:
    """(c) From the first applied offset seen in Redis to the last, polled every POLL s."""
    spawned = time.perf_counter()
    total = sum(end.values())
    deadline = time.monotonic() + timeout
    first_seen, first_count = 0.0, 0
    while True:
        applied = await applied_offsets(store)
        now = time.perf_counter()
        if not first_seen and applied_count(applied) > 0:
            first_seen, first_count = now, applied_count(applied)
        if behind(applied, end) == 0:
            break
        worker.check_alive()
        if time.monotonic() > deadline:
            raise BenchError(f"worker applied {applied_count(applied)} of {total} in {timeout:g} s")
        await asyncio.sleep(POLL)
    if first_count >= total:
        raise BenchError("worker applied everything before the first poll: use more --events")
    body = await asyncio.to_thread(scrape, worker.web_port)
    return {
        "events_per_second": _rate(total - first_count, now - first_seen),
        "events_timed": total - first_count,
        "start_to_first_applied_seconds": round(first_seen - spawned, 2),
        "prometheus_scrape_bytes": len(body),
        "rss_mib_after": round(worker.rss_bytes() / KIB / KIB, 1),
    }


# --- (d) latency ------------------------------------------------------------------------


class Probes:
    """Tagged events (a new conversation each) and the time their blob shows in `lm:{t}:c`."""

    def __init__(self, client: aioredis.Redis, partition_of: Partitioner) -> None:
        self._client = client
        self._hash = RedisStore(client).keys.conversations(PROBE_TENANT)
        self._partition_of = partition_of
        self._prefix = f"bench-probe-{os.getpid()}-{int(time.time())}-"
        self._numbers = itertools.count()
        self.pending: dict[str, float] = {}
        self.latencies: list[float] = []

    def make(self, ts_us: int) -> tuple[str, Record]:
        conversation = f"{self._prefix}{next(self._numbers)}"
        value = orjson.dumps(
            {
                "event_id": f"{conversation}-start",
                "type": "conversation.started",
                "ts": format_ts(ts_us),
                "tenant": PROBE_TENANT,
                "conversation_id": conversation,
                "channel": "chat",
                "direction": "inbound",
                "customer_id": "bench-probe",
            }
        )
        key = conversation.encode()
        return conversation, Record(key, value, self._partition_of(key), ts_us)

    async def watch(self, stop: asyncio.Event) -> None:
        """Poll Redis for pending probes until `stop` is set and none is pending."""
        while not (stop.is_set() and not self.pending):
            if self.pending:
                ids = list(self.pending)
                blobs = await self._client.hmget(self._hash, ids)
                now = time.perf_counter()
                for conversation, blob in zip(ids, blobs, strict=True):
                    if blob is not None:
                        self.latencies.append(now - self.pending.pop(conversation))
            await asyncio.sleep(TICK)


async def paced_produce(
    bootstrap: str,
    records: Sequence[Record],
    rate: float,
    duration: float,
    probes: Probes | None = None,
) -> int:
    """Send `records` at `rate`/s for `duration` s, a probe every PROBE_EVERY s; acked on return.

    One batch per partition per TICK, as `produce_file` fills them: aiokafka's
    per-message `send` would cost the producer more CPU than the worker's share.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=False, linger_ms=0
    )
    await producer.start()
    sent_futures: deque[asyncio.Future[Any]] = deque()
    sent = 0
    try:
        started = time.perf_counter()
        next_probe = started + PROBE_WARMUP
        last_ts = next((r.ts_us for r in records if r.ts_us is not None), 0)
        while (now := time.perf_counter()) - started < duration:
            due = min(int(rate * (now - started)), len(records))
            tick = list(records[sent:due])
            sent = max(sent, due)
            last_ts = next((r.ts_us for r in reversed(tick) if r.ts_us is not None), last_ts)
            if probes is not None and now >= next_probe:
                next_probe += PROBE_EVERY
                conversation, probe = probes.make(last_ts)
                tick.append(probe)
                probes.pending[conversation] = time.perf_counter()
            await _send_tick(producer, tick, sent_futures)
            if due >= len(records):
                raise BenchError(f"paced producer ran out of records after {sent}")
            await asyncio.sleep(TICK)
        await asyncio.gather(*sent_futures)
    finally:
        await producer.stop()
    return sent


async def _send_tick(
    producer: AIOKafkaProducer, tick: Sequence[Record], sent: deque[asyncio.Future[Any]]
) -> None:
    batches: dict[int, Any] = {}
    for record in tick:
        batch = batches.get(record.partition)
        if batch is None:
            batch = batches[record.partition] = producer.create_batch()
        if batch.append(key=record.key, value=record.value, timestamp=None) is None:
            sent.append(await producer.send_batch(batch, EVENTS_TOPIC, partition=record.partition))
            batch = batches[record.partition] = producer.create_batch()
            batch.append(key=record.key, value=record.value, timestamp=None)
    for partition, batch in batches.items():
        sent.append(await producer.send_batch(batch, EVENTS_TOPIC, partition=partition))
    while sent and sent[0].done():
        sent.popleft().result()


async def latency(
    bootstrap: str,
    client: aioredis.Redis,
    source: RoundSource,
    partition_of: Partitioner,
    rate: float,
    duration: float,
) -> dict[str, Any]:
    """(d) Paced load at `rate` with probes; p50/p99 of produce -> blob in Redis."""
    records = source.take(int(rate * (duration + 1)) + 1000)
    probes = Probes(client, partition_of)
    stop = asyncio.Event()
    watcher = asyncio.create_task(probes.watch(stop))
    try:
        sent = await paced_produce(bootstrap, records, rate, duration, probes)
        stop.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(watcher), timeout=20)
    finally:
        watcher.cancel()
    samples = sorted(probes.latencies)
    if len(samples) < 20:
        raise BenchError(f"only {len(samples)} latency probes seen")
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49] * 1000, 1),
        "p99_ms": round(cuts[98] * 1000, 1),
        "max_ms": round(samples[-1] * 1000, 1),
        "rate_target_events_per_second": round(rate),
        "rate_sent_events_per_second": round(sent / duration),
        "probes": len(samples),
        "probes_lost": len(probes.pending),
    }


# --- (e) replay -------------------------------------------------------------------------


def replay_speed(lines: Sequence[bytes], config: Config, repeat: int) -> dict[str, Any]:
    """(e) `replay_lines` in this process, best of `repeat`."""
    best = math.inf
    for _ in range(repeat):
        started = time.perf_counter()
        replay_lines(lines, config)
        best = min(best, time.perf_counter() - started)
    return {"events_per_second": _rate(len(lines), best), "repeat": repeat}


def processor_speed(lines: Sequence[bytes], config: Config) -> dict[str, Any]:
    """Context for (c): `LiveProcessor` alone, in this process, batches of the worker's size.

    What the worker would do with free sinks: (c) / this is the cost of Faust,
    Kafka and Redis around the same code; the messages per event are what the
    worker hands to Faust's producer.
    """
    processor = LiveProcessor(config)
    partition_of = Partitioner(6)
    offsets: dict[int, int] = {}
    messages = records = 0
    started = time.perf_counter()
    for start in range(0, len(lines), WORKER_BATCH):
        for line in lines[start : start + WORKER_BATCH]:
            key = route_line(line)[1]
            partition = partition_of(None if key is None else key.encode())
            offset = offsets[partition] = offsets.get(partition, -1) + 1
            processor.apply(EVENTS_TOPIC, partition, offset, line)
        flush = processor.flush()
        messages += len(flush.messages)
        records += len(flush.records)
    elapsed = time.perf_counter() - started
    return {
        "events_per_second": _rate(len(lines), elapsed),
        "topic_messages_per_event": round(messages / len(lines), 2),
        "table_records_per_event": round(records / len(lines), 3),
    }


# --- (f) memory -------------------------------------------------------------------------


def open_count(records: Sequence[Record], config: Config) -> int:
    """Open conversations at the end of `records`, by `replay`."""
    result = replay_lines([r.value for r in records], config)
    return sum(1 for c in result.engine.conversations.values() if c.status == OPEN)


def state_sizes(records: Sequence[Record], config: Config) -> dict[str, float]:
    """Bytes per open conversation in this process, over the first SIZE_SAMPLE conversations.

    `LiveProcessor` in worker-sized batches, the latest record per key kept in
    a dict as the worker's table keeps it: the Python heap both hold
    (tracemalloc), and serialised, the engine state (as replay_speed.py), the
    table record (state + cells + attributes, also what the changelog carries)
    and the Redis blob of `lm:{t}:c`.
    """
    sample = _first_conversations(records, SIZE_SAMPLE)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        processor, table = _table_after(sample, config)
        gc.collect()
        heap = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    conversations = processor.engine.conversations
    open_keys = [k for k, c in conversations.items() if c.status == OPEN]
    if not open_keys:
        raise BenchError("no open conversation in the (f) sample")
    state = [len(orjson.dumps(conversation_to_list(conversations[k]))) for k in open_keys]
    # the processor's table key: tenant, unit separator, conversation id
    rows = [len(table[f"{tenant}\x1f{cid}".encode()]) for tenant, cid in open_keys]
    blobs = [
        len(
            encode_conversation(
                ConversationSnapshot(
                    tenant,
                    cid,
                    processor.cells.get((tenant, cid), {}),
                    processor.attributes.get((tenant, cid)),
                    (processor.home[(tenant, cid)], processor.offsets[(tenant, cid)]),
                )
            )[0]
        )
        for tenant, cid in open_keys
    ]
    return {
        "heap": heap / len(open_keys),
        "state": statistics.fmean(state),
        "table_record": statistics.fmean(rows),
        "redis_blob": statistics.fmean(blobs),
        "sample": len(open_keys),
    }


def _first_conversations(records: Sequence[Record], count: int) -> list[Record]:
    """The records of the first `count` conversations (by key) to appear in `records`."""
    chosen: set[bytes] = set()
    sample = []
    for record in records:
        if record.key is None:
            continue
        if record.key not in chosen and len(chosen) < count:
            chosen.add(record.key)
        if record.key in chosen:
            sample.append(record)
    return sample


def _table_after(
    records: Sequence[Record], config: Config
) -> tuple[LiveProcessor, dict[bytes, bytes]]:
    """The processor after `records`, and its `conversations` table (latest value per key)."""
    processor = LiveProcessor(config)
    table: dict[bytes, bytes] = {}
    offsets: dict[int, int] = {}
    for start in range(0, len(records), WORKER_BATCH):
        for record in records[start : start + WORKER_BATCH]:
            offset = offsets[record.partition] = offsets.get(record.partition, -1) + 1
            processor.apply(EVENTS_TOPIC, record.partition, offset, record.value)
        for row in processor.flush().records:
            if row.table != "conversations" or row.key.startswith(PARTITION_KEY_PREFIX):
                continue
            if row.value is None:
                table.pop(row.key, None)
            else:
                table[row.key] = row.value
    return processor, table


@dataclass(frozen=True, slots=True)
class MemoryReading:
    open_conversations: int
    worker_rss: int
    redis_used: int


async def memory(
    procs: Processes, lines: Sequence[bytes], shift_us: int, config: Config, wanted: int
) -> dict[str, Any]:
    """(f) On a fresh stack: warm the worker up, then feed two legs of open conversations.

    The figures are the second leg's growth per conversation: the first leg
    also pays one-off growth (buffers reaching their high-water mark, which
    CPython does not hand back), the second mostly the state it adds. Both
    legs' readings are in the result.
    """
    partition_of = Partitioner(6)
    kept = open_halves(lines)

    def copy(number: int) -> list[Record]:
        return [rewrite(line, f"~o{number}", number * shift_us, partition_of) for line in kept]

    warmup, first = copy(0)[:WARMUP_EVENTS], copy(1)
    sizes = state_sizes(first, config)
    per_copy = max(1, open_count(first, config))
    count = max(2, math.ceil(wanted / per_copy))
    copies = [first, *(copy(n) for n in range(2, 1 + count))]
    legs = [copies[: count // 2], copies[count // 2 :]]
    broker = procs.broker("f-broker")
    redis_server = procs.redis("f-redis")
    await ensure_topics(broker.bootstrap, timeout=30)
    client = aioredis.from_url(redis_server.url)
    store = RedisStore(client)
    readings: list[MemoryReading] = []
    try:
        app_id = f"bench-f-{os.getpid()}-{int(time.time())}"
        worker = procs.worker(broker.bootstrap, redis_server.url, app_id, "f-worker")
        feeds = [warmup, *([r for records in leg for r in records] for leg in legs)]
        for number, feed in enumerate(feeds):
            path = procs.home / f"f-feed-{number}.jsonl"
            await _produce_records(broker.bootstrap, path, feed)
            timeout = 120 + len(feed) / MIN_RATE
            await wait_applied(store, await events_end(broker.bootstrap), worker, timeout)
            await asyncio.sleep(SETTLE)
            opened = per_copy * sum(len(leg) for leg in legs[:number])
            readings.append(
                MemoryReading(opened, worker.rss_bytes(), await redis_used_memory(client))
            )
    finally:
        await client.aclose()
    _, middle, last = readings
    added = last.open_conversations - middle.open_conversations
    return {
        "worker_bytes_per_open_conversation": round((last.worker_rss - middle.worker_rss) / added),
        "redis_bytes_per_open_conversation": round((last.redis_used - middle.redis_used) / added),
        "processor_heap_bytes_per_open_conversation": round(sizes["heap"]),
        "state_bytes_per_open_conversation": round(sizes["state"]),
        "table_record_bytes_per_open_conversation": round(sizes["table_record"]),
        "redis_blob_bytes_per_open_conversation": round(sizes["redis_blob"]),
        "in_process_sample": round(sizes["sample"]),
        "open_conversations_per_leg": [middle.open_conversations, added],
        "events": sum(len(feed) for feed in feeds[1:]),
        "worker_rss_mib": [round(r.worker_rss / KIB / KIB, 1) for r in readings],
        "redis_used_mib": [round(r.redis_used / KIB / KIB, 2) for r in readings],
    }


async def _produce_records(bootstrap: str, path: Path, records: Sequence[Record]) -> None:
    await produce_file(bootstrap, write_jsonl(path, [r.value for r in records]))


# --- (g) kill -9 ------------------------------------------------------------------------


async def recovery(
    procs: Processes,
    worker: WorkerProcess,
    bootstrap: str,
    redis_url: str,
    store: RedisStore,
    source: RoundSource,
    rate: float,
) -> dict[str, Any]:
    """(g) Paced load; kill -9 after KILL_AFTER s, restart at once (same app id), load goes on
    LOAD_AFTER_KILL s; time from the kill until every offset is applied and the group's lag is 0."""
    records = source.take(int(rate * (KILL_AFTER + LOAD_AFTER_KILL + 1)) + 1000)
    load = asyncio.create_task(
        paced_produce(bootstrap, records, rate, KILL_AFTER + LOAD_AFTER_KILL)
    )
    try:
        return await _kill_and_catch_up(procs, worker, bootstrap, redis_url, store, load, rate)
    finally:
        load.cancel()


async def _kill_and_catch_up(
    procs: Processes,
    worker: WorkerProcess,
    bootstrap: str,
    redis_url: str,
    store: RedisStore,
    load: asyncio.Task[int],
    rate: float,
) -> dict[str, Any]:
    """The timed part of (g), while `load` runs; caught up = all applied, then lag 0."""
    await asyncio.sleep(KILL_AFTER)
    killed_at = time.perf_counter()
    worker.kill9()
    procs.stop(worker)
    restarted = procs.worker(bootstrap, redis_url, worker.app_id, "worker-restarted")
    at_kill = await applied_offsets(store)  # the dead worker writes no more
    behind_at_kill = behind(at_kill, await events_end(bootstrap))
    first_progress = 0.0
    deadline = time.monotonic() + 180
    while True:
        applied = await applied_offsets(store)
        if not first_progress and applied_count(applied) > applied_count(at_kill):
            first_progress = time.perf_counter()
        if load.done() and behind(applied, await events_end(bootstrap)) == 0:
            break
        restarted.check_alive()
        if time.monotonic() > deadline:
            raise BenchError("restarted worker not caught up 180 s after the kill")
        await asyncio.sleep(POLL)
    await load  # raises if the load failed
    applied_at = time.perf_counter()
    while sum(lag.lag for lag in await partition_lag(bootstrap, worker.app_id, [EVENTS_TOPIC])):
        restarted.check_alive()
        if time.monotonic() > deadline:
            raise BenchError("restarted worker applied everything but its lag stays above 0")
        await asyncio.sleep(0.1)
    caught_up = time.perf_counter()
    return {
        "kill_to_caught_up_seconds": round(caught_up - killed_at, 2),
        "kill_to_all_applied_seconds": round(applied_at - killed_at, 2),
        "kill_to_first_progress_seconds": round(first_progress - killed_at, 2)
        if first_progress
        else None,
        "behind_at_kill": behind_at_kill,
        "load_events_per_second": round(rate),
    }


# --- the run ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    events: int
    quick: bool
    seed: int
    latency_seconds: float
    open_conversations: int
    replay_repeat: int
    output: Path | None
    loadavg_at_start: list[float]
    keep_logs: bool = False


def _rate(events: int, seconds: float) -> int:
    if events <= 0 or seconds <= 0:
        raise BenchError(f"cannot time {events} events in {seconds:.3f} s")
    return round(events / seconds)


async def _figure(
    name: str, figures: dict[str, Any], run: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any] | None:
    """Run one phase; on failure record its one-line error and let the others go on."""
    say(f"{name} ...")
    try:
        figures[name] = await run()
    except Exception as exc:
        figures[name] = {"error": f"{type(exc).__name__}: {exc}"}
        say(f"{name} failed: {figures[name]['error']}")
        return None
    say(f"{name}: {orjson.dumps(figures[name]).decode()}")
    return dict(figures[name])


async def run(options: Options, procs: Processes) -> dict[str, Any]:
    config = parse_config(STREAM_CONFIG)
    figures: dict[str, Any] = {}
    say(f"generating {options.events} events ...")
    lines = input_lines(options.events, options.seed)
    shift_us = round_shift(lines)

    async def replay_phase() -> dict[str, Any]:
        return replay_speed(lines, config, options.replay_repeat)

    await _figure("e_replay", figures, replay_phase)
    extra: dict[str, Any] = {}
    try:
        extra["live_processor_in_process"] = processor_speed(lines, config)
    except Exception as exc:
        extra["live_processor_in_process"] = {"error": f"{type(exc).__name__}: {exc}"}
    try:
        extra |= await _main_stack(options, procs, lines, shift_us, figures)
    except Exception as exc:  # the broker or Redis did not start, produce failed ...
        say(f"main stack failed: {type(exc).__name__}: {exc}")
        for name in ("a_raw_consume", "b_naive_faust", "c_worker", "d_latency", "g_recovery"):
            figures.setdefault(name, {"error": f"main stack: {type(exc).__name__}: {exc}"})

    async def memory_phase() -> dict[str, Any]:
        return await memory(procs, lines, shift_us, config, options.open_conversations)

    await _figure("f_memory", figures, memory_phase)
    return _report(options, figures, extra)


async def _main_stack(
    options: Options,
    procs: Processes,
    lines: list[bytes],
    shift_us: int,
    figures: dict[str, Any],
) -> dict[str, Any]:
    """(a), (b), (c), (d), (g) on one broker and Redis; stopped before (f) starts."""
    broker = procs.broker("broker")
    redis_server = procs.redis("redis")
    await ensure_topics(broker.bootstrap, timeout=30)
    started = time.perf_counter()
    await produce_file(broker.bootstrap, write_jsonl(procs.home / "events.jsonl", lines))
    produced = _rate(len(lines), time.perf_counter() - started)
    extra = {"produce_file_events_per_second": produced}
    end = await events_end(broker.bootstrap)
    if sum(end.values()) != len(lines):
        raise BenchError(f"chat.events holds {sum(end.values())} messages, produced {len(lines)}")
    n = len(lines)
    timeout = 60 + n / 1000  # a raw consumer does well over 1000/s
    await _figure("a_raw_consume", figures, lambda: raw_consume(broker.bootstrap, n, timeout))
    await _figure("b_naive_faust", figures, lambda: naive_faust(procs, broker.bootstrap, n))
    client = aioredis.from_url(redis_server.url)
    store = RedisStore(client)
    try:
        app_id = f"bench-worker-{os.getpid()}-{int(time.time())}"
        worker = procs.worker(broker.bootstrap, redis_server.url, app_id, "worker")
        found = await _figure(
            "c_worker", figures, lambda: worker_throughput(worker, store, end, 120 + n / MIN_RATE)
        )
        if found is None:
            figures["d_latency"] = figures["g_recovery"] = {"error": "skipped: (c) failed"}
            return extra
        rate = found["events_per_second"] * LATENCY_LOAD
        partition_of = Partitioner(len(end))
        source = RoundSource(lines, shift_us, partition_of)
        await _figure(
            "d_latency",
            figures,
            lambda: latency(
                broker.bootstrap, client, source, partition_of, rate, options.latency_seconds
            ),
        )
        await _figure(
            "g_recovery",
            figures,
            lambda: recovery(
                procs, worker, broker.bootstrap, redis_server.url, store, source, rate
            ),
        )
    finally:
        await client.aclose()
        procs.stop_all()
    return extra


def _report(options: Options, figures: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    def value(figure: str, name: str) -> float | None:
        found = figures.get(figure, {}).get(name)
        return found if isinstance(found, int | float) else None

    worker, raw, naive = (
        value(f, "events_per_second") for f in ("c_worker", "a_raw_consume", "b_naive_faust")
    )
    targets = []
    for figure, name, op, target, unit in TARGETS:
        got = value(figure, name)
        passed = None if got is None else (got >= target if op == ">=" else got <= target)
        targets.append(
            {
                "figure": figure,
                "field": name,
                "target": f"{op} {target:g} {unit}",
                "value": got,
                "pass": passed,
            }
        )
    return {
        "issue": ISSUE,
        "machine": {
            "nproc": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_at_start": options.loadavg_at_start,
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "events": options.events,
        "quick": options.quick,
        "seed": options.seed,
        "figures": dict(sorted(figures.items())),
        "ratios": {
            "c/a": round(worker / raw, 4) if worker and raw else None,
            "c/b": round(worker / naive, 4) if worker and naive else None,
        },
        "context": extra,
        "targets": targets,
        "all_pass": all(t["pass"] for t in targets),
    }


def parse_options(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--events", type=int, help=f"N (default {DEFAULT_EVENTS}, quick {QUICK_EVENTS})"
    )
    parser.add_argument("--quick", action="store_true", help="small N, short phases (smoke test)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-seconds", type=float, help="(d) duration (default 10, quick 5)")
    parser.add_argument(
        "--open-conversations",
        type=int,
        help="(f) open conversations measured (default 20000, quick 2000)",
    )
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    parser.add_argument(
        "--keep-logs",
        action="store_true",
        help="keep the temporary directory (worker and broker logs) after a clean run too",
    )
    args = parser.parse_args(argv)
    events = args.events or (QUICK_EVENTS if args.quick else DEFAULT_EVENTS)
    if events < 1000:
        parser.error("--events must be at least 1000")
    return Options(
        events=events,
        quick=args.quick,
        seed=args.seed,
        latency_seconds=args.latency_seconds or (5.0 if args.quick else 10.0),
        open_conversations=args.open_conversations or (2_000 if args.quick else 20_000),
        replay_repeat=1 if args.quick else 3,
        output=args.output,
        loadavg_at_start=[round(x, 2) for x in os.getloadavg()],
        keep_logs=args.keep_logs,
    )


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    signal.signal(signal.SIGTERM, _terminate)
    home = Path(tempfile.mkdtemp(prefix="lm-bench-"))
    config_path = home / "config.toml"
    config_path.write_text(STREAM_CONFIG)
    procs = Processes(home, config_path)
    try:
        report = asyncio.run(run(options, procs))
    except BaseException:
        say(f"logs kept in {home}")
        raise
    finally:
        procs.stop_all()
    if _errors(report) or options.keep_logs:
        say(f"logs kept in {home}")
        report["logs"] = str(home)
    else:
        shutil.rmtree(home, ignore_errors=True)
    text = orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()
    print(text)
    if options.output is not None:
        options.output.write_text(text + "\n")
    return 1 if _errors(report) else 0


def _errors(report: dict[str, Any]) -> list[str]:
    return [name for name, found in report["figures"].items() if "error" in found]


if __name__ == "__main__":
    raise SystemExit(main())
