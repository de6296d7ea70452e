"""Live gauges read from engine state (SPEC §3 "Live gauges")."""

from __future__ import annotations

import orjson

from livemetrics.config import Config
from livemetrics.engine.engine import Engine
from livemetrics.engine.gauges import GaugeKey, live_gauges, tenant_totals
from livemetrics.engine.outputs import Output
from livemetrics.events import Event, decode_event, parse_ts


def _event(**fields: object) -> Event:
    fields.setdefault("tenant", "t")
    event = decode_event(orjson.dumps(fields))
    assert isinstance(event, Event), event
    return event


def _run(events: list[dict[str, object]]) -> Engine:
    engine = Engine(Config())
    out: list[Output] = []
    for i, fields in enumerate(events):
        engine.process(_event(event_id=f"e{i}", **fields), out)
    return engine


def test_waiting_unassigned_and_oldest_wait_per_tenant() -> None:
    engine = _run(
        [
            {
                "type": "conversation.started",
                "ts": "2026-11-23T10:00:00Z",
                "conversation_id": "a",
                "channel": "chat",
                "direction": "inbound",
                "customer_id": "c1",
            },
            {
                "type": "message.sent",
                "ts": "2026-11-23T10:00:10Z",
                "conversation_id": "a",
                "sender": "customer",
            },
            {
                "type": "message.sent",
                "ts": "2026-11-23T10:01:00Z",
                "conversation_id": "b",
                "sender": "customer",
            },
            {
                "type": "conversation.assigned",
                "ts": "2026-11-23T10:01:05Z",
                "conversation_id": "b",
                "agent_id": "ag1",
                "team_id": "red",
                "via": "routing",
            },
            {
                "type": "message.sent",
                "ts": "2026-11-23T10:01:30Z",
                "conversation_id": "b",
                "sender": "agent",
                "agent_id": "ag1",
            },
            {
                "type": "agent.status",
                "ts": "2026-11-23T10:01:31Z",
                "agent_id": "ag1",
                "status": "online",
                "team_id": "red",
            },
        ]
    )
    now = parse_ts("2026-11-23T10:02:10Z")
    values = live_gauges(engine.conversations.values(), engine.presence, now)
    totals = tenant_totals(values)["t"]
    assert totals["open_conversations"] == 2
    assert totals["waiting_first_response"] == 1
    assert totals["awaiting_agent_reply"] == 1
    assert totals["unassigned_conversations"] == 1
    assert totals["oldest_waiting_seconds"] == 120.0
    assert totals["agents_online"] == 1
    assert values[GaugeKey("agent_active_conversations", "t", "red", agent="ag1")] == 1
    assert values[GaugeKey("open_conversations", "t", "red", "unknown")] == 1


def test_resolved_conversations_are_not_open() -> None:
    engine = _run(
        [
            {
                "type": "message.sent",
                "ts": "2026-11-23T10:00:10Z",
                "conversation_id": "a",
                "sender": "customer",
            },
            {"type": "conversation.resolved", "ts": "2026-11-23T10:00:20Z", "conversation_id": "a"},
        ]
    )
    values = live_gauges(engine.conversations.values(), engine.presence, engine.clock_us)
    assert "t" not in tenant_totals(values)
