"""A live terminal wall board, redrawn every second from Redis.

It shows the same board document as the web wall board (`livemetrics.web.board`):
per tenant the live gauges (open, waiting, oldest wait, at risk, agents online)
and today's report figures (started, resolved, FRT p50/p90, CSAT %, SLA
breaches), then today's figures per team. It reads what `livemetrics report`
reads, so board and reports agree. Tables stay within 80 columns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from livemetrics.clients import redis_client
from livemetrics.config import Config
from livemetrics.sinks.redis_store import RedisStore, live_reports
from livemetrics.web.board import board_queries, build_board

RANGE = "today"
MAX_TEAM_ROWS = 10

NOW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("open", "open_conversations"),
    ("waiting", "waiting_first_response"),
    ("oldest s", "oldest_waiting_seconds"),
    ("at risk", "sla_at_risk"),
    ("agents", "agents_online"),
)
TODAY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("started", "conversations_started"),
    ("resolved", "conversations_resolved"),
    ("FRT p50", "first_response_p50"),
    ("FRT p90", "first_response_p90"),
    ("CSAT %", "csat_percent"),
    ("breaches", "sla_breaches"),
)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return f"{value:,}"


def render_board(
    board: Mapping[str, Any], uptime_s: float, max_team_rows: int = MAX_TEAM_ROWS
) -> Group:
    """Tables for one board document (`build_board`): now, today, today by team."""
    clock = (board.get("clock") or "-").replace("T", " ")[:19]
    tenants = board.get("tenants") or []
    now = Table(title=f"livemetrics · {clock} UTC · up {uptime_s:.0f}s", title_justify="left")
    today = Table(title="today (tenant-local)", title_justify="left")
    for table, columns in ((now, NOW_COLUMNS), (today, TODAY_COLUMNS)):
        table.add_column("tenant", overflow="ellipsis", max_width=14)
        for title, _ in columns:
            table.add_column(title, justify="right")
    teams = Table(title="today by team", title_justify="left", caption="Ctrl-C stops the stack")
    teams.add_column("tenant / team", overflow="ellipsis", max_width=24)
    for title, _ in TODAY_COLUMNS:
        teams.add_column(title, justify="right")
    team_rows: list[tuple[int, list[str]]] = []
    for entry in tenants:
        total = entry["total"]
        now.add_row(entry["tenant"], *(_cell(total.get(f)) for _, f in NOW_COLUMNS))
        today.add_row(entry["tenant"], *(_cell(total.get(f)) for _, f in TODAY_COLUMNS))
        for row in entry.get("teams") or []:
            cells = [f"{entry['tenant']} / {row.get('team') or '(none)'}"]
            cells += [_cell(row.get(f)) for _, f in TODAY_COLUMNS]
            team_rows.append((int(row.get("conversations_started") or 0), cells))
    team_rows.sort(key=lambda item: -item[0])
    for _, cells in team_rows[:max_team_rows]:
        teams.add_row(*cells)
    if len(team_rows) > max_team_rows:
        teams.add_row(f"… {len(team_rows) - max_team_rows} more", *([""] * len(TODAY_COLUMNS)))
    return Group(now, today, teams)


async def read_board(store: RedisStore, config: Config) -> dict[str, Any]:
    """The board document from Redis alone (gauges per tenant, as every worker wrote them)."""
    reports, clock_us = await live_reports(
        store.client, config, board_queries(RANGE), store.keys.prefix
    )
    by_tenant, by_team, by_channel = reports
    gauges = await store.read_gauges()
    return build_board(
        by_tenant, by_team, by_channel, gauges, None, clock_us=clock_us, range_name=RANGE
    )


def run_view(redis_url: str, config: Config, should_stop: Any) -> None:
    """Redraw until `should_stop()` is true."""
    started = time.monotonic()

    async def loop() -> None:
        client = redis_client(redis_url)
        store = RedisStore(client)
        try:
            board = await read_board(store, config)
            with Live(
                render_board(board, time.monotonic() - started),
                console=Console(),
                refresh_per_second=2,
            ) as live:
                while not should_stop():
                    await asyncio.sleep(1.0)
                    board = await read_board(store, config)
                    live.update(render_board(board, time.monotonic() - started))
        finally:
            await client.aclose()

    asyncio.run(loop())
