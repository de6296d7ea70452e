"""Where `livemetrics worker` spends its time on a backlog: a py-spy profile plus counters.

    .venv/bin/python bench/profile_worker.py [--events N] [--rate HZ] [--no-profile]
                                             [--plain] [--whole] [--keep] [--top K]

Needs py-spy in the venv (`.venv/bin/pip install -e '.[bench]'`), the Tansu binary and
`redis-server` (what `scripts/dev test` installs). Steps:

1. an embedded broker and Redis on free ports, the manifest topics, N generated
   `chat.events` lines (`bench/pipeline.py` `input_lines`) produced up front;
2. one worker, `python -m livemetrics.cli worker ...` with `STREAM_CONFIG`. By
   default it starts through a small wrapper (written to the temp dir) that
   only adds counters: batch sizes and times, `_flush` / `LiveProcessor.flush` /
   `RedisStore.write` / `WorkerOutput.flush` / `_write_tables` wall time, messages and
   table records per topic, Faust's `wait_until_ebb` stalls, aiokafka `send`
   calls and produce requests (batches and records per request). `--plain`
   runs the bare CLI instead;
3. py-spy attaches (`record --pid --idle --threads --format raw`) once the
   worker has applied its first offset (Redis `lm:po`), so start-up, group join
   and recovery are outside the profile; `--whole` runs the worker under
   py-spy from the start instead. The rate is `bench/pipeline.py` figure (c):
   events after the first applied offset seen / seconds until every partition
   reaches the end offsets. py-spy gets SIGINT (it writes its file) at that
   moment; then the group's committed lag must reach 0 and the worker is
   stopped with SIGTERM;
4. the collapsed stacks of the worker's main thread are aggregated: self time
   per function, exclusive share per library (leaf frame), per asyncio task
   (the coroutine a sample runs under) and inclusive share of key frames,
   all as % of the main thread's samples (idle included: the loop waiting in
   `select` counts as idle). Then messages per input event from the broker's
   end offsets, Redis commands per batch (`INFO commandstats`) and the
   wrapper's counters.

Output goes to stdout (tables) and `<tmp>/profile.json`; the temp dir (with
`worker.raw`, the worker log and the counters) is printed and kept with
`--keep` or on errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as aioredis

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from pipeline import (  # noqa: E402  (bench/pipeline.py, next to this file)
    POLL,
    Processes,
    _child_env,
    applied_count,
    applied_offsets,
    behind,
    events_end,
    input_lines,
    write_jsonl,
)

from livemetrics.kafka_admin import end_offsets, ensure_topics, partition_lag  # noqa: E402
from livemetrics.produce import EVENTS_TOPIC, produce_file  # noqa: E402
from livemetrics.simulate.streams import STREAM_CONFIG  # noqa: E402
from livemetrics.sinks.redis_store import RedisStore  # noqa: E402
from livemetrics.stack.ports import free_port, spawn_in_group, stop_group  # noqa: E402

OUTPUT_TOPICS = (
    "livemetrics.observations",
    "livemetrics.sla",
    "chat.events.dlq",
    "livemetrics.live",
)
TABLES = ("conversations", "presence")
PY_SPY = Path(sys.executable).with_name("py-spy")


def say(message: str) -> None:
    print(f"[profile] {message}", file=sys.stderr, flush=True)


# --- the counters wrapper (runs inside the worker process) ------------------------------

WRAPPER = r'''
"""`livemetrics worker` with counters; nothing else changes. Written by bench/profile_worker.py."""
import atexit, os, sys, time
from collections import Counter

import orjson

STATS_PATH = os.environ["LM_PROFILE_STATS"]
clock = time.perf_counter
S = {
    "batches": [],  # [events, seconds in process(), seconds in _flush(), start]
    "flush_calls": 0, "flush_seconds": 0.0,
    "processor_flush_seconds": 0.0,
    "redis_writes": 0, "redis_write_seconds": 0.0,
    "redis_conversations": 0, "redis_partitions": 0,
    "produce_seconds": 0.0, "write_tables_seconds": 0.0,
    "messages": Counter(), "records": Counter(),
    "ebb_calls_full": 0, "ebb_seconds": 0.0,
    "kafka_send_calls": 0, "kafka_send_seconds": 0.0, "kafka_send_max": 0.0,
    "produce_requests": 0, "produce_request_batches": 0, "produce_request_records": 0,
    "produce_request_seconds": 0.0,
}
_last_dump = [0.0]


def dump(force=False):
    now = clock()
    if force or now - _last_dump[0] > 0.5:
        _last_dump[0] = now
        tmp = STATS_PATH + ".tmp"
        with open(tmp, "wb") as f:
            f.write(orjson.dumps(S))
        os.replace(tmp, STATS_PATH)


atexit.register(dump, True)

from livemetrics.stream import worker as w
from livemetrics.sinks import redis_store as rs
from livemetrics.stream import processor as pr
from faust.transport import producer as fp
from aiokafka.producer import producer as ap, sender as asnd

_process = w.Pipeline.process
async def process(self, events):
    t0 = clock(); f0 = S["flush_seconds"]
    await _process(self, events)
    S["batches"].append([len(events), clock() - t0, S["flush_seconds"] - f0, t0])
    dump()
w.Pipeline.process = process

_flush = w.Pipeline._flush
async def pipeline_flush(self):
    t0 = clock()
    await _flush(self)
    S["flush_calls"] += 1; S["flush_seconds"] += clock() - t0
w.Pipeline._flush = pipeline_flush

_pflush = pr.LiveProcessor.flush
def processor_flush(self):
    t0 = clock()
    out = _pflush(self)
    S["processor_flush_seconds"] += clock() - t0
    return out
pr.LiveProcessor.flush = processor_flush

import livemetrics.stream.output as wo
_oflush = wo.WorkerOutput.flush
async def output_flush(self):
    t0 = clock()
    S["messages"].update(m[0] for m in self.pending if not m[0].endswith("-changelog"))
    await _oflush(self)
    S["produce_seconds"] += clock() - t0
wo.WorkerOutput.flush = output_flush

_write_tables = w.Pipeline._write_tables
def write_tables(self, flush):
    t0 = clock()
    _write_tables(self, flush)
    S["write_tables_seconds"] += clock() - t0
    S["records"].update(r.table for r in flush.records)
w.Pipeline._write_tables = write_tables

_write = rs.RedisStore.write
async def redis_write(self, conversations, partitions, clock_us):
    t0 = clock()
    await _write(self, conversations, partitions, clock_us)
    S["redis_writes"] += 1; S["redis_write_seconds"] += clock() - t0
    S["redis_conversations"] += len(conversations); S["redis_partitions"] += len(partitions)
rs.RedisStore.write = redis_write

_ebb = fp.ProducerBuffer.wait_until_ebb
async def wait_until_ebb(self):
    if self.size > self.max_messages:
        t0 = clock()
        await _ebb(self)
        S["ebb_calls_full"] += 1; S["ebb_seconds"] += clock() - t0
    # else: nothing to wait for (the original returns at once too)
fp.ProducerBuffer.wait_until_ebb = wait_until_ebb

_send = ap.AIOKafkaProducer.send
async def kafka_send(self, *args, **kwargs):
    t0 = clock()
    out = await _send(self, *args, **kwargs)
    dt = clock() - t0
    S["kafka_send_calls"] += 1; S["kafka_send_seconds"] += dt
    if dt > S["kafka_send_max"]:
        S["kafka_send_max"] = dt
    return out
ap.AIOKafkaProducer.send = kafka_send

_req = asnd.Sender._send_produce_req
async def send_produce_req(self, node_id, batches):
    t0 = clock()
    S["produce_requests"] += 1; S["produce_request_batches"] += len(batches)
    S["produce_request_records"] += sum(b.record_count for b in batches.values())
    await _req(self, node_id, batches)
    S["produce_request_seconds"] += clock() - t0
asnd.Sender._send_produce_req = send_produce_req

from livemetrics.cli import main
raise SystemExit(main(sys.argv[1:]))
'''


# --- the run ----------------------------------------------------------------------------


def worker_argv(
    args: argparse.Namespace,
    home: Path,
    bootstrap: str,
    redis_url: str,
    app_id: str,
    web_port: int,
    config_path: Path,
) -> list[str]:
    cli = [
        "worker",
        "--bootstrap",
        bootstrap,
        "--redis-url",
        redis_url,
        "--config",
        str(config_path),
        "--app-id",
        app_id,
        "--web-port",
        str(web_port),
        "--data-dir",
        str(home / app_id),
    ]
    if args.plain:
        return [sys.executable, "-m", "livemetrics.cli", *cli]
    wrapper = home / "instrumented_worker.py"
    wrapper.write_text(WRAPPER)
    return [sys.executable, str(wrapper), *cli]


def py_spy_argv(args: argparse.Namespace, raw: Path) -> list[str]:
    idle = [] if args.on_cpu else ["--idle"]
    return [
        str(PY_SPY),
        "record",
        "--format",
        "raw",
        "--rate",
        str(args.rate),
        *idle,
        "--threads",
        "-o",
        str(raw),
    ]


def child_pid(parent: int, timeout: float = 10) -> int:
    """The (single) child process of `parent` (the worker under `py-spy record -- cmd`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                children = (task / "children").read_text().split()
                if children:
                    return int(children[0])
        time.sleep(0.05)
    raise RuntimeError(f"no child of py-spy {parent}")


def cpu_seconds(pid: int | None) -> tuple[float, float]:
    """(utime, stime) of `pid` in seconds ((0, 0) when gone)."""
    if pid is None:
        return (0.0, 0.0)
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return (0.0, 0.0)
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) / tick, int(fields[12]) / tick)


async def redis_commandstats(url: str) -> dict[str, int]:
    client = aioredis.from_url(url)
    try:
        info = await client.info("commandstats")
    finally:
        await client.aclose()
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in info.items()}


async def topic_ends(bootstrap: str, topics: Sequence[str]) -> dict[str, int]:
    out = {}
    for topic in topics:
        try:
            ends = await end_offsets(bootstrap, [topic])
        except Exception:  # topic never created: nothing produced
            out[topic] = 0
            continue
        out[topic] = sum(ends.values())
    return out


async def run(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    config_path = home / "config.toml"
    config_path.write_text(STREAM_CONFIG)
    procs = Processes(home, config_path)
    result: dict[str, Any] = {"events": args.events, "home": str(home)}
    try:
        say(f"generating {args.events} events ...")
        lines = input_lines(args.events, args.seed)
        broker = procs.broker("broker")
        redis_server = procs.redis("redis")
        await ensure_topics(broker.bootstrap, timeout=30)
        await produce_file(broker.bootstrap, write_jsonl(home / "events.jsonl", lines))
        end = await events_end(broker.bootstrap)
        total = sum(end.values())
        say(f"produced {total} events on {len(end)} partitions")
        app_id = f"bench-profile-{os.getpid()}"
        client = aioredis.from_url(redis_server.url)
        store = RedisStore(client)
        cmd_before = await redis_commandstats(redis_server.url)
        argv = worker_argv(
            args, home, broker.bootstrap, redis_server.url, app_id, free_port(), config_path
        )
        env = _child_env() | {"LM_PROFILE_STATS": str(home / "stats.json")}
        raw = home / "worker.raw"
        log_path = home / "worker.log"
        spy: subprocess.Popen[bytes] | None = None
        if args.whole and not args.no_profile:
            spy = spawn_in_group([*py_spy_argv(args, raw), "--", *argv], home / "py-spy.log", env)
            worker_pid = child_pid(spy.pid)
            worker_proc = None
        else:
            worker_proc = spawn_in_group(argv, log_path, env)
            worker_pid = worker_proc.pid
        say(f"worker pid {worker_pid}, app id {app_id}")

        def alive() -> None:
            if worker_proc is not None and worker_proc.poll() is not None:
                raise RuntimeError(f"worker exited with {worker_proc.returncode}; see {log_path}")
            if worker_proc is None and not Path(f"/proc/{worker_pid}").exists():
                raise RuntimeError(f"worker exited; see {home / 'py-spy.log'}")

        pids = {"worker": worker_pid, "broker": broker.pid, "redis": redis_server.pid}
        cpu0: dict[str, tuple[float, float]] = {}
        cpu1: dict[str, tuple[float, float]] = {}
        spawned = time.perf_counter()
        deadline = time.monotonic() + args.timeout
        first_seen = 0.0
        first_count = 0
        try:
            while True:
                applied = await applied_offsets(store)
                now = time.perf_counter()
                if not first_seen and applied_count(applied) > 0:
                    first_seen, first_count = now, applied_count(applied)
                    cpu0 = {n: cpu_seconds(p) for n, p in pids.items()}
                    say(f"first applied after {now - spawned:.1f} s ({first_count} events)")
                    if spy is None and not args.no_profile:
                        spy = spawn_in_group(
                            [*py_spy_argv(args, raw), "--pid", str(worker_pid)],
                            home / "py-spy.log",
                        )
                        profiled_from = first_count
                if behind(applied, end) == 0:
                    break
                alive()
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"worker applied {applied_count(applied)} of {total} in {args.timeout} s"
                    )
                await asyncio.sleep(POLL)
            caught_up = now
            cpu1 = {n: cpu_seconds(p) for n, p in pids.items()}
            if spy is not None and not args.whole:
                spy.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
                spy.wait(timeout=60)
            timed = total - first_count
            rate = timed / (caught_up - first_seen) if caught_up > first_seen else 0.0
            result["rate"] = {
                "events_per_second": round(rate),
                "events_timed": timed,
                "seconds": round(caught_up - first_seen, 2),
                "start_to_first_applied_seconds": round(first_seen - spawned, 2),
            }
            if not args.no_profile and not args.whole:
                result["rate"]["profiled_from_event"] = profiled_from
            window = caught_up - first_seen
            result["cpu_share_of_one_core_in_window"] = {
                n: {
                    "user": pct(cpu1[n][0] - cpu0[n][0], window),
                    "sys": pct(cpu1[n][1] - cpu0[n][1], window),
                }
                for n in pids
            } | {"machine_cores": os.cpu_count()}
            say(f"caught up: {rate:.0f} events/s over {timed} events")
            lag_deadline = time.monotonic() + 20
            lag = -1
            while time.monotonic() < lag_deadline:
                lag = sum(
                    x.lag for x in await partition_lag(broker.bootstrap, app_id, [EVENTS_TOPIC])
                )
                if lag == 0:
                    break
                await asyncio.sleep(0.2)
            result["rate"]["committed_lag_after"] = lag
            cmd_after = await redis_commandstats(redis_server.url)
        finally:
            if worker_proc is not None:
                stop_group(worker_proc, grace=15)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker_pid, signal.SIGTERM)
            if spy is not None:
                try:
                    spy.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    stop_group(spy, grace=5)
            await client.aclose()
        produced = await topic_ends(
            broker.bootstrap, [*OUTPUT_TOPICS, *(f"{app_id}-{t}-changelog" for t in TABLES)]
        )
        result["messages"] = messages_report(produced, total)
        result["redis"] = redis_report(cmd_before, cmd_after)
        stats_path = home / "stats.json"
        if stats_path.exists():
            result["counters"] = counters_report(orjson.loads(stats_path.read_bytes()), total)
            result["redis"]["per_batch"] = {
                k: round(v / max(1, result["counters"]["batches"]), 2)
                for k, v in result["redis"]["write_commands"].items()
            }
        wlog = log_path if log_path.exists() else home / "py-spy.log"
        result["producer_buffer_full_warnings"] = wlog.read_text(errors="replace").count(
            "producer buffer full"
        )
        if raw.exists():
            result["profile"] = analyse(raw.read_text(), args.top)
    finally:
        procs.stop_all()
    return result


def messages_report(produced: dict[str, int], events: int) -> dict[str, Any]:
    out: dict[str, Any] = {"total": produced, "per_event": {}}
    for topic, count in produced.items():
        out["per_event"][topic] = round(count / events, 3)
    out["per_event"]["ALL"] = round(sum(produced.values()) / events, 3)
    return out


WRITE_COMMANDS = ("multi", "exec", "hset", "sadd", "del", "eval", "evalsha", "set")


def redis_report(before: dict[str, int], after: dict[str, int]) -> dict[str, Any]:
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    return {
        "write_commands": {k: delta[k] for k in WRITE_COMMANDS if delta.get(k)},
        "all_commands": {k: v for k, v in sorted(delta.items()) if v},
    }


def counters_report(s: dict[str, Any], events: int) -> dict[str, Any]:
    batches = s["batches"]
    sizes = [b[0] for b in batches]
    process_s = sum(b[1] for b in batches)
    flush_in_batches = sum(b[2] for b in batches)
    gaps = [b2[3] - (b1[3] + b1[1]) for b1, b2 in itertools.pairwise(batches)]
    span = batches[-1][3] + batches[-1][1] - batches[0][3] if batches else 0.0
    q = statistics.quantiles(sizes, n=10) if len(sizes) >= 2 else sizes
    return {
        "batches": len(batches),
        "batch_size": {
            "mean": round(statistics.fmean(sizes), 1) if sizes else 0,
            "min": min(sizes, default=0),
            "p10": round(q[0]) if q else 0,
            "median": round(statistics.median(sizes)) if sizes else 0,
            "p90": round(q[-1]) if q else 0,
            "max": max(sizes, default=0),
            "histogram": histogram(sizes),
        },
        "batch_seconds_mean": round(process_s / max(1, len(batches)), 4),
        "wall_span_first_to_last_batch_s": round(span, 2),
        "share_of_span": {
            "in_process()": pct(process_s, span),
            "  of which _flush()": pct(flush_in_batches, span),
            "  of which apply etc. (process - _flush)": pct(process_s - flush_in_batches, span),
            "between batches (agent waits: take_events, ebb, delivery)": pct(sum(gaps), span),
        },
        "seconds_total": {
            "process": round(process_s, 2),
            "_flush (all calls, also ticks)": round(s["flush_seconds"], 2),
            "LiveProcessor.flush": round(s["processor_flush_seconds"], 2),
            "RedisStore.write": round(s["redis_write_seconds"], 2),
            "WorkerOutput.flush": round(s["produce_seconds"], 2),
            "_write_tables": round(s["write_tables_seconds"], 2),
            "wait_until_ebb (buffer > 100)": round(s["ebb_seconds"], 2),
            "aiokafka send (sum of awaits)": round(s["kafka_send_seconds"], 2),
            "produce requests in flight (sum)": round(s["produce_request_seconds"], 2),
        },
        "flush_calls": s["flush_calls"],
        "redis_writes": s["redis_writes"],
        "redis_conversation_snapshots_per_write": round(
            s["redis_conversations"] / max(1, s["redis_writes"]), 1
        ),
        "redis_partition_snapshots_per_write": round(
            s["redis_partitions"] / max(1, s["redis_writes"]), 1
        ),
        "messages_handed_to_faust": s["messages"],
        "messages_per_event": {k: round(v / events, 3) for k, v in s["messages"].items()},
        "table_records": s["records"],
        "table_records_per_event": {k: round(v / events, 3) for k, v in s["records"].items()},
        "wait_until_ebb_full_calls": s["ebb_calls_full"],
        "aiokafka_send_calls": s["kafka_send_calls"],
        "aiokafka_send_mean_us": round(
            1e6 * s["kafka_send_seconds"] / max(1, s["kafka_send_calls"]), 1
        ),
        "aiokafka_send_max_ms": round(1000 * s["kafka_send_max"], 1),
        "produce_requests": s["produce_requests"],
        "produce_request_mean_ms": round(
            1000 * s["produce_request_seconds"] / max(1, s["produce_requests"]), 2
        ),
        "batches_per_produce_request": round(
            s["produce_request_batches"] / max(1, s["produce_requests"]), 2
        ),
        "records_per_produce_request": round(
            s["produce_request_records"] / max(1, s["produce_requests"]), 1
        ),
    }


def histogram(sizes: Sequence[int]) -> dict[str, int]:
    bounds = (1, 10, 50, 100, 250, 500, 1000, 1999, 2000)
    out: dict[str, int] = {}
    low = 0
    for high in bounds:
        label = f"{low + 1}-{high}" if high > low + 1 else str(high)
        out[label] = sum(1 for s in sizes if low < s <= high)
        low = high
    return {k: v for k, v in out.items() if v}


def pct(part: float, whole: float) -> float:
    return round(100 * part / whole, 1) if whole else 0.0


# --- the profile ------------------------------------------------------------------------

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
Frame = tuple[str, str, int]  # func, file, line


def parse_raw(text: str) -> dict[str, list[tuple[list[Frame], int]]]:
    """Collapsed stacks per thread: [(frames root -> leaf, samples)]."""
    threads: dict[str, list[tuple[list[Frame], int]]] = {}
    for row in text.splitlines():
        stack, _, count = row.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        parts = stack.split(";")
        thread = parts[0] if parts[0].startswith("thread ") else "?"
        frames = []
        for part in parts[1:] if thread != "?" else parts:
            found = FRAME.match(part)
            if found:
                frames.append((found["func"], found["file"], int(found["line"] or 0)))
            else:
                frames.append((part, "", 0))
        threads.setdefault(thread, []).append((frames, int(count)))
    return threads


def is_idle(frames: list[Frame]) -> bool:
    if not frames:
        return True
    func, file, _ = frames[-1]
    return file.endswith("selectors.py") and func.endswith("select")


def fn(frame: Frame) -> str:
    return f"{frame[0]} ({frame[1]})"


def has(
    func: str | None = None, file: str | None = None, prefix: str | None = None
) -> Callable[[Frame], bool]:
    def test(frame: Frame) -> bool:
        f, path, _ = frame
        if prefix is not None and not path.startswith(prefix):
            return False
        if file is not None and not path.endswith(file):
            return False
        return func is None or f == func or f.endswith("." + func)

    return test


KEY_FRAMES: tuple[tuple[str, Callable[[Frame], bool]], ...] = (
    ("worker Pipeline.process (whole batch)", has("process", "livemetrics/stream/worker.py")),
    ("  LiveProcessor.apply", has("apply", "livemetrics/stream/processor.py")),
    ("    events.decode_event", has("decode_event", "livemetrics/events.py")),
    ("    livemetrics.engine (any)", has(prefix="livemetrics/engine/")),
    ("    LiveProcessor._route", has("_route", "livemetrics/stream/processor.py")),
    ("      _fold (processor) + aggregate/*", lambda f: has("_fold", "stream/processor.py")(f)),
    ("      _observation_message", has("_observation_message", "stream/processor.py")),
    ("      PrometheusSink.observe", has("observe", "livemetrics/sinks/prometheus.py")),
    ("  Pipeline._flush", has("_flush", "livemetrics/stream/worker.py")),
    ("    LiveProcessor.flush", has("flush", "livemetrics/stream/processor.py")),
    ("    RedisOutbox.send", has("send", "livemetrics/sinks/redis_outbox.py")),
    ("      RedisStore.write", has("write", "livemetrics/sinks/redis_store.py")),
    ("        encode_conversation", has("encode_conversation", "sinks/redis_store.py")),
    ("    WorkerOutput.flush", has("flush", "livemetrics/stream/output.py")),
    ("    Pipeline._write_tables", has("_write_tables", "livemetrics/stream/worker.py")),
    ("faust Topic.send_soon (all callers)", has("send_soon", "faust/topics.py")),
    ("  faust Table.send_changelog", has("send_changelog", "faust/tables/base.py")),
    ("faust ProducerBuffer._handle_pending", has("_handle_pending", "faust/transport/producer.py")),
    ("  faust Topic.publish_message", has("publish_message", "faust/topics.py")),
    ("  faust Topic._on_published (ack cb)", has("_on_published", "faust/topics.py")),
    (
        "faust wait_until_ebb/flush_atmost",
        lambda f: (
            f[1].endswith("faust/transport/producer.py")
            and f[0].split(".")[-1] in ("wait_until_ebb", "flush_atmost")
        ),
    ),
    ("aiokafka AIOKafkaProducer.send", has("send", "aiokafka/producer/producer.py")),
    ("aiokafka producer/* (any)", has(prefix="aiokafka/producer/")),
    ("aiokafka record/* (batch build/parse)", has(prefix="aiokafka/record/")),
    ("aiokafka consumer/* (fetch, decode)", has(prefix="aiokafka/consumer/")),
    ("aiokafka conn/protocol", lambda f: f[1].startswith(("aiokafka/conn", "aiokafka/protocol"))),
    (
        "faust consumer/conductor delivery",
        lambda f: f[1].startswith(("faust/transport/consumer", "faust/transport/conductor")),
    ),
    ("faust streams (take_events etc.)", has(prefix="faust/streams.py")),
    ("faust tables/* (any)", has(prefix="faust/tables/")),
    ("redis client (redis/*)", has(prefix="redis/")),
    ("Pipeline.tick (timer)", has("tick", "livemetrics/stream/worker.py")),
    ("aiohttp/web", lambda f: f[1].startswith(("aiohttp/", "faust/web/"))),
    ("logging (any; root at DEBUG via Faust's spinner)", has(prefix="logging/")),
    ("asyncio wait_for (flush_atmost, per message)", has("wait_for", "asyncio/tasks.py")),
)


def _any(*tests: Callable[[Frame], bool]) -> Callable[[Frame], bool]:
    return lambda f: any(t(f) for t in tests)


#: One bucket per sample, first rule that matches any frame of the stack (idle first).
COARSE: tuple[tuple[str, Callable[[Frame], bool]], ...] = (
    (
        "produce: our batches (WorkerOutput, _write_tables) or Faust's send_soon",
        _any(
            has("flush", "livemetrics/stream/output.py"),
            has("_write_tables", "livemetrics/stream/worker.py"),
            has("send_soon", "faust/topics.py"),
        ),
    ),
    (
        "Redis (outbox, encode, client, gauges)",
        _any(
            has(prefix="livemetrics/sinks/redis_"),
            has(prefix="redis/"),
        ),
    ),
    (
        "ours: LiveProcessor.apply/flush + Pipeline glue",
        _any(
            has("process", "livemetrics/stream/worker.py"),
            has("tick", "livemetrics/stream/worker.py"),
        ),
    ),
    (
        "produce: conductor wait_until_ebb (wait_for per message)",
        lambda f: (
            f[1].endswith("faust/transport/producer.py")
            and f[0].split(".")[-1] in ("wait_until_ebb", "flush_atmost")
        ),
    ),
    (
        "produce: Faust ProducerBuffer -> publish_message -> aiokafka send",
        _any(
            has("_handle_pending", "faust/transport/producer.py"),
            has("_on_published", "faust/topics.py"),
        ),
    ),
    ("produce: aiokafka sender, requests, socket writes", has(prefix="aiokafka/producer/")),
    (
        "consume: fetcher, conductor delivery, take_events",
        lambda f: f[1].startswith(
            (
                "aiokafka/consumer/",
                "faust/transport/consumer",
                "faust/transport/conductor",
                "faust/streams.py",
            )
        ),
    ),
    (
        "kafka connection reads (responses)",
        lambda f: f[1].startswith(("aiokafka/conn", "aiokafka/protocol")),
    ),
    (
        "asyncio wait/wait_for callbacks (produce path)",
        lambda f: f[1].endswith("asyncio/tasks.py"),
    ),
    ("logging", has(prefix="logging/")),
)


def coarse_of(frames: list[Frame]) -> str:
    if is_idle(frames):
        return "idle (loop in select)"
    for name, test in COARSE:
        if any(test(f) for f in frames):
            return name
    return "event loop overhead / other"


def leaf_library(frames: list[Frame]) -> str:
    if is_idle(frames):
        return "idle (select)"
    path = frames[-1][1]
    if path.startswith("livemetrics/"):
        parts = path.split("/")
        return "livemetrics." + (parts[1] if len(parts) > 2 else parts[1].removesuffix(".py"))
    top = path.split("/")[0].removesuffix(".py")
    return top or frames[-1][0]


TASK_ROOTS: tuple[tuple[str, Callable[[Frame], bool]], ...] = (
    ("agent: Pipeline.process (our batch)", has("process", "livemetrics/stream/worker.py")),
    ("agent: waiting in take_events/stream", has(prefix="faust/streams.py")),
    ("faust ProducerBuffer._handle_pending", has("_handle_pending", "faust/transport/producer.py")),
    ("aiokafka producer sender", has(prefix="aiokafka/producer/")),
    ("aiokafka consumer fetcher", has(prefix="aiokafka/consumer/")),
    (
        "faust consumer/conductor",
        lambda f: f[1].startswith(("faust/transport/consumer", "faust/transport/conductor")),
    ),
    ("aiokafka conn", lambda f: f[1].startswith(("aiokafka/conn", "aiokafka/protocol"))),
    ("Pipeline.tick (timer)", has("tick", "livemetrics/stream/worker.py")),
    ("redis client", has(prefix="redis/")),
)


def task_of(frames: list[Frame]) -> str:
    """The asyncio task/callback a sample runs under (the frames after the last Handle._run)."""
    if is_idle(frames):
        return "idle (select)"
    start = None
    for i, (func, file, _) in enumerate(frames):
        if file.endswith("asyncio/events.py") and func.endswith("_run"):
            start = i + 1
    if start is None:
        return "loop machinery / other (no task)"
    inner = frames[start:]
    if not inner:
        return "asyncio Handle._run itself"
    for name, test in TASK_ROOTS:
        if any(test(f) for f in inner):
            return name
    return "other task: " + fn(inner[0])


def analyse(text: str, top: int) -> dict[str, Any]:
    threads = parse_raw(text)
    totals = {t: sum(c for _, c in rows) for t, rows in threads.items()}
    main = max(totals, key=totals.__getitem__)
    rows = threads[main]
    total = totals[main]
    self_time: Counter[str] = Counter()
    self_lines: Counter[str] = Counter()
    libs: Counter[str] = Counter()
    tasks: Counter[str] = Counter()
    coarse: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    idle = 0
    for frames, count in rows:
        if is_idle(frames):
            idle += count
        leaf = frames[-1] if frames else ("?", "", 0)
        self_time[fn(leaf)] += count
        self_lines[f"{leaf[0]} ({leaf[1]}:{leaf[2]})"] += count
        libs[leaf_library(frames)] += count
        tasks[task_of(frames)] += count
        coarse[coarse_of(frames)] += count
        for name, test in KEY_FRAMES:
            if any(test(f) for f in frames):
                inclusive[name] += count

    def table(counter: Counter[str], limit: int | None = None) -> list[list[Any]]:
        return [[k, v, pct(v, total)] for k, v in counter.most_common(limit)]

    busy = total - idle
    hot = sorted(rows, key=lambda r: -r[1])[:15]
    return {
        "thread": main,
        "samples": total,
        "other_threads_samples": {t: c for t, c in totals.items() if t != main},
        "idle_pct": pct(idle, total),
        "busy_samples": busy,
        "self_top": table(self_time, top),
        "self_top_lines": table(self_lines, 25),
        "leaf_library": table(libs),
        "by_task": table(tasks),
        "coarse": table(coarse),
        "inclusive": [
            [name, inclusive[name], pct(inclusive[name], total)] for name, _ in KEY_FRAMES
        ],
        "hottest_stacks": [
            [count, pct(count, total), " <- ".join(fn(f) for f in reversed(frames[-8:]))]
            for frames, count in hot
        ],
    }


# --- printing ---------------------------------------------------------------------------


def print_report(result: dict[str, Any]) -> None:
    out = sys.stdout
    rate = result.get("rate", {})
    print(
        f"\n== worker rate: {rate.get('events_per_second')} events/s "
        f"({rate.get('events_timed')} events in {rate.get('seconds')} s; "
        f"start->first applied {rate.get('start_to_first_applied_seconds')} s; "
        f"committed lag after: {rate.get('committed_lag_after')})",
        file=out,
    )
    if "cpu_share_of_one_core_in_window" in result:
        print(
            f"   CPU % of one core in the window: {result['cpu_share_of_one_core_in_window']}",
            file=out,
        )
    prof = result.get("profile")
    if prof:
        print(
            f"\n== profile: {prof['samples']} samples of {prof['thread']} "
            f"(idle {prof['idle_pct']} %); other threads {prof['other_threads_samples']}",
            file=out,
        )
        section("self time, top functions (% of all samples)", prof["self_top"])
        section("self time by leaf library (exclusive)", prof["leaf_library"])
        section("by asyncio task (exclusive)", prof["by_task"])
        section("coarse split (exclusive, first matching rule)", prof["coarse"])
        section("inclusive time of key frames", prof["inclusive"], keep_order=True)
        print("\n-- hottest stacks (leaf <- callers)", file=out)
        for count, share, stack in prof["hottest_stacks"][:10]:
            print(f"{share:5.1f} % {count:6d}  {stack}", file=out)
    msgs = result.get("messages")
    if msgs:
        print("\n== messages produced per input event (broker end offsets)", file=out)
        for topic, value in msgs["per_event"].items():
            print(f"  {topic:55s} {value:8.3f}  ({msgs['total'].get(topic, '')})", file=out)
    redis = result.get("redis")
    if redis:
        print(f"\n== Redis write commands during the run: {redis['write_commands']}", file=out)
        if "per_batch" in redis:
            print(f"   per batch: {redis['per_batch']}", file=out)
    counters = result.get("counters")
    if counters:
        print("\n== counters (wrapper)", file=out)
        for key, value in counters.items():
            print(f"  {key}: {orjson.dumps(value).decode()}", file=out)
    print(
        f"\n  'producer buffer full' warnings in the worker log: "
        f"{result.get('producer_buffer_full_warnings')}",
        file=out,
    )


def section(title: str, rows: list[list[Any]], keep_order: bool = False) -> None:
    print(f"\n-- {title}", file=sys.stdout)
    for name, count, share in rows:
        print(f"{share:6.1f} % {count:7d}  {name}", file=sys.stdout)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=40, help="functions in the self-time table")
    parser.add_argument("--timeout", type=float, default=150, help="seconds for the backlog")
    parser.add_argument("--no-profile", action="store_true", help="counters only, no py-spy")
    parser.add_argument("--plain", action="store_true", help="bare CLI, no counters wrapper")
    parser.add_argument(
        "--whole",
        action="store_true",
        help="run the worker under py-spy from its start (profile has start-up)",
    )
    parser.add_argument(
        "--on-cpu",
        action="store_true",
        help="leave out py-spy --idle: samples of a sleeping thread are dropped",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--analyse", type=Path, help="only aggregate this py-spy raw file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.analyse:
        print_report({"profile": analyse(args.analyse.read_text(), args.top)})
        return 0
    if not args.no_profile and not PY_SPY.exists():
        say(f"{PY_SPY} missing: .venv/bin/pip install py-spy (or use --no-profile)")
        return 2
    home = Path(tempfile.mkdtemp(prefix="lm-profile-"))
    ok = False
    try:
        result = asyncio.run(run(args, home))
        (home / "profile.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        print_report(result)
        ok = True
    finally:
        if ok and not args.keep:
            shutil.rmtree(home, ignore_errors=True)
        else:
            say(f"files kept in {home}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
