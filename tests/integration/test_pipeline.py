"""The live pipeline against the real broker and real Redis: `report` must equal `replay`.

Each test starts its own Tansu broker and redis-server (fresh topics), runs
`livemetrics worker` processes, publishes a generated stream with
`livemetrics produce`'s code, and polls the live report until it equals the
report `replay` computes from the same file (bounded; on timeout the last
difference is shown).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from livemetrics.aggregate.query import ReportQuery
from livemetrics.config import Config, parse_config
from livemetrics.engine.gauges import live_gauges, tenant_totals
from livemetrics.events import Event, decode_line
from livemetrics.kafka_admin import ensure_topics
from livemetrics.produce import produce_file
from livemetrics.replay import replay_lines
from livemetrics.simulate.streams import STREAM_CONFIG, generate_stream
from livemetrics.sinks.redis_store import RedisStore, live_report
from livemetrics.stack.broker import EmbeddedBroker
from livemetrics.stack.ports import free_port
from livemetrics.stack.redis_server import EmbeddedRedis
from tests.integration.conftest import broker_binary_or_skip, redis_server_or_skip

BY = (
    "tenant",
    "agent",
    "team",
    "channel",
    "direction",
    "contact_type",
    "skill",
    "campaign",
    "theme",
    "tag",
    "customer",
    "conversation",
    "day",
    "hour",
    "agent,day",
)
QUERIES = (
    *(ReportQuery.parse(by=by) for by in BY),
    ReportQuery.parse(by="tenant", where=["channel=chat"]),
    ReportQuery.parse(by="tenant", range_name="this-week"),
)
SETTLE_TIMEOUT = 120.0


@dataclass
class LiveStack:
    broker: EmbeddedBroker
    redis: EmbeddedRedis
    home: Path
    config_path: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    web_ports: list[int] = field(default_factory=list)

    def start_worker(self, app_id: str = "livemetrics-test", index: int | None = None) -> int:
        index = len(self.workers) if index is None else index
        log = (self.home / f"worker-{index}.log").open("ab")
        web_port = free_port()
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "livemetrics.cli",
                "worker",
                "--bootstrap",
                self.broker.bootstrap,
                "--redis-url",
                self.redis.url,
                "--config",
                str(self.config_path),
                "--app-id",
                app_id,
                "--web-port",
                str(web_port),
                "--data-dir",
                str(self.home / f"worker-{index}"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(process)
        self.web_ports.append(web_port)
        return len(self.workers) - 1

    def retire(self, index: int) -> None:
        """Scale down: SIGTERM (a clean leave of the group) and forget the process."""
        process = self.workers[index]
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        del self.web_ports[index]
        self.workers.remove(process)

    def forget(self, index: int) -> None:
        """Stop watching a worker that has exited (its exit is the test's to check)."""
        assert self.workers[index].poll() is not None, "forget() is for a worker that exited"
        del self.web_ports[index]
        del self.workers[index]

    def kill(self, index: int) -> None:
        """`kill -9`: no flush, no goodbye to the group."""
        os.killpg(self.workers[index].pid, signal.SIGKILL)
        self.workers[index].wait(timeout=10)

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.workers:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted(self.home.glob("worker-*.log"))
        )


@pytest.fixture
def live_stack(tmp_path: Path) -> Iterator[LiveStack]:
    broker_binary_or_skip()
    redis_server_or_skip()
    config_path = tmp_path / "config.toml"
    config_path.write_text(STREAM_CONFIG)
    with (
        EmbeddedBroker(log_path=tmp_path / "broker.log") as broker,
        EmbeddedRedis(log_path=tmp_path / "redis.log") as redis,
    ):
        asyncio.run(ensure_topics(broker.bootstrap, timeout=20))
        stack = LiveStack(broker, redis, tmp_path, config_path)
        try:
            yield stack
        finally:
            stack.stop()


def _config() -> Config:
    return parse_config(STREAM_CONFIG)


def _write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def _expected(lines: list[bytes]) -> list[dict[str, Any]]:
    result = replay_lines(lines, _config())
    return [result.report(_config(), query) for query in QUERIES]


async def _live(redis_url: str) -> list[dict[str, Any]]:
    client = aioredis.from_url(redis_url)
    try:
        return [await live_report(client, _config(), query) for query in QUERIES]
    finally:
        await client.aclose()


def _first_difference(live: list[dict[str, Any]], expected: list[dict[str, Any]]) -> str:
    """The differing rows (up to 12) of the first `--by` that differs, and of
    `--by conversation` (which conversations carry the difference)."""
    found: list[str] = []
    for query, got, want in zip(QUERIES, live, expected, strict=True):
        if got == want or (found and query.by != ("conversation",)):
            continue
        got_rows = {tuple(r[d] for d in query.by): r for r in got["rows"]}
        want_rows = {tuple(r[d] for d in query.by): r for r in want["rows"]}
        by = ",".join(query.by)
        if got_rows.keys() != want_rows.keys():
            missing = sorted(want_rows.keys() - got_rows.keys(), key=str)[:5]
            extra = sorted(got_rows.keys() - want_rows.keys(), key=str)[:5]
            found.append(f"--by {by}: rows missing {missing}, extra {extra}")
        for key, row in want_rows.items():
            for metric, value in row.items():
                if key in got_rows and got_rows[key].get(metric) != value and len(found) < 12:
                    found.append(
                        f"--by {by} row {key}: {metric} live {got_rows[key].get(metric)!r} "
                        f"replay {value!r}"
                    )
    return "; ".join(found) or "equal"


def _settle(stack: LiveStack, lines: list[bytes]) -> None:
    """Wait until the live report equals replay's; fail with the difference and logs."""
    expected = _expected(lines)
    deadline = time.monotonic() + SETTLE_TIMEOUT
    live: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        live = asyncio.run(_live(stack.redis.url))
        if live == expected:
            return
        for process in stack.workers:
            assert process.poll() is None or process.returncode == -signal.SIGKILL, stack.logs()
        time.sleep(1.0)
    pytest.fail(
        f"live != replay after {SETTLE_TIMEOUT}s: {_first_difference(live, expected)}\n"
        f"{stack.logs()}"
    )


def _produce(stack: LiveStack, path: Path) -> None:
    asyncio.run(produce_file(stack.broker.bootstrap, path))


def test_report_equals_replay(live_stack: LiveStack) -> None:
    lines = generate_stream(21, conversations=150)
    live_stack.start_worker()
    _produce(live_stack, _write(live_stack.home / "events.jsonl", lines))
    _settle(live_stack, lines)
    _gauges_settle(live_stack, lines)


def _gauges_settle(stack: LiveStack, lines: list[bytes]) -> None:
    """Redis gauges (summed over partitions) equal the gauges of replay's final state."""
    engine = replay_lines(lines, _config()).engine
    expected = tenant_totals(
        live_gauges(engine.conversations.values(), engine.presence, engine.clock_us)
    )

    async def read() -> dict[str, dict[str, float]]:
        client = aioredis.from_url(stack.redis.url)
        try:
            found = await RedisStore(client).read_gauges()
        finally:
            await client.aclose()
        return {t: {k: v for k, v in g.items() if k != "ts_us" and v} for t, g in found.items()}

    deadline = time.monotonic() + 20
    got: dict[str, dict[str, float]] = {}
    while time.monotonic() < deadline:
        got = asyncio.run(read())
        if got == {t: {k: float(v) for k, v in g.items() if v} for t, g in expected.items()}:
            return
        time.sleep(0.5)
    assert got == expected


def test_report_equals_replay_after_kill_9_mid_stream(live_stack: LiveStack) -> None:
    lines = generate_stream(22, conversations=150)
    half = len(lines) // 2
    worker = live_stack.start_worker()
    _produce(live_stack, _write(live_stack.home / "first.jsonl", lines[:half]))
    time.sleep(8)  # let it process part of it: the kill lands mid-stream
    live_stack.kill(worker)
    _produce(live_stack, _write(live_stack.home / "second.jsonl", lines[half:]))
    live_stack.start_worker(index=worker)
    _settle(live_stack, lines)


def test_report_equals_replay_with_two_workers_and_a_rebalance(live_stack: LiveStack) -> None:
    lines = generate_stream(23, conversations=150)
    half = len(lines) // 2
    live_stack.start_worker()
    _produce(live_stack, _write(live_stack.home / "first.jsonl", lines[:half]))
    live_stack.start_worker()  # joins mid-stream: partitions move
    _produce(live_stack, _write(live_stack.home / "second.jsonl", lines[half:]))
    _settle(live_stack, lines)


def test_reproducing_part_of_the_stream_changes_only_duplicates(live_stack: LiveStack) -> None:
    lines = generate_stream(24, conversations=100)
    live_stack.start_worker()
    _produce(live_stack, _write(live_stack.home / "events.jsonl", lines))
    _settle(live_stack, lines)
    again = [line for line in lines[len(lines) // 3 :] if isinstance(decode_line(line), Event)]
    _produce(live_stack, _write(live_stack.home / "again.jsonl", again))
    _settle(live_stack, lines + again)
    before, after = _expected(lines)[0], _expected(lines + again)[0]
    for old, new in zip(before["rows"], after["rows"], strict=True):
        assert {k: v for k, v in old.items() if k != "duplicate_events"} == {
            k: v for k, v in new.items() if k != "duplicate_events"
        }
    assert sum(r["duplicate_events"] for r in after["rows"]) - sum(
        r["duplicate_events"] for r in before["rows"]
    ) == len(again)
