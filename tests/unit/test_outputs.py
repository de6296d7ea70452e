"""Engine outputs: read-only values, retractions and renames, and their state lists."""

from __future__ import annotations

import orjson
import pytest

from livemetrics.engine.outputs import (
    ConversationAttributes,
    ConversationDropped,
    Observation,
    SlaEvent,
)
from tests.support.read_only import assert_read_only

DIMS = ("acme", "chat", "inbound", None, None, None, None, "team-a", "cu-1", "c-1", None)
OUTPUT_CLASSES = (Observation, SlaEvent, ConversationAttributes, ConversationDropped)


def sample(cls: type) -> object:
    if cls is Observation:
        return Observation("response_seconds", 12.5, 7, "2026-11-23", "09", DIMS, ("ag-1",))
    if cls is SlaEvent:
        return SlaEvent("breach", "first_response", "acme", "c-1", "chat", 1, 0, 5, 6, None, "ag")
    if cls is ConversationAttributes:
        return ConversationAttributes("acme", "c-1", {"status": "open"})
    return ConversationDropped("acme", "c-1")


@pytest.mark.parametrize("cls", OUTPUT_CLASSES, ids=lambda cls: cls.__name__)
def test_every_field_is_read_only(cls: type) -> None:
    """Outputs are shared (a breach sits on its clock and in the output list): no field
    may be written."""
    assert_read_only(sample(cls))


def test_retraction_and_rename_are_new_observations_with_the_same_credit() -> None:
    obs = Observation("agent_contacts", 1, 7, "2026-11-23", "09", DIMS, ("ag-1",), 1, "e-1")
    retracted = obs.retraction()
    assert retracted is not obs and obs.sign == 1
    assert retracted == Observation(
        "agent_contacts", 1, 7, "2026-11-23", "09", DIMS, ("ag-1",), -1, "e-1"
    )
    assert retracted.retraction() == obs
    renamed = obs.renamed("agent_contacts_with_response", "e-2")
    assert renamed == Observation(
        "agent_contacts_with_response", 1, 7, "2026-11-23", "09", DIMS, ("ag-1",), 1, "e-2"
    )


def test_observation_state_list_round_trips_through_json() -> None:
    obs = Observation("csat_score", 4.0, 7, "2026-11-23", "09", DIMS, ("ag-1",), -1, "e-1")
    listed = orjson.loads(orjson.dumps(obs.to_list()))
    assert listed == ["csat_score", 4.0, 7, "2026-11-23", "09", list(DIMS), ["ag-1"], -1, "e-1"]
    assert Observation.from_list(listed) == obs


def test_a_counter_keeps_its_integer_value_in_both_builds() -> None:
    """Counters carry the int 1 and durations a float, compiled or not: the bytes of
    messages and state do not depend on the build (a float field would be a C double
    when compiled, and 1 would be written as 1.0)."""
    counter = Observation("invalid_events", 1, 0, None, None, DIMS)
    duration = Observation("response_seconds", 2.5, 0, None, None, DIMS)
    assert type(counter.value) is int and type(counter.to_list()[1]) is int
    assert type(duration.value) is float
    assert orjson.dumps(counter.to_list()).startswith(b'["invalid_events",1,')
