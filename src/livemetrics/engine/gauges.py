"""Live gauges: what is true *now*, computed from conversation state (SPEC §3 "Live gauges").

Gauges are read on demand (a Prometheus scrape, a `livemetrics.live`
snapshot), never accumulated, so they are always consistent with the state.

    >>> live_gauges(engine.conversations.values(), engine.presence, now)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from livemetrics.engine.sla import at_risk_count
from livemetrics.engine.state import CUSTOMER, OPEN, Conversation


@dataclass(frozen=True, slots=True)
class GaugeKey:
    """A gauge and its bounded labels; `None` = the label does not apply."""

    name: str
    tenant: str
    team: str | None = None
    channel: str | None = None
    agent: str | None = None


def live_gauges(
    conversations: Iterable[Conversation],
    presence: Mapping[tuple[str, str], tuple[str, str | None]],
    now_us: int,
) -> dict[GaugeKey, float]:
    """Per tenant, team and channel gauges; `agent_active_conversations` per agent."""
    values: dict[GaugeKey, float] = {}

    def add(name: str, conv: Conversation, value: float = 1) -> None:
        key = GaugeKey(name, conv.tenant, conv.team, conv.base_dims[1])
        values[key] = values.get(key, 0) + value

    def highest(name: str, conv: Conversation, value: float) -> None:
        key = GaugeKey(name, conv.tenant, conv.team, conv.base_dims[1])
        values[key] = max(values.get(key, 0.0), value)

    for conv in conversations:
        if conv.status != OPEN:
            continue
        add("open_conversations", conv)
        if conv.waiting_since is not None and not conv.first_response_done:
            add("waiting_first_response", conv)
            highest("oldest_waiting_seconds", conv, max(0, now_us - conv.waiting_since) / 1e6)
        if conv.side == CUSTOMER:
            add("awaiting_agent_reply", conv)
        if conv.last_agent is None and conv.group is None:
            add("unassigned_conversations", conv)
        if conv.last_agent is not None:
            key = GaugeKey(
                "agent_active_conversations", conv.tenant, conv.team, agent=conv.last_agent
            )
            values[key] = values.get(key, 0) + 1
        at_risk = at_risk_count(conv.clocks, now_us)
        if at_risk:
            add("sla_at_risk", conv, at_risk)
    for (tenant, _agent), (status, team) in presence.items():
        if status == "online":
            key = GaugeKey("agents_online", tenant, team)
            values[key] = values.get(key, 0) + 1
    return values


def tenant_totals(values: Mapping[GaugeKey, float]) -> dict[str, dict[str, float]]:
    """Collapse labels to one number per tenant and gauge (max for the oldest wait)."""
    totals: dict[str, dict[str, float]] = {}
    for key, value in values.items():
        gauges = totals.setdefault(key.tenant, {})
        if key.name == "oldest_waiting_seconds":
            gauges[key.name] = max(gauges.get(key.name, 0.0), value)
        else:
            gauges[key.name] = gauges.get(key.name, 0) + value
    return totals
