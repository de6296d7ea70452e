"""Sessions: messages split by gaps longer than `session_gap` (SPEC §2, §7 [13], D29).

A session ended by the clock is provisional: its observations are emitted
(so live boards show them) and kept, and a later message within the gap
retracts them and continues the session.
"""

from __future__ import annotations

from livemetrics.engine.context import TIMER_SESSION, Context, seconds
from livemetrics.engine.outputs import Observation
from livemetrics.engine.state import Session


def on_message(ctx: Context, ts_us: int, sender: str, agent_id: str | None) -> None:
    """Add a customer, agent or bot message (never a system one) to the current session."""
    conv = ctx.conv
    session = conv.session
    if session is not None:
        gap_us = ts_us - session.last_us
        if gap_us <= ctx.gap_us:
            if session.provisional is not None:
                for obs in session.provisional:
                    ctx.retract(obs)
                session.provisional = None
        else:
            if session.provisional is None:
                _emit(ctx, session)
            session = None
    if session is None:
        session = Session(first_us=ts_us, last_us=ts_us)
        conv.session = session
    else:
        session.last_us = ts_us
    if sender == "customer":
        session.customer_wrote = True
    elif sender == "agent" and agent_id and agent_id not in session.agents:
        session.agents.append(agent_id)
    session.team = conv.team
    if not conv.session_timer_armed:
        conv.session_timer_armed = True
        ctx.timers.schedule(ts_us + ctx.gap_us, conv.key, TIMER_SESSION, None)


def on_close(ctx: Context) -> None:
    """Close ends the current session for good."""
    session = ctx.conv.session
    if session is not None and session.provisional is None:
        _emit(ctx, session)
    ctx.conv.session = None


def on_timer(ctx: Context) -> None:
    """The session timer came due: end the session by the clock, or re-arm it."""
    conv = ctx.conv
    conv.session_timer_armed = False
    session = conv.session
    if session is None or session.provisional is not None:
        return
    due = session.last_us + ctx.gap_us
    if ctx.clock_us > due:
        session.provisional = _emit(ctx, session)
    else:
        conv.session_timer_armed = True
        ctx.timers.schedule(due, conv.key, TIMER_SESSION, None)


def _emit(ctx: Context, session: Session) -> list[Observation]:
    """Observations of an ended session, in the bucket and team of its last message."""
    dims = ctx.conv.dims_with_team(session.team)
    agents = tuple(session.agents)
    last = session.last_us
    if session.customer_wrote and agents:
        duration = seconds(last, session.first_us)
        return [
            ctx.observe_kept("live_sessions", 1, last, agents, dims=dims),
            ctx.observe_kept("live_session_seconds", duration, last, agents, dims=dims),
        ]
    if session.customer_wrote or agents:
        return [ctx.observe_kept("one_sided_sessions", 1, last, agents, dims=dims)]
    return []
