"""Customer data stays where it belongs: canaries through a real worker (SPEC §3 "Names", §6).

Traffic carries canary values: a customer name, message text, a free-form tag,
a conversation id and a customer id. After a real worker (logging at INFO)
processed it, with `store_text = false`:

- no Prometheus label on the worker's `/metrics` holds any of them;
- no Redis key name holds any of them (every key is SCANned);
- no Redis value holds the message text; the customer name is only in the
  conversation's attributes (SPEC §3 lists `customer_name` among them,
  independent of `store_text`: reported to the lead as a decision to confirm);
- no worker log line holds any of them (bad input included: it goes to the
  dead-letter topic, never to the log).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from livemetrics.produce import produce_file
from livemetrics.security import redis_client_options
from livemetrics.simulate.streams import STREAM_CONFIG, generate_stream
from livemetrics.sinks.redis_store import RedisStore
from livemetrics.stack.ports import free_port, spawn_in_group, stop_group
from tests.integration.conftest import redis_server_or_skip
from tests.integration.test_pipeline import LiveStack, _write, live_stack
from tests.unit.test_security import make_pki

__all__ = ["live_stack"]  # the fixture, imported so pytest finds it here

NAME = "CANARY-NAME Zoë Canarysdóttir"
TEXT = "CANARY-TEXT my card is 4111 1111 1111 1111"
TAG = "CANARY-TAG-free-form"
CUSTOMER = "CANARY-CUSTOMER-77"
CONVERSATION = "CANARY-CONVERSATION-42"
CANARIES = ("CANARY-NAME", "Canarysdóttir", "CANARY-TEXT", "4111 1111", TAG, CUSTOMER, CONVERSATION)
NOT_IN_VALUES = ("CANARY-TEXT", "4111 1111")  # message text, with store_text = false


def _canary_conversation(tenant: str) -> list[bytes]:
    base = {"tenant": tenant, "conversation_id": CONVERSATION}
    events: list[dict[str, Any]] = [
        {"type": "conversation.started", "channel": "chat", "direction": "inbound",
         "customer_id": CUSTOMER, "customer_name": NAME, "theme": "billing"},
        {"type": "message.sent", "sender": "customer", "text": TEXT},
        {"type": "conversation.assigned", "agent_id": "ag-canary", "via": "routing",
         "team_id": "team-support"},
        {"type": "message.sent", "sender": "agent", "agent_id": "ag-canary",
         "text": f"Hello {NAME}, about '{TEXT}'"},
        {"type": "conversation.tagged", "tag": TAG},
        {"type": "conversation.rated", "survey": "csat", "score": 5},
        {"type": "conversation.resolved", "agent_id": "ag-canary"},
        {"type": "conversation.closed"},
    ]  # fmt: skip
    lines = [
        orjson.dumps(
            {"event_id": f"canary-{i}", "ts": f"2026-10-23T10:{i:02d}:00Z", **base, **event}
        )
        for i, event in enumerate(events)
    ]
    bad = [  # bad input holding the canaries: dead-lettered, never logged
        orjson.dumps({**base, "type": "message.sent", "text": TEXT, "customer_name": NAME})[:-3],
        orjson.dumps({**base, "event_id": "canary-bad", "type": "message.sent",
                      "ts": "2026-10-23T10:30:00Z", "sender": "robot", "text": TEXT}),
    ]  # fmt: skip
    return lines + bad


def _start_worker(stack: LiveStack, web_port: int) -> subprocess.Popen[bytes]:
    """`livemetrics worker` at INFO (more log lines to leak from), on a known web port."""
    log = (stack.home / "worker-canary.log").open("ab")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "livemetrics.cli", "worker",
            "--bootstrap", stack.broker.bootstrap, "--redis-url", stack.redis.url,
            "--config", str(stack.config_path), "--app-id", "livemetrics-canary",
            "--web-port", str(web_port), "--data-dir", str(stack.home / "worker-canary"),
            "--loglevel", "info",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    stack.workers.append(process)  # stopped by the fixture
    return process


async def _applied(redis_url: str) -> int:
    client = aioredis.from_url(redis_url)
    try:
        status = await RedisStore(client).partition_status()
    finally:
        await client.aclose()
    return sum(
        row.get(name, 0)
        for row in status.values()
        for name in ("processed", "duplicates", "dead_lettered")
    )


async def _redis_dump(redis_url: str) -> dict[bytes, list[bytes]]:
    """Every key with every piece of its value (hash fields and values, set members...)."""
    client = aioredis.from_url(redis_url)
    dump: dict[bytes, list[bytes]] = {}
    try:
        async for key in client.scan_iter(count=500):
            kind = (await client.type(key)).decode()
            if kind == "string":
                dump[key] = [await client.get(key)]
            elif kind == "hash":
                dump[key] = [x for kv in (await client.hgetall(key)).items() for x in kv]
            elif kind == "set":
                dump[key] = list(await client.smembers(key))
            elif kind == "list":
                dump[key] = list(await client.lrange(key, 0, -1))
            elif kind == "zset":
                dump[key] = [m for m, _ in await client.zrange(key, 0, -1, withscores=True)]
            else:
                dump[key] = [kind.encode()]
    finally:
        await client.aclose()
    return dump


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        body: bytes = response.read()
    return body.decode()


def test_canaries_reach_no_label_key_text_value_or_log_line(live_stack: LiveStack) -> None:
    live_stack.config_path.write_text(
        STREAM_CONFIG.replace("store_text = true", "store_text = false")
    )
    assert "store_text = false" in live_stack.config_path.read_text()
    lines = generate_stream(51, conversations=40) + _canary_conversation("acme")
    path = _write(live_stack.home / "events.jsonl", lines)
    port = free_port()
    worker = _start_worker(live_stack, port)
    counts = asyncio.run(produce_file(live_stack.broker.bootstrap, path))
    produced = counts.events + counts.status
    deadline = time.monotonic() + 90
    while asyncio.run(_applied(live_stack.redis.url)) < produced:
        assert worker.poll() is None, live_stack.logs()
        assert time.monotonic() < deadline, "the worker did not process the input in time"
        time.sleep(1)
    time.sleep(3)  # a tick and a gauge snapshot after the last batch

    metrics = _scrape(port)
    assert "livemetrics_tag_count_total" in metrics and "livemetrics_csat_score" in metrics
    label_lines = [line for line in metrics.splitlines() if "{" in line]
    for canary in CANARIES:
        assert not [line for line in label_lines if canary in line], canary

    dump = asyncio.run(_redis_dump(live_stack.redis.url))
    assert dump, "nothing in Redis"
    for key, parts in dump.items():
        for canary in CANARIES:
            assert canary.encode() not in key, key
        for canary in NOT_IN_VALUES:
            assert not [p for p in parts if canary.encode() in p], (key, canary)
    holders = {key for key, parts in dump.items() for part in parts if b"CANARY-NAME" in part}
    assert holders == {b"lm:{acme}:c"}  # the conversation attributes only (see module doc)
    fields = dump[b"lm:{acme}:c"]
    conversations = dict(zip(fields[::2], fields[1::2], strict=True))
    attributes = orjson.loads(conversations[CONVERSATION.encode()])[3]  # the blob's slot 3
    assert NAME in attributes

    worker_log = (live_stack.home / "worker-canary.log").read_text(errors="replace")
    assert "livemetrics" in worker_log  # INFO lines were written
    for canary in CANARIES:
        assert canary not in worker_log, canary


# --- in transit: Redis over TLS with an ACL user, as `redis_client_options` sets it up ---


def test_redis_options_connect_over_mutual_tls_with_an_acl_user(tmp_path: Path) -> None:
    """A real redis-server requiring TLS client certificates and an ACL user (no `default`):
    the options from `redis_client_options` connect and store; without the client
    certificate, with a wrong password or over plain TCP, nothing gets through."""
    redis_server_or_skip()
    pki = make_pki(tmp_path)
    port = free_port()
    process = spawn_in_group(
        [
            shutil.which("redis-server") or "redis-server",
            "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
            "--tls-cert-file", str(pki.server_cert), "--tls-key-file", str(pki.server_key),
            "--tls-ca-cert-file", str(pki.ca), "--tls-auth-clients", "yes",
            "--user", "default", "off",
            "--user", "livemetrics", "on", ">s3cret-pw", "~lm:*", "&*", "+@all",
            "--save", "", "--appendonly", "no", "--dir", str(tmp_path),
        ],
        tmp_path / "redis-tls.log",
    )  # fmt: skip
    url = f"rediss://127.0.0.1:{port}/0"
    env = {
        "LIVEMETRICS_REDIS_USERNAME": "livemetrics",
        "LIVEMETRICS_REDIS_PASSWORD": "s3cret-pw",
        "LIVEMETRICS_REDIS_SSL_CAFILE": str(pki.ca),
        "LIVEMETRICS_REDIS_SSL_CERTFILE": str(pki.client_cert),
        "LIVEMETRICS_REDIS_SSL_KEYFILE": str(pki.client_key),
    }
    try:
        assert asyncio.run(_store_and_read(url, redis_client_options(env, url))) == 7
        no_cert = {k: v for k, v in env.items() if "CERTFILE" not in k and "KEYFILE" not in k}
        wrong_password = {**env, "LIVEMETRICS_REDIS_PASSWORD": "guess"}
        for options in (
            redis_client_options(no_cert, url),
            redis_client_options(wrong_password, url),
        ):
            with pytest.raises((RedisError, OSError)):
                asyncio.run(_store_and_read(url, options))
        with pytest.raises((RedisError, OSError)):
            asyncio.run(_store_and_read(f"redis://127.0.0.1:{port}/0", {}))
    finally:
        stop_group(process)


async def _store_and_read(url: str, options: dict[str, Any]) -> int:
    deadline = time.monotonic() + 10
    client = aioredis.from_url(url, socket_timeout=2, **options)
    try:
        while True:  # wait for the server to listen (connection refused until then)
            try:
                await client.ping()
                break
            except (ConnectionRefusedError, RedisConnectionError) as exc:
                if "refused" not in str(exc).lower() or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        await RedisStore(client).write([], [], 7)
        return await RedisStore(client).clock_us()
    finally:
        await client.aclose()
