"""`conversation.assigned`: ownership, handoffs, transfers, queue wait.

SPEC §3 and §7 [10], [15], [21], [22].
"""

from __future__ import annotations

from livemetrics.engine import sla
from livemetrics.engine.context import Context, seconds
from livemetrics.engine.handling import end_bot_handling
from livemetrics.event_types import ConversationAssigned


def on_assigned(ctx: Context, ts_us: int, body: ConversationAssigned) -> None:
    conv = ctx.conv
    agent = body.agent_id
    via = body.via
    handoff = via == "bot" and conv.bot
    if agent is not None or handoff:
        end_bot_handling(ctx, ts_us)
    conv.team = body.team_id
    conv.last_agent = agent
    conv.group = body.group_id
    credit: tuple[str, ...] = (agent,) if agent else ()
    if handoff:
        ctx.observe("bot_handoffs", 1, ts_us, credit)
    if agent is None:
        if via == "transfer":
            ctx.count("transfers_to_group", ts_us)
    else:
        _assigned_to_agent(ctx, ts_us, agent, via)
    sla.recredit_breaches(ctx)


def _assigned_to_agent(ctx: Context, ts_us: int, agent: str, via: str) -> None:
    conv = ctx.conv
    credit: tuple[str, ...] = (agent,)
    conv.pending_contacts[agent] = ctx.observe_kept("agent_contacts", 1, ts_us, credit)
    if via == "transfer":
        ctx.observe("transfers_to_agent", 1, ts_us, credit)
    if conv.cycle_assigned_us is None:
        conv.cycle_assigned_us = ts_us
    if conv.queue_wait_open:
        conv.queue_wait_open = False
        if conv.waiting_since is not None and not conv.first_response_done:
            value = seconds(ts_us, conv.waiting_since)
            ctx.observe("queue_wait_seconds", value, ts_us, credit)
