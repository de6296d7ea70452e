"""Status changes and the smaller event types (SPEC §3, §7 [8], [12], [24]-[26], D14, D24-D28).

Resolve and close are counted once per cycle; a reopen starts a new cycle.
Both end the current turn and stop every SLA clock.
"""

from __future__ import annotations

from livemetrics.engine import sessions, sla
from livemetrics.engine.context import TIMER_RETENTION, Context, seconds
from livemetrics.engine.handling import is_waiting
from livemetrics.engine.state import CLOSED, NO_SIDE, OPEN, RESOLVED
from livemetrics.event_types import (
    AgentFocusEnded,
    AgentFocusStarted,
    ConversationResolved,
    ConversationTagged,
    ConversationTransaction,
)


def on_resolved(ctx: Context, ts_us: int, body: ConversationResolved) -> None:
    conv = ctx.conv
    if conv.status != OPEN:
        return
    conv.status = RESOLVED
    resolver = body.agent_id
    credit: tuple[str, ...] = (resolver,) if resolver else ctx.last_agent_credit()
    ctx.observe("conversations_resolved", 1, ts_us, credit)
    ctx.observe("resolution_seconds", seconds(ts_us, conv.cycle_start_us), ts_us, credit)
    if resolver is None and not conv.human_wrote:
        ctx.observe("automated_conversations", 1, ts_us, credit)
    _end_cycle_work(ctx, ts_us)
    conv.cycle_handled = True  # a resolved cycle's close adds no handle time (D24)


def on_closed(ctx: Context, ts_us: int) -> None:
    conv = ctx.conv
    if conv.status == CLOSED:
        return
    conv.status = CLOSED
    credit = ctx.last_agent_credit()
    ctx.observe("conversations_closed", 1, ts_us, credit)
    if is_waiting(ctx):
        ctx.observe("unanswered_conversations", 1, ts_us, credit)
    if not conv.ratings:
        conv.unrated.append(ctx.observe_kept("conversations_unrated", 1, ts_us, credit))
    for agent, started_us in list(conv.focus.items()):
        _end_focus(ctx, ts_us, agent, started_us)
    sessions.on_close(ctx)
    _end_cycle_work(ctx, ts_us)
    conv.closed_us = ts_us
    ctx.timers.schedule(ts_us + ctx.retention_us, conv.key, TIMER_RETENTION, None)


def on_reopened(ctx: Context, ts_us: int) -> None:
    conv = ctx.conv
    if conv.status == OPEN:
        return
    conv.status = OPEN
    conv.closed_us = None
    ctx.observe("conversations_reopened", 1, ts_us, ctx.last_agent_credit())
    conv.cycle += 1
    conv.cycle_start_us = ts_us
    conv.cycle_assigned_us = None
    conv.cycle_handled = False
    sla.start_clock(ctx, "resolution", conv.cycle, ts_us)


def _end_cycle_work(ctx: Context, ts_us: int) -> None:
    """What resolve and close share: handle time once per cycle, end the turn, stop clocks."""
    conv = ctx.conv
    if not conv.cycle_handled and conv.cycle_assigned_us is not None:
        conv.cycle_handled = True
        value = seconds(ts_us, conv.cycle_assigned_us)
        ctx.observe("handle_seconds", value, ts_us, ctx.last_agent_credit())
    conv.side = NO_SIDE
    sla.stop_clocks(ctx, ts_us)


def on_tagged(ctx: Context, ts_us: int, body: ConversationTagged) -> None:
    ctx.observe("tag_count", 1, ts_us, ctx.last_agent_credit(), tag=body.tag)


def on_transaction(ctx: Context, ts_us: int, body: ConversationTransaction) -> None:
    conv = ctx.conv
    credit = ctx.last_agent_credit()
    metric = f"transaction_amount_{body.currency}"
    ctx.observe(metric, body.amount, ts_us, credit)
    if not conv.converted:
        conv.converted = True
        ctx.observe("converted_conversations", 1, ts_us, credit)


def on_focus_started(ctx: Context, ts_us: int, body: AgentFocusStarted) -> None:
    ctx.conv.focus.setdefault(body.agent_id, ts_us)


def on_focus_ended(ctx: Context, ts_us: int, body: AgentFocusEnded) -> None:
    agent = body.agent_id
    started_us = ctx.conv.focus.get(agent)
    if started_us is not None:
        _end_focus(ctx, ts_us, agent, started_us)


def _end_focus(ctx: Context, ts_us: int, agent: str, started_us: int) -> None:
    del ctx.conv.focus[agent]
    credit: tuple[str, ...] = (agent,)
    ctx.observe("focus_seconds", seconds(ts_us, started_us), ts_us, credit)
    ctx.observe("focus_count", 1, ts_us, credit)
