"""The worker's HTTP API and wall board feed (`livemetrics.web.api`).

Two layers:

- in process: `register_web` on a bare Faust app, served by aiohttp's test
  server, reading a real redis-server that holds `replay`'s results (written as
  the worker writes them). Fast; covers every route, format, error and auth;
- the live stack: broker, Redis and ONE `livemetrics worker` on a known web
  port, generated traffic produced to it; `/api/v1/report` must reach
  `replay`'s report, then every endpoint is checked on the real worker.
"""

from __future__ import annotations

import asyncio
import csv
import inspect
import io
import itertools
import os
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import aiohttp
import faust
import openpyxl
import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestClient, TestServer

from livemetrics.aggregate.formats import render
from livemetrics.aggregate.presets import PRESETS, apply_preset, preset_query
from livemetrics.aggregate.query import ReportQuery
from livemetrics.cli import main as cli_main
from livemetrics.config import Config, parse_config
from livemetrics.engine.gauges import live_gauges, tenant_totals
from livemetrics.kafka_admin import ensure_topics
from livemetrics.produce import produce_file
from livemetrics.replay import ReplayResult, replay_lines
from livemetrics.simulate.streams import STREAM_CONFIG, generate_stream
from livemetrics.sinks.redis_store import RedisStore, snapshots_from_store
from livemetrics.stack.broker import EmbeddedBroker
from livemetrics.stack.ports import free_port
from livemetrics.stack.redis_server import EmbeddedRedis
from livemetrics.web.api import register_web
from tests.integration.conftest import broker_binary_or_skip, redis_server_or_skip

SETTLE_TIMEOUT = 120.0
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ROUTES = (
    "/api/v1/report",
    "/api/v1/conversations/{tenant}/{conversation_id}",
    "/api/v1/live",
    "/api/v1/board",
    "/api/v1/stream",
    "/api/v1/openapi.json",
    "/api/docs",
    "/wallboard",
)


@cache
def _config() -> Config:
    return parse_config(STREAM_CONFIG)


def _report(result: ReplayResult, **options: Any) -> dict[str, Any]:
    return result.report(_config(), ReportQuery.parse(**options))


def _preset_report(result: ReplayResult, preset: str, **options: Any) -> dict[str, Any]:
    """What `replay --preset` gives: the preset's query, then `apply_preset` (cli._finish)."""
    query = preset_query(preset, ReportQuery.parse(**options))
    return apply_preset(preset, result.report(_config(), query))


def _rendered(report: dict[str, Any], fmt: str) -> bytes:
    out = io.BytesIO()
    render(report, fmt, out)
    return out.getvalue()


async def _sse_events(
    response: aiohttp.ClientResponse, count: int
) -> list[tuple[str, bytes, float]]:
    """The first `count` events of a Server-Sent Events body: (event, data, arrival time)."""
    events: list[tuple[str, bytes, float]] = []
    name, data = "message", b""
    while len(events) < count:
        line = (await asyncio.wait_for(response.content.readline(), timeout=10)).rstrip(b"\r\n")
        if line.startswith(b"event: "):
            name = line[7:].decode()
        elif line.startswith(b"data: "):
            data = line[6:]
        elif line == b"" and data:
            events.append((name, data, time.monotonic()))
            name, data = "message", b""
    return events


# --- in process: register_web on a bare Faust app -----------------------------


ODD_ID = "web/42 çà?"
"""A conversation id with a slash, a space, non-ASCII and a '?': ids are any string."""


@cache
def _lines() -> tuple[bytes, ...]:
    """The events the in-process store holds: generated traffic and one odd conversation."""
    odd = [
        {"type": "conversation.started", "channel": "chat", "direction": "inbound",
         "customer_id": "cu-odd"},
        {"type": "message.sent", "sender": "customer"},
        {"type": "message.sent", "sender": "agent", "agent_id": "ag-odd"},
    ]  # fmt: skip
    extra = [
        orjson.dumps(
            {
                "event_id": f"odd-{i}",
                "ts": f"2026-10-23T10:00:0{i}Z",
                "tenant": "acme",
                "conversation_id": ODD_ID,
                **event,
            }
        )
        for i, event in enumerate(odd)
    ]
    return (*generate_stream(5, conversations=120), *extra)


@cache
def _replayed() -> ReplayResult:
    return replay_lines(_lines(), _config())


@dataclass
class FakePipeline:
    """What `register_web` reads of the worker's `Pipeline`."""

    redis: RedisStore
    config: Config
    settings: Any
    processor: Any = None
    active: Any = None


@pytest.fixture(scope="module")
def store_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server holding replay's cells and gauges, as the worker would write them."""
    redis_server_or_skip()
    log_path = Path(tmp_path_factory.mktemp("redis-web")) / "redis.log"
    with EmbeddedRedis(log_path=log_path) as server:

        async def fill() -> None:
            client = aioredis.from_url(server.url)
            try:
                store = RedisStore(client)
                result = _replayed()
                conversations, partitions = snapshots_from_store(
                    result.store, lambda tenant, c: zlib.crc32(f"{tenant}/{c}".encode()) % 4
                )
                await store.write(conversations, partitions, result.now_us)
                engine = result.engine
                gauges = tenant_totals(
                    live_gauges(engine.conversations.values(), engine.presence, engine.clock_us)
                )
                for tenant, values in gauges.items():
                    await store.write_gauges(tenant, values, engine.clock_us, 0)
            finally:
                await client.aclose()

        asyncio.run(fill())
        yield server.url


@pytest.fixture
async def api(store_redis: str) -> AsyncIterator[tuple[TestClient[Any, Any], FakePipeline]]:
    """An aiohttp test client for a Faust app with only the API routes registered."""
    client = aioredis.from_url(store_redis)
    pipeline = FakePipeline(
        redis=RedisStore(client),
        config=_config(),
        settings=SimpleNamespace(api_token=None),
        processor=SimpleNamespace(engine=_replayed().engine),
    )
    app = faust.App("livemetrics-web-test", broker="memory://", web_port=free_port())
    register_web(app, pipeline)
    web: Any = app.web  # the aiohttp driver
    web.init_server()  # Faust's own blueprints too: "/" must stay the wall board
    test_client: TestClient[Any, Any] = TestClient(TestServer(web.web_app))
    await test_client.start_server()
    try:
        yield test_client, pipeline
    finally:
        await test_client.close()
        await client.aclose()


QUERIES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("", {}),
    ("?by=agent", {"by": "agent"}),
    ("?by=tenant,team&where=channel=chat", {"by": "tenant,team", "where": ["channel=chat"]}),
    ("?by=team&by=day", {"by": "team,day"}),
    ("?by=channel&tenant=acme", {"by": "channel", "where": ["tenant=acme"]}),
    ("?by=day&from=2026-10-23&to=2026-10-24",
     {"by": "day", "date_from": "2026-10-23", "date_to": "2026-10-24"}),
    ("?by=hour&range=today", {"by": "hour", "range_name": "today"}),
    ("?by=conversation&where=tenant=globex", {"by": "conversation", "where": ["tenant=globex"]}),
)  # fmt: skip


@pytest.mark.parametrize(("parameters", "options"), QUERIES, ids=[q for q, _ in QUERIES])
async def test_report_json_is_replays_report(
    api: tuple[TestClient[Any, Any], FakePipeline], parameters: str, options: dict[str, Any]
) -> None:
    client, _ = api
    response = await client.get(f"/api/v1/report{parameters}")
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    assert orjson.loads(await response.read()) == _report(_replayed(), **options)


async def test_report_csv_and_xlsx_are_downloads_of_the_same_report(
    api: tuple[TestClient[Any, Any], FakePipeline],
) -> None:
    client, _ = api
    expected = _report(_replayed(), by="tenant,channel")
    response = await client.get("/api/v1/report?by=tenant,channel&format=csv")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="livemetrics-report-by-tenant-channel-all.csv"'
    )
    assert await response.read() == _rendered(expected, "csv")

    response = await client.get("/api/v1/report?by=tenant,channel&format=xlsx&range=all")
    assert response.status == 200
    assert response.headers["Content-Type"] == XLSX
    assert (
        "livemetrics-report-by-tenant-channel-all.xlsx" in response.headers["Content-Disposition"]
    )
    sheet = openpyxl.load_workbook(io.BytesIO(await response.read()))["report"]
    header = [cell.value for cell in sheet[1]]
    rows = [
        dict(zip(header, [c.value for c in row], strict=True)) for row in sheet.iter_rows(min_row=2)
    ]
    assert [(r["tenant"], r["channel"]) for r in rows] == [
        (r["tenant"], r["channel"]) for r in expected["rows"]
    ]
    assert [r["conversations_started"] for r in rows] == [
        r["conversations_started"] for r in expected["rows"]
    ]

    response = await client.get("/api/v1/report?format=table")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert await response.read() == _rendered(_report(_replayed()), "table")


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ("by=queue", "unknown dimension 'queue'"),
        ("by=tenant,tenant", "names a dimension twice"),
        ("where=channel", "needs DIM=VALUE"),
        ("range=yesterday", "unknown --range 'yesterday'"),
        ("range=today&from=2026-10-23", "either --range or --from/--to"),
        ("from=23/10/2026", "needs a date YYYY-MM-DD"),
        ("format=pdf", "unknown format 'pdf'"),
        ("range=today&range=all", "'range' given more than once"),
        ("wher=channel=chat", "unknown parameter 'wher'"),
        ("preset=nope", "unknown preset 'nope'"),
        ("preset=agents&preset=themes", "'preset' given more than once"),
        ("preset=agents&by=agent", "--preset sets --by itself: drop --by"),
        ("preset=agents&by=tenant&by=day", "--preset sets --by itself: drop --by"),
        ("preset=themes&range=yesterday", "unknown --range 'yesterday'"),
        ("preset=agents&where=queue=1", "unknown dimension 'queue'"),
    ],
)
async def test_bad_report_options_are_400_with_the_query_error(
    api: tuple[TestClient[Any, Any], FakePipeline], parameters: str, message: str
) -> None:
    client, _ = api
    response = await client.get(f"/api/v1/report?{parameters}")
    assert response.status == 400
    body = await response.json()
    assert message in body["error"], body


CliReplay = Callable[..., tuple[int, bytes]]


@pytest.fixture(scope="module")
def cli_replay(tmp_path_factory: pytest.TempPathFactory) -> CliReplay:
    """`livemetrics replay` itself (its `main`, in process: argparse, `_query`, `_finish`)
    over the events the API's store holds; returns (exit code, what it wrote)."""
    home = Path(tmp_path_factory.mktemp("cli-replay"))
    events = home / "events.jsonl"
    events.write_bytes(b"".join(line + b"\n" for line in _lines()))
    config = home / "config.toml"
    config.write_text(STREAM_CONFIG)
    out = home / "report.out"

    def run(*options: str) -> tuple[int, bytes]:
        out.unlink(missing_ok=True)
        argv = ["replay", "--events", str(events), "--config", str(config), "--no-progress"]
        code = cli_main([*argv, "--output", str(out), *options])
        return code, out.read_bytes() if out.exists() else b""

    return run


PRESET_QUERIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    *((f"?preset={name}", ("--preset", name)) for name in PRESETS),
    ("?preset=agents&where=channel=chat", ("--preset", "agents", "--where", "channel=chat")),
    ("?preset=themes&tenant=acme&range=all",
     ("--preset", "themes", "--where", "tenant=acme", "--range", "all")),
    ("?preset=conversations&where=tenant=globex&from=2026-10-23&to=2026-10-24",
     ("--preset", "conversations", "--where", "tenant=globex",
      "--from", "2026-10-23", "--to", "2026-10-24")),
    ("?preset=channels&range=today", ("--preset", "channels", "--range", "today")),
    ("?preset=customers&by=", ("--preset", "customers", "--by", "")),  # empty: no --by
)  # fmt: skip


@pytest.mark.parametrize(
    ("parameters", "cli_options"), PRESET_QUERIES, ids=[q for q, _ in PRESET_QUERIES]
)
async def test_report_preset_is_what_the_cli_gives(
    api: tuple[TestClient[Any, Any], FakePipeline],
    cli_replay: CliReplay,
    parameters: str,
    cli_options: tuple[str, ...],
) -> None:
    client, _ = api
    response = await client.get(f"/api/v1/report{parameters}")
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    found = orjson.loads(await response.read())
    code, written = cli_replay(*cli_options, "--format", "json")
    assert code == 0
    assert found == orjson.loads(written)
    preset = PRESETS[cli_options[1]]
    assert found["preset"] == preset.name
    assert found["by"] == list(preset.by)
    assert [c["key"] for c in found["columns"]] == [c.key for c in preset.columns]
    assert found["rows"], "an empty preset proves nothing"


@pytest.mark.parametrize("preset", list(PRESETS))
async def test_report_preset_is_apply_preset_of_replays_report(
    api: tuple[TestClient[Any, Any], FakePipeline], preset: str
) -> None:
    client, _ = api
    response = await client.get(f"/api/v1/report?preset={preset}&range=all")
    assert response.status == 200, await response.text()
    expected = _preset_report(_replayed(), preset, range_name="all")
    assert orjson.loads(await response.read()) == expected


async def test_report_preset_as_csv_and_xlsx_is_the_clis_file(
    api: tuple[TestClient[Any, Any], FakePipeline], cli_replay: CliReplay
) -> None:
    client, _ = api
    response = await client.get("/api/v1/report?preset=agents&format=csv&range=all")
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="livemetrics-report-agents-all.csv"'
    )
    body = await response.read()
    code, written = cli_replay("--preset", "agents", "--range", "all", "--format", "csv")
    assert code == 0
    assert body == written
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    expected = _preset_report(_replayed(), "agents", range_name="all")
    assert list(rows[0]) == [c.key for c in PRESETS["agents"].columns]
    assert [r["agent"] for r in rows] == [r["agent"] or "" for r in expected["rows"]]

    response = await client.get("/api/v1/report?preset=themes&format=xlsx&tenant=acme")
    assert response.status == 200
    assert response.headers["Content-Type"] == XLSX
    assert "livemetrics-report-themes-all.xlsx" in response.headers["Content-Disposition"]
    code, written = cli_replay("--preset", "themes", "--where", "tenant=acme", "--format", "xlsx")
    assert code == 0

    def cells(data: bytes) -> list[list[Any]]:
        sheet = openpyxl.load_workbook(io.BytesIO(data))["report"]
        return [[cell.value for cell in row] for row in sheet.iter_rows()]

    assert cells(await response.read()) == cells(written)


async def test_unknown_preset_is_400_naming_every_preset(
    api: tuple[TestClient[Any, Any], FakePipeline],
) -> None:
    client, _ = api
    response = await client.get("/api/v1/report?preset=agent")
    assert response.status == 400
    error = (await response.json())["error"]
    assert error == f"unknown preset 'agent' (choose {', '.join(PRESETS)})"
    assert all(name in error for name in PRESETS)


async def test_preset_with_by_is_refused_with_the_clis_message(
    api: tuple[TestClient[Any, Any], FakePipeline],
    cli_replay: CliReplay,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, _ = api
    response = await client.get("/api/v1/report?preset=agents&by=agent")
    assert response.status == 400
    error = (await response.json())["error"]
    capsys.readouterr()
    code, _ = cli_replay("--preset", "agents", "--by", "agent")
    assert code == 2
    assert capsys.readouterr().err == f"livemetrics: {error}\n"


async def test_conversation_has_its_attributes_and_metrics_or_is_404(
    api: tuple[TestClient[Any, Any], FakePipeline],
) -> None:
    client, _ = api
    rows = _report(_replayed(), by="tenant,conversation")["rows"]
    rated = next(r for r in rows if r["csat_score"] is not None and r["agents"])
    response = await client.get(f"/api/v1/conversations/{rated['tenant']}/{rated['conversation']}")
    assert response.status == 200, await response.text()
    found = await response.json()
    assert found["tenant"] == rated["tenant"]
    assert found["conversation_id"] == rated["conversation"]
    assert found["attributes"]["csat_score"] == rated["csat_score"]
    assert found["attributes"]["agents"] == rated["agents"]
    assert found["attributes"]["status"] == rated["status"]
    for metric, value in found["metrics"].items():
        assert rated[metric] == value, metric
    assert found["metrics"]["conversations_started"] == rated["conversations_started"] == 1

    response = await client.get(f"/api/v1/conversations/acme/{quote(ODD_ID, safe='')}")
    assert response.status == 200
    odd = await response.json()
    assert odd["conversation_id"] == ODD_ID
    assert odd["attributes"]["agents"] == ["ag-odd"]
    assert odd["metrics"]["first_response_seconds"]["sum"] == 1.0

    other_tenant = "globex" if rated["tenant"] != "globex" else "acme"
    for path in (
        f"/api/v1/conversations/{rated['tenant']}/no-such-conversation",
        f"/api/v1/conversations/{other_tenant}/{rated['conversation']}",
    ):
        response = await client.get(path)
        assert response.status == 404
        assert "no conversation" in (await response.json())["error"]


async def test_live_has_every_tenants_gauges_and_the_event_clock(
    api: tuple[TestClient[Any, Any], FakePipeline],
) -> None:
    client, _ = api
    response = await client.get("/api/v1/live")
    assert response.status == 200
    live = await response.json()
    engine = _replayed().engine
    expected = tenant_totals(
        live_gauges(engine.conversations.values(), engine.presence, engine.clock_us)
    )
    assert live["clock_us"] == engine.clock_us
    assert live["clock"].endswith("Z")
    assert set(live["tenants"]) == set(expected)
    for tenant, gauges in expected.items():
        got = live["tenants"][tenant]["gauges"]
        assert {k: v for k, v in got.items() if v} == {k: float(v) for k, v in gauges.items() if v}


async def test_board_joins_report_metrics_and_gauges_per_tenant_team_and_channel(
    api: tuple[TestClient[Any, Any], FakePipeline],
) -> None:
    client, _ = api
    response = await client.get("/api/v1/board?range=all")
    assert response.status == 200
    board = await response.json()
    assert board["range"] == "all"
    assert board["breakdown_gauges"] == "complete"
    by_tenant = {r["tenant"]: r for r in _report(_replayed(), by="tenant")["rows"] if r["tenant"]}
    assert [t["tenant"] for t in board["tenants"]] == sorted(by_tenant)
    for entry in board["tenants"]:
        row, total = by_tenant[entry["tenant"]], entry["total"]
        assert total["first_response_p50"] == row["first_response_seconds"]["p50"]
        assert total["first_response_p90"] == row["first_response_seconds"]["p90"]
        assert total["sla_breaches"] == row["sla_breaches"]
        assert total["conversations_started"] == row["conversations_started"]
        assert (
            sum(team["open_conversations"] for team in entry["teams"])
            == (total["open_conversations"])
        )
        assert (
            sum(ch["open_conversations"] for ch in entry["channels"])
            == (total["open_conversations"])
        )
    response = await client.get("/api/v1/board?range=last-year")
    assert response.status == 400


async def test_stream_pushes_one_board_event_a_second(
    api: tuple[TestClient[Any, Any], FakePipeline],
) -> None:
    client, _ = api
    async with client.get("/api/v1/stream?range=all") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/event-stream"
        events = await _sse_events(response, 3)
    assert [name for name, _, _ in events] == ["board"] * 3
    boards = [orjson.loads(data) for _, data, _ in events]
    assert all(b["range"] == "all" and b["interval_seconds"] == 1.0 for b in boards)
    gaps = [round(b - a, 2) for (_, _, a), (_, _, b) in itertools.pairwise(events)]
    print(f"SSE intervals (s): {gaps}")


async def test_an_open_stream_ends_when_the_server_shuts_down(
    api: tuple[TestClient[Any, Any], FakePipeline],
) -> None:
    client, _ = api
    response = await client.get("/api/v1/stream")
    await _sse_events(response, 1)
    started = time.monotonic()
    # the screen stays connected; without the shutdown hook aiohttp would wait 60 s for it
    await asyncio.wait_for(client.server.close(), timeout=10)
    rest = await asyncio.wait_for(response.content.read(), timeout=5)
    assert rest.count(b"event: board") <= 10
    print(f"server closed {time.monotonic() - started:.2f}s after shutdown began")


async def test_openapi_describes_every_route_and_docs_link_it(
    api: tuple[TestClient[Any, Any], FakePipeline],
) -> None:
    client, _ = api
    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    document = orjson.loads(await response.read())
    assert document["openapi"] == "3.1.0"
    assert set(ROUTES) <= set(document["paths"])
    parameters = document["paths"]["/api/v1/report"]["get"]["parameters"]
    preset = next(p for p in parameters if p["name"] == "preset")
    assert preset["in"] == "query"
    assert preset["schema"] == {"type": "string", "enum": list(PRESETS)}
    assert "by" in preset["description"]
    assert all(p.title in preset["description"] for p in PRESETS.values())
    docs = await client.get("/api/docs")
    assert docs.status == 200
    assert docs.content_type == "text/html"
    assert 'href="/api/v1/openapi.json"' in await docs.text()


async def test_wallboard_is_served_at_root_and_is_self_contained(
    api: tuple[TestClient[Any, Any], FakePipeline],
) -> None:
    client, _ = api
    for path in ("/", "/wallboard"):
        response = await client.get(path)
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
        assert "EventSource" in page
        assert "/api/v1/stream" in page
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]
        for external in ('src="http', "src='http", 'href="http', "url(http", "@import"):
            assert external not in page


async def test_every_route_needs_the_token_when_one_is_set(
    api: tuple[TestClient[Any, Any], FakePipeline],
) -> None:
    client, pipeline = api
    pipeline.settings.api_token = "s3cret"
    paths = [r.replace("{tenant}", "acme").replace("{conversation_id}", "x") for r in ROUTES]
    for path in [*paths, "/"]:
        response = await client.get(path)
        assert response.status == 401, path
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "authentication required" in (await response.json())["error"]
        wrong = await client.get(path, headers={"Authorization": "Bearer nope"})
        assert wrong.status == 401, path
    for path in ("/api/v1/report", "/api/v1/live", "/api/v1/openapi.json", "/wallboard"):
        response = await client.get(path, headers={"Authorization": "Bearer s3cret"})
        assert response.status == 200, path
    for path in ("/", "/wallboard", "/api/v1/board", "/api/docs"):  # pages take ?token=
        assert (await client.get(f"{path}?token=s3cret")).status == 200, path
    async with client.get("/api/v1/stream?token=s3cret") as response:
        assert response.status == 200
    for path in ("/api/v1/report", "/api/v1/live"):  # data routes take the header only
        assert (await client.get(f"{path}?token=s3cret")).status == 401, path


# --- the live stack: one real worker ---------------------------------------------


@dataclass
class LiveStack:
    broker: EmbeddedBroker
    redis: EmbeddedRedis
    home: Path
    config_path: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start_worker(self, web_port: int) -> None:
        log = (self.home / f"worker-{len(self.workers)}.log").open("ab")
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
                "livemetrics-web-test",
                "--web-port",
                str(web_port),
                "--data-dir",
                str(self.home / f"worker-{len(self.workers)}"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.workers.append(process)

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


def worker_registers_web_or_fail() -> None:
    """The worker must call `register_web` in `create_app`; say so plainly if it does not."""
    import livemetrics.stream.worker as worker

    if not (hasattr(worker, "register_web") or "register_web(" in inspect.getsource(worker)):
        pytest.fail(
            "livemetrics.stream.worker does not register the HTTP API: add "
            "`from livemetrics.web.api import register_web` and call "
            "`register_web(app, pipeline)` in create_app()"
        )


@pytest.fixture
def live_stack(tmp_path: Path) -> Iterator[LiveStack]:
    broker_binary_or_skip()
    redis_server_or_skip()
    worker_registers_web_or_fail()
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


async def wait_for_report(
    session: aiohttp.ClientSession, stack: LiveStack, path: str, expected: dict[str, Any]
) -> None:
    """Poll `path` until its JSON equals `expected` (bounded; fails with the worker logs)."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    last: Any = None
    while time.monotonic() < deadline:
        for process in stack.workers:
            assert process.poll() is None, stack.logs()
        try:
            async with session.get(path) as response:
                last = (response.status, await response.read())
            if last[0] == 200 and orjson.loads(last[1]) == expected:
                return
        except aiohttp.ClientConnectionError as exc:  # the web server is not up yet
            last = exc
        await asyncio.sleep(1.0)
    pytest.fail(
        f"{path} != replay after {SETTLE_TIMEOUT}s; last answer {last!r:.500}\n{stack.logs()}"
    )


async def test_worker_serves_the_api_for_live_traffic(live_stack: LiveStack) -> None:
    lines = generate_stream(31, conversations=120)
    events = live_stack.home / "events.jsonl"
    events.write_bytes(b"".join(line + b"\n" for line in lines))
    port = free_port()
    live_stack.start_worker(port)
    await produce_file(live_stack.broker.bootstrap, events)
    result = replay_lines(lines, _config())
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession(base) as session:
        await wait_for_report(session, live_stack, "/api/v1/report?by=tenant", _report(result))
        await _check_endpoints(session, result)


async def _check_endpoints(session: aiohttp.ClientSession, result: ReplayResult) -> None:
    async with session.get("/api/v1/report?by=agent&where=channel=chat") as response:
        assert orjson.loads(await response.read()) == _report(
            result, by="agent", where=["channel=chat"]
        )
    async with session.get("/api/v1/report?by=tenant,day&format=csv") as response:
        assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
        body = await response.read()
    assert body == _rendered(_report(result, by="tenant,day"), "csv")
    assert {r["tenant"] for r in csv.DictReader(io.StringIO(body.decode()))} >= {"acme", "globex"}
    async with session.get("/api/v1/report?preset=agents&where=channel=chat") as response:
        assert response.status == 200
        assert orjson.loads(await response.read()) == _preset_report(
            result, "agents", where=["channel=chat"]
        )
    async with session.get("/api/v1/report?by=team&format=xlsx") as response:
        assert response.headers["Content-Type"] == XLSX
        workbook = openpyxl.load_workbook(io.BytesIO(await response.read()))
    assert workbook["report"].max_row == len(_report(result, by="team")["rows"]) + 1

    row = next(r for r in _report(result, by="tenant,conversation")["rows"] if r["agents"])
    async with session.get(f"/api/v1/conversations/{row['tenant']}/{row['conversation']}") as found:
        assert found.status == 200
        conversation = await found.json()
    assert conversation["attributes"]["agents"] == row["agents"]
    assert conversation["metrics"]["response_seconds"] == row["response_seconds"]
    async with session.get(f"/api/v1/conversations/{row['tenant']}/nope") as missing:
        assert missing.status == 404

    async with session.get("/api/v1/live") as response:
        live = await response.json()
    assert live["clock_us"] == result.now_us
    assert {"acme", "globex"} <= set(live["tenants"])

    async with session.get("/api/v1/openapi.json") as response:
        assert set(ROUTES) <= set(orjson.loads(await response.read())["paths"])
    async with session.get("/api/v1/report?by=queue") as response:
        assert response.status == 400
        assert "unknown dimension 'queue'" in (await response.json())["error"]

    async with session.get("/api/v1/stream?range=all") as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        events = await _sse_events(response, 2)
    board = orjson.loads(events[-1][1])
    assert board["breakdown_gauges"] == "complete"  # one worker owns every partition
    totals = {t["tenant"]: t["total"] for t in board["tenants"]}
    for expected in _report(result, by="tenant")["rows"]:
        if expected["tenant"] is not None:
            assert totals[expected["tenant"]]["sla_breaches"] == expected["sla_breaches"]
    async with session.get("/") as response:
        assert response.status == 200
        assert "livemetrics · wall board" in await response.text()
