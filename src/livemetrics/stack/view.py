"""A live terminal wall board: the Redis report by tenant, redrawn every second.

It reads what `livemetrics report` reads, so the board and the reports agree.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as aioredis
from rich.console import Console
from rich.live import Live
from rich.table import Table

from livemetrics.aggregate.query import ReportQuery
from livemetrics.clients import redis_client
from livemetrics.config import Config
from livemetrics.sinks.redis_store import RedisStore, live_report

COLUMNS: tuple[tuple[str, str, str | None], ...] = (
    ("started", "conversations_started", None),
    ("resolved", "conversations_resolved", None),
    ("FRT p50 s", "first_response_seconds", "p50"),
    ("FRT p90 s", "first_response_seconds", "p90"),
    ("resp p50 s", "response_seconds", "p50"),
    ("CSAT 4-5", "csat_satisfied", None),
    ("CSAT 1-2", "csat_unsatisfied", None),
    ("SLA breaches", "sla_breaches", None),
    ("dead letters", "invalid_events", None),
)


def _cell(row: dict[str, Any], metric: str, field: str | None) -> str:
    value = row[metric] if field is None else row[metric][field]
    if value is None:
        return "-"
    return f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"


def _table(report: dict[str, Any], clock_us: int, started: float) -> Table:
    clock = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(clock_us / 1e6)) if clock_us else "-"
    table = Table(
        title=f"livemetrics · event clock {clock} UTC · up {time.monotonic() - started:.0f}s",
        caption="Ctrl-C stops the stack",
    )
    table.add_column("tenant")
    for title, _, _ in COLUMNS:
        table.add_column(title, justify="right")
    for row in report["rows"]:
        table.add_row(row["tenant"] or "(none)", *(_cell(row, m, f) for _, m, f in COLUMNS))
    return table


async def _snapshot(client: aioredis.Redis, config: Config) -> tuple[dict[str, Any], int]:
    report = await live_report(client, config, ReportQuery.parse(by="tenant"))
    return report, await RedisStore(client).clock_us()


def run_view(redis_url: str, config: Config, should_stop: Any) -> None:
    """Redraw until `should_stop()` is true."""
    started = time.monotonic()

    async def loop() -> None:
        client = redis_client(redis_url)
        try:
            report, clock = await _snapshot(client, config)
            with Live(
                _table(report, clock, started), console=Console(), refresh_per_second=2
            ) as live:
                while not should_stop():
                    await asyncio.sleep(1.0)
                    report, clock = await _snapshot(client, config)
                    live.update(_table(report, clock, started))
        finally:
            await client.aclose()

    asyncio.run(loop())
