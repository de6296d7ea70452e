"""`livemetrics status`: consumer lag per input partition and what the workers applied."""

from __future__ import annotations

import asyncio

from rich.console import Console
from rich.table import Table

from livemetrics.clients import redis_client
from livemetrics.kafka_admin import partition_lag
from livemetrics.sinks.redis_store import RedisStore
from livemetrics.stack.info import resolve_bootstrap, resolve_redis_url

INPUTS = ("chat.events", "chat.agent-status")
STATUS_PARTITION_BASE = 1000  # status-topic partitions are stored as 1000 + n


async def _collect(bootstrap: str, redis_url: str, app_id: str) -> tuple[list, dict]:
    lags = await partition_lag(bootstrap, app_id, INPUTS)
    client = redis_client(redis_url)
    try:
        applied = await RedisStore(client).partition_status()
    finally:
        await client.aclose()
    return lags, applied


def print_status(bootstrap: str | None, redis_url: str | None, app_id: str) -> int:
    bootstrap = resolve_bootstrap(bootstrap)
    redis_url = resolve_redis_url(redis_url)
    if not bootstrap or not redis_url:
        raise SystemExit(
            "livemetrics: no stack found: pass --bootstrap and --redis-url, or run `up`"
        )
    lags, applied = asyncio.run(_collect(bootstrap, redis_url, app_id))
    table = Table(
        "topic",
        "partition",
        "committed",
        "end",
        "lag",
        "processed",
        "dead letters",
        "duplicates",
        title="livemetrics status",
    )
    totals = {"processed": 0, "dead_lettered": 0, "duplicates": 0, "lag": 0}
    for lag in lags:
        number = lag.partition + (STATUS_PARTITION_BASE if lag.topic != INPUTS[0] else 0)
        counters = applied.get(number, {})
        for name in ("processed", "dead_lettered", "duplicates"):
            totals[name] += counters.get(name, 0)
        totals["lag"] += lag.lag
        table.add_row(
            lag.topic,
            str(lag.partition),
            "-" if lag.committed is None else str(lag.committed),
            str(lag.end),
            str(lag.lag),
            str(counters.get("processed", 0)),
            str(counters.get("dead_lettered", 0)),
            str(counters.get("duplicates", 0)),
        )
    console = Console()
    console.print(table)
    console.print(
        f"total: lag {totals['lag']}, processed {totals['processed']}, "
        f"dead-lettered {totals['dead_lettered']}, deduplicated {totals['duplicates']}"
    )
    return 0
