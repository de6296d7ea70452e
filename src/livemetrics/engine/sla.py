"""SLA clocks: start, stop, breach, at-risk and retraction (SPEC §4, §7 [40]-[42], D40-D42).

A clock sends its at-risk notice, then fires its breach, as soon as the
engine clock passes each (the breach timer is armed by the at-risk one). The
first stopping event in arrival order settles it: a stop at or before the
deadline retracts a breach that already fired (a late answer), a stop after
it keeps the breach. Until an own event after the deadline arrives, an
assignment re-credits a fired breach to the new team and agent (D42), so the
result depends only on the conversation's own events and the final clock.
"""

from __future__ import annotations

from typing import Final

from livemetrics.engine.context import TIMER_SLA_BREACH, TIMER_SLA_RISK, Context
from livemetrics.engine.outputs import SlaEvent
from livemetrics.engine.state import Conversation, SlaClock

RESPONSE_KINDS: Final = ("first_response", "next_response")


def start_clock(ctx: Context, kind: str, turn: int, start_us: int) -> None:
    """Start a clock when the tenant has a policy for this kind and channel."""
    conv = ctx.conv
    channel = conv.base_dims[1] or "unknown"
    policy = ctx.tenant.sla_policy(kind, channel)
    if policy is None:
        return
    target_us = policy.target_us
    risk_us = policy.at_risk_us
    if policy.business_hours:
        deadline, at_risk = ctx.calendar.add_business_pair(start_us, target_us, risk_us)
    else:
        deadline = start_us + target_us
        at_risk = start_us + risk_us
    clock = SlaClock(kind, turn, start_us, deadline, at_risk)
    conv.clocks.append(clock)
    # the breach timer is scheduled when this one fires: most clocks stop
    # before they are at risk, and then leave one stale timer, not two
    ctx.timers.schedule(at_risk, conv.key, TIMER_SLA_RISK, (kind, turn))


def stop_clocks(ctx: Context, ts_us: int, kinds: tuple[str, ...] | None = None) -> None:
    """Settle the running clocks of `kinds` (all when None) at a stopping event."""
    clocks = ctx.conv.clocks
    if not clocks:  # most agent messages: no list made
        return
    keep: list[SlaClock] = []
    for clock in clocks:
        if kinds is not None and clock.kind not in kinds:
            keep.append(clock)
            continue
        if clock.breach is not None and ts_us <= clock.deadline_us:
            ctx.retract(clock.breach)
            ctx.out.append(_event(ctx, clock, "retraction"))
    ctx.conv.clocks = keep


def freeze_breaches(ctx: Context, ts_us: int) -> None:
    """An own event after a deadline settles who the fired breach is credited to (D42)."""
    for clock in ctx.conv.clocks:
        if clock.breach is not None and not clock.frozen and ts_us > clock.deadline_us:
            clock.frozen = True


def recredit_breaches(ctx: Context) -> None:
    """After an assignment, move unsettled fired breaches to the new team and agent (D42)."""
    for clock in ctx.conv.clocks:
        if clock.breach is None or clock.frozen:
            continue
        old = clock.breach
        new_agents = ctx.last_agent_credit()
        if old.dims == ctx.conv.dims() and old.agents == new_agents:
            continue
        ctx.retract(old)
        clock.breach = ctx.observe_kept(old.metric, 1, clock.deadline_us, new_agents)


def fire(ctx: Context, clock: SlaClock, timer: int) -> None:
    """A timer of a running clock (`find_clock`) came due: send the at-risk notice
    and arm the breach timer, or fire the breach."""
    if timer == TIMER_SLA_RISK:
        if not clock.at_risk_sent and clock.breach is None:
            clock.at_risk_sent = True
            ctx.out.append(_event(ctx, clock, "at_risk"))
            ref = (clock.kind, clock.turn)
            ctx.timers.schedule(clock.deadline_us, ctx.conv.key, TIMER_SLA_BREACH, ref)
        return
    if timer == TIMER_SLA_BREACH and clock.breach is None:
        clock.breach = ctx.observe_kept(
            f"sla_breaches_{clock.kind}", 1, clock.deadline_us, ctx.last_agent_credit()
        )
        ctx.out.append(_event(ctx, clock, "breach"))


def find_clock(conv: Conversation, kind: str, turn: int) -> SlaClock | None:
    """The running clock of this kind and turn; None once it was stopped."""
    for clock in conv.clocks:
        if clock.kind == kind and clock.turn == turn:
            return clock
    return None


def _event(ctx: Context, clock: SlaClock, kind: str) -> SlaEvent:
    conv = ctx.conv
    return SlaEvent(
        kind,
        clock.kind,
        conv.tenant,
        conv.conversation_id,
        conv.base_dims[1] or "unknown",
        clock.turn,
        clock.started_us,
        clock.deadline_us,
        ctx.clock_us,
        conv.team,
        conv.last_agent,
    )


def at_risk_count(clocks: list[SlaClock], now_us: int) -> int:
    """Running clocks past 80 % of their target and not breached (live gauge `sla_at_risk`)."""
    return sum(1 for c in clocks if c.breach is None and now_us > c.at_risk_us)
