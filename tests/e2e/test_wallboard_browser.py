"""The wall board in a real browser: headless Chromium on a live worker's `/wallboard`.

Broker, Redis and one worker run as in `tests/integration/test_http_api.py`;
Chromium is driven over the DevTools protocol (aiohttp's websocket client, no
extra dependency). While the second half of a generated stream is produced,
the page must show every tenant, and its numbers must move between two
screenshots, pushed over Server-Sent Events. Skips only when Chromium is not
installed (`apt-get install -y chromium`).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from livemetrics.kafka_admin import ensure_topics
from livemetrics.produce import produce_file
from livemetrics.simulate.streams import STREAM_CONFIG, generate_stream
from livemetrics.stack.broker import EmbeddedBroker
from livemetrics.stack.ports import free_port
from livemetrics.stack.redis_server import EmbeddedRedis
from tests.integration.conftest import broker_binary_or_skip, redis_server_or_skip
from tests.integration.test_http_api import LiveStack, worker_registers_web_or_fail

TENANTS = ("acme", "globex", "initech")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,800",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
)


def chromium_or_skip() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium: apt-get install -y chromium")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[LiveStack]:
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
        started = LiveStack(broker, redis, tmp_path, config_path)
        try:
            yield started
        finally:
            started.stop()


class DevTools:
    """Just enough of the Chrome DevTools protocol: call a method, await its result."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        request = {"id": call_id, "method": method, "params": params}
        await self.socket.send_str(orjson.dumps(request).decode())  # DevTools speaks text frames
        while True:
            message = orjson.loads(await asyncio.wait_for(self.socket.receive_str(), 10))
            if message.get("id") == call_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        found = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return found["result"].get("value")

    async def screenshot(self, path: Path) -> bytes:
        import base64

        data = base64.b64decode((await self.call("Page.captureScreenshot", format="png"))["data"])
        path.write_bytes(data)
        return data


@asynccontextmanager
async def chromium(url: str, home: Path) -> AsyncIterator[DevTools]:
    """Headless Chromium showing `url` (fresh profile), its page target over DevTools."""
    profile = home / "chromium-profile"
    log = (home / "chromium.log").open("ab")
    process = subprocess.Popen(
        [chromium_or_skip(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 20
        while not (port_file.exists() and port_file.read_text().strip()):
            assert process.poll() is None, (home / "chromium.log").read_text(errors="replace")
            assert time.monotonic() < deadline, "Chromium did not open its DevTools port"
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        async with aiohttp.ClientSession() as session:
            targets: list[dict[str, Any]] = []
            while not any(t.get("type") == "page" for t in targets):
                async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                    targets = await response.json()
            page = next(t for t in targets if t.get("type") == "page")
            async with session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as socket:
                yield DevTools(socket)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


async def wait_until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not within {timeout:g} s")
        await asyncio.sleep(0.25)


async def test_wall_board_shows_every_tenant_and_its_numbers_move(stack: LiveStack) -> None:
    chromium_or_skip()
    lines = generate_stream(41, conversations=120)
    half = len(lines) // 2
    first, second = stack.home / "first.jsonl", stack.home / "second.jsonl"
    first.write_bytes(b"".join(line + b"\n" for line in lines[:half]))
    second.write_bytes(b"".join(line + b"\n" for line in lines[half:]))
    port = free_port()
    stack.start_worker(port)
    await produce_file(stack.broker.bootstrap, first)
    base = f"http://127.0.0.1:{port}"

    async def tenants_on_board() -> bool:
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.get(f"{base}/api/v1/board?range=all") as response,
            ):
                board = await response.json() if response.status == 200 else {"tenants": []}
        except aiohttp.ClientConnectionError:
            return False
        return {t["tenant"] for t in board["tenants"]} >= set(TENANTS)

    await wait_until(tenants_on_board, 60, f"the worker's board listing {TENANTS}\n{stack.logs()}")

    board_text = "document.getElementById('board').innerText"
    async with chromium(f"{base}/wallboard?range=all", stack.home) as page:
        await wait_until(
            lambda: page.evaluate("(window.livemetrics?.updates.length ?? 0) >= 2"),
            20,
            "two board updates in the page",
        )
        before = await page.evaluate(board_text)
        shot_before = await page.screenshot(stack.home / "wallboard-1.png")
        await produce_file(stack.broker.bootstrap, second)  # traffic flows while it shows

        async def moved() -> Any:
            text = await page.evaluate(board_text)
            return text if text != before else None

        after = await wait_until(moved, 30, "a change of the board's numbers")
        await asyncio.sleep(3)  # a few more pushes, for the interval measurement
        after = await page.evaluate(board_text)
        shot_after = await page.screenshot(stack.home / "wallboard-2.png")
        transport = await page.evaluate("window.livemetrics.transport")
        updates: list[float] = await page.evaluate("window.livemetrics.updates")
        status = await page.evaluate("document.getElementById('status').dataset.state")

    for tenant in TENANTS:
        assert tenant in before and tenant in after
    assert before != after
    assert shot_before != shot_after
    assert transport == "sse"
    assert status == "live"
    gaps = [(b - a) / 1000 for a, b in itertools.pairwise(updates)]
    assert len(gaps) >= 3
    print(
        f"browser updates: {len(updates)}, interval median {statistics.median(gaps):.3f} s, "
        f"max {max(gaps):.3f} s; screenshots in {stack.home}"
    )
