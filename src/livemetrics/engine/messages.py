"""`message.sent`: turns, waiting, first and later responses (SPEC §2-§3, §7 [11]-[13], [21]-[23]).

Turn starts are `max(first customer message of the turn, handoff ts)`; an
agent message that ends a customer turn observes the response metrics.
"""

from __future__ import annotations

from typing import Final

from livemetrics.engine import sessions, sla
from livemetrics.engine.context import Context, seconds
from livemetrics.engine.handling import end_bot_handling, is_waiting, start_waiting
from livemetrics.engine.state import AGENT, CUSTOMER
from livemetrics.event_types import MessageSent

SUBJECT_LENGTH: Final = 120


def on_message(ctx: Context, ts_us: int, body: MessageSent) -> None:
    sender = body.sender
    if sender == "customer":
        _customer_message(ctx, ts_us, body)
    elif sender == "agent":
        agent = body.agent_id
        assert agent is not None  # the decoder requires it (SPEC §7 [3])
        _agent_message(ctx, ts_us, agent)
    elif sender == "bot":
        ctx.count("bot_messages", ts_us)
        sessions.on_message(ctx, ts_us, "bot", None)
    # system messages belong to no side, no session and no counter (SPEC §2)


def _customer_message(ctx: Context, ts_us: int, body: MessageSent) -> None:
    conv = ctx.conv
    offline = body.mode == "offline"
    ctx.count("customer_messages", ts_us)
    if conv.first_customer_offline is None:
        conv.first_customer_offline = offline
        text = body.text
        if ctx.store_text and text is not None:
            conv.subject = text[:SUBJECT_LENGTH]
    if conv.side != CUSTOMER:
        conv.side = CUSTOMER
        conv.turn_first_us = ts_us
        conv.turn_offline = offline
        conv.customer_turns += 1
        ctx.count("customer_responses", ts_us)
        if conv.first_response_done:
            sla.start_clock(ctx, "next_response", conv.customer_turns, ts_us)
    else:
        conv.turn_offline = conv.turn_offline and offline
    conv.last_customer_us = ts_us
    if conv.bot:
        conv.customer_wrote_in_bot = True
    else:
        start_waiting(ctx, ts_us)
    sessions.on_message(ctx, ts_us, "customer", None)


def _agent_message(ctx: Context, ts_us: int, agent: str) -> None:
    conv = ctx.conv
    end_bot_handling(ctx, ts_us)
    credit: tuple[str, ...] = (agent,)
    ctx.observe("agent_messages", 1, ts_us, credit)
    if agent not in conv.writers:
        conv.writers.append(agent)
        ctx.observe("conversations_attended", 1, ts_us, credit)
    contact = conv.pending_contacts.get(agent)  # `pop` with a default is a call by name
    if contact is not None:
        del conv.pending_contacts[agent]
        ctx.observe("agent_first_response_seconds", seconds(ts_us, contact.ts_us), ts_us, credit)
        # bucketed with its assignment (SPEC §7 [21], D22)
        ctx.out.append(contact.renamed("agent_contacts_with_response", ctx.event_id))
    first_response = is_waiting(ctx)
    if first_response:
        _first_response(ctx, ts_us, credit)
    if conv.side == CUSTOMER:
        _response(ctx, ts_us, credit, first_response)
    if conv.side != AGENT:
        conv.side = AGENT
        ctx.observe("agent_responses", 1, ts_us, credit)
    sla.stop_clocks(ctx, ts_us, sla.RESPONSE_KINDS)
    conv.human_wrote = True
    sessions.on_message(ctx, ts_us, "agent", agent)


def _first_response(ctx: Context, ts_us: int, credit: tuple[str, ...]) -> None:
    """The first human agent message after waiting began (SPEC §3, D11, D20)."""
    conv = ctx.conv
    waiting_since = conv.waiting_since
    assert waiting_since is not None
    conv.first_response_done = True
    conv.queue_wait_open = False
    ctx.observe("first_response_seconds", seconds(ts_us, waiting_since), ts_us, credit)
    if ctx.calendar.has_hours:
        business = ctx.calendar.business_us(waiting_since, ts_us) / 1_000_000
        ctx.observe("first_response_business_seconds", business, ts_us, credit)
    if conv.first_customer_offline and conv.last_customer_us is not None:
        value = seconds(ts_us, conv.last_customer_us)
        ctx.observe("first_offline_response_seconds", value, ts_us, credit)


def _response(ctx: Context, ts_us: int, credit: tuple[str, ...], first: bool) -> None:
    """An agent message that ends a customer turn (SPEC §3 response metrics, D21)."""
    conv = ctx.conv
    turn_start = conv.turn_first_us
    assert turn_start is not None
    if conv.handoff_us is not None and conv.handoff_us > turn_start:
        turn_start = conv.handoff_us
    ctx.observe("response_seconds", seconds(ts_us, turn_start), ts_us, credit)
    if ctx.calendar.has_hours:
        business = ctx.calendar.business_us(turn_start, ts_us) / 1_000_000
        ctx.observe("response_business_seconds", business, ts_us, credit)
    if not first:
        ctx.observe("follow_on_response_seconds", seconds(ts_us, turn_start), ts_us, credit)
        ctx.observe("follow_on_responses", 1, ts_us, credit)
    if conv.turn_offline and conv.human_wrote and conv.last_customer_us is not None:
        value = seconds(ts_us, conv.last_customer_us)
        ctx.observe("offline_response_seconds", value, ts_us, credit)
