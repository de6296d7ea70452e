"""Bot handling and waiting for a human (SPEC §2 "Handling", "Waiting", §7 [10], [11], D10-D12)."""

from __future__ import annotations

from livemetrics.engine import sla
from livemetrics.engine.context import Context


def end_bot_handling(ctx: Context, ts_us: int) -> None:
    """End bot handling at this event; waiting starts here if the customer wrote during it."""
    conv = ctx.conv
    if not conv.bot:
        return
    conv.bot = False
    conv.handoff_us = ts_us
    if conv.customer_wrote_in_bot:
        start_waiting(ctx, ts_us)


def start_waiting(ctx: Context, ts_us: int) -> None:
    """Waiting starts once per conversation (SPEC §7 [11]) and starts the first-response clock."""
    conv = ctx.conv
    if conv.waiting_since is not None or conv.first_response_done:
        return
    conv.waiting_since = ts_us
    sla.start_clock(ctx, "first_response", 0, ts_us)


def is_waiting(ctx: Context) -> bool:
    conv = ctx.conv
    return conv.waiting_since is not None and not conv.first_response_done
