"""SLA timers in the engine: the at-risk notice, then the breach (SPEC §4, §7 [41])."""

from __future__ import annotations

import orjson

from livemetrics.config import parse_config
from livemetrics.engine.engine import Engine
from livemetrics.engine.outputs import Observation, Output, SlaEvent
from livemetrics.events import Event, decode_event

CONFIG = parse_config(
    """
[tenants.acme]
timezone = "UTC"

[[tenants.acme.sla]]
kind = "first_response"
target_seconds = 100
"""
)


def _event(event_id: str, event_type: str, ts: str, **fields: object) -> Event:
    raw = {"event_id": event_id, "type": event_type, "ts": ts, "tenant": "acme"}
    raw["conversation_id"] = "c-1"
    decoded = decode_event(orjson.dumps({**raw, **fields}))
    assert isinstance(decoded, Event), decoded
    return decoded


STARTED = _event(
    "e-1",
    "conversation.started",
    "2026-11-23T09:00:00Z",
    channel="chat",
    direction="inbound",
    customer_id="cu-1",
)
WROTE = _event("e-2", "message.sent", "2026-11-23T09:00:00Z", sender="customer")


def _waiting() -> tuple[Engine, list[Output]]:
    """An engine whose conversation waits for its first response (a 100 s target)."""
    engine, out = Engine(CONFIG), []
    engine.process(STARTED, out)
    engine.process(WROTE, out)
    return engine, out


def _sla(out: list[Output]) -> list[tuple[str, str]]:
    return [(o.kind, o.sla_kind) for o in out if isinstance(o, SlaEvent)]


def _breaches(out: list[Output]) -> int:
    return sum(
        o.sign for o in out if isinstance(o, Observation) and o.metric.startswith("sla_breaches")
    )


def test_clock_sends_at_risk_then_breaches_when_the_clock_passes_both_at_once() -> None:
    engine, out = _waiting()
    engine.advance(engine.clock_us + 3_600_000_000, out)  # an hour later
    assert _sla(out) == [("at_risk", "first_response"), ("breach", "first_response")]
    assert _breaches(out) == 1


def test_clock_past_at_risk_only_sends_the_notice() -> None:
    engine, out = _waiting()
    at_risk_passed = engine.clock_us + 90_000_000  # 90 of 100 s
    engine.advance(at_risk_passed, out)
    assert _sla(out) == [("at_risk", "first_response")]
    assert _breaches(out) == 0


def test_clock_restored_after_its_at_risk_notice_still_breaches_once() -> None:
    engine, out = _waiting()
    engine.advance(engine.clock_us + 90_000_000, out)
    restored = Engine.from_state(CONFIG, orjson.loads(orjson.dumps(engine.to_state())))
    after: list[Output] = []
    restored.advance(restored.clock_us + 20_000_000, after)
    assert _sla(after) == [("breach", "first_response")]
    assert _breaches(after) == 1


def test_answered_clock_neither_warns_nor_breaches() -> None:
    engine, out = _waiting()
    engine.process(
        _event("e-3", "message.sent", "2026-11-23T09:00:30Z", sender="agent", agent_id="ag-1"),
        out,
    )
    engine.advance(engine.clock_us + 3_600_000_000, out)
    assert _sla(out) == []
    assert _breaches(out) == 0
