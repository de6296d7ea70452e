"""Decoding and validation of input events (SPEC §1, §7 [1]-[4])."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastjsonschema
import jsonschema
import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livemetrics import events
from livemetrics.event_types import MessageSent
from livemetrics.events import (
    MAX_EVENT_BYTES,
    Event,
    Rejection,
    decode_event,
    decode_line,
    decode_with_schema,
    format_ts,
    parse_ts,
)
from livemetrics.topics import load_schema
from tests.support.read_only import assert_read_only

EXAMPLE = Path(__file__).resolve().parents[3] / "shared" / "examples" / "one-conversation.jsonl"
TS = "2026-11-23T08:59:55.120Z"
TS_US = 1_795_424_395_120_000

# A minimal valid event of every type: the fields beyond the envelope.
MINIMAL: dict[str, dict[str, Any]] = {
    "conversation.started": {"channel": "chat", "direction": "inbound", "customer_id": "cust-1"},
    "message.sent": {"sender": "customer"},
    "conversation.assigned": {"agent_id": "ag-1", "via": "routing"},
    "agent.focus.started": {"agent_id": "ag-1"},
    "agent.focus.ended": {"agent_id": "ag-1"},
    "conversation.tagged": {"tag": "billing"},
    "conversation.resolved": {},
    "conversation.reopened": {},
    "conversation.closed": {},
    "conversation.rated": {"survey": "csat", "score": 5},
    "conversation.transaction": {"transaction_id": "tx-1", "amount": 12.5, "currency": "EUR"},
    "agent.status": {"agent_id": "ag-1", "status": "online"},
}
REQUIRED: dict[str, tuple[str, ...]] = {
    event_type: tuple(fields) for event_type, fields in MINIMAL.items()
}
REQUIRED["conversation.assigned"] = ("via",)  # agent_id/group_id: the one-of rule
# Optional fields: (a valid value, a value of the wrong kind).
OPTIONAL: dict[str, dict[str, tuple[Any, Any]]] = {
    "conversation.started": {
        "customer_name": ("Paola M.", 7),
        "contact_type": ("sales", ["sales"]),
        "skill": ("es", True),
        "campaign": ("black-friday", {}),
        "theme": ("orders", 1.5),
        "handled_by": ("bot", "robot"),
    },
    "message.sent": {"agent_id": ("ag-1", ""), "mode": ("offline", "away"), "text": ("hi", 42)},
    "conversation.assigned": {"team_id": ("team-es", 3)},
    "conversation.resolved": {"agent_id": ("ag-1", "")},
    "agent.status": {"team_id": ("team-es", "")},
}
ENUMS: dict[tuple[str, str], tuple[str, ...]] = {
    ("conversation.started", "direction"): ("inbound", "outbound"),
    ("conversation.started", "handled_by"): ("bot", "human"),
    ("message.sent", "sender"): ("customer", "agent", "bot", "system"),
    ("message.sent", "mode"): ("live", "offline"),
    ("conversation.assigned", "via"): ("routing", "transfer", "bot"),
    ("conversation.rated", "survey"): ("csat", "nps", "ces"),
    ("agent.status", "status"): ("online", "away", "offline"),
}


def event_dict(event_type: str, **fields: Any) -> dict[str, Any]:
    envelope: dict[str, Any] = {"event_id": "e-1", "type": event_type, "ts": TS, "tenant": "acme"}
    if event_type != "agent.status":
        envelope["conversation_id"] = "c-1"
    return {**envelope, **MINIMAL[event_type], **fields}


def encode(obj: Any) -> bytes:
    return orjson.dumps(obj)


def decode(obj: Any) -> Event | Rejection:
    return decode_event(encode(obj))


def fields_of(event: Event) -> dict[str, Any]:
    """The event's type and non-null body fields, as the JSON it came from had them."""
    body = msgspec.structs.asdict(event.data)
    return {"type": event.type, **{key: value for key, value in body.items() if value is not None}}


def rejected(obj: Any) -> Rejection:
    result = decode(obj)
    assert isinstance(result, Rejection), result
    assert "\n" not in result.reason
    return result


def accepted(obj: Any) -> Event:
    result = decode(obj)
    assert isinstance(result, Event), result
    return result


# --- valid input -----------------------------------------------------------


def test_every_line_of_the_shared_example_decodes() -> None:
    if not EXAMPLE.is_file():
        pytest.skip("shared/examples not present")
    lines = EXAMPLE.read_bytes().splitlines(keepends=True)
    decoded = [decode_line(line) for line in lines]
    assert all(isinstance(event, Event) for event in decoded), decoded
    first = decoded[0]
    assert isinstance(first, Event)
    assert first.type == "conversation.started"
    assert first.conversation_id == "c-1001"
    assert first.data.handled_by == "bot"  # type: ignore[union-attr]
    status = decoded[-1]
    assert isinstance(status, Event)
    assert status.type == "agent.status"
    assert status.conversation_id is None
    assert status.tenant == "acme"


@pytest.mark.parametrize("event_type", sorted(MINIMAL))
def test_minimal_event_of_every_type_decodes(event_type: str) -> None:
    raw = event_dict(event_type)
    event = accepted(raw)
    assert event.event_id == "e-1"
    assert event.type == event_type
    assert event.ts_us == TS_US
    assert event.tenant == "acme"
    assert fields_of(event) == raw


@pytest.mark.parametrize(
    ("event_type", "field", "value"),
    [(t, f, good) for t, fields in OPTIONAL.items() for f, (good, _) in fields.items()],
)
def test_optional_fields_are_accepted_and_kept(event_type: str, field: str, value: Any) -> None:
    event = accepted(event_dict(event_type, **{field: value}))
    assert getattr(event.data, field) == value


def test_agent_status_has_no_conversation_even_if_one_is_sent() -> None:
    event = accepted(event_dict("agent.status", conversation_id="c-9"))
    assert event.conversation_id is None


def test_unknown_extra_fields_are_ignored() -> None:
    event = accepted(event_dict("message.sent", channel_hint=[1, 2], priority=None, x={"y": 1}))
    assert event == accepted(event_dict("message.sent"))
    assert not hasattr(event.data, "x")


def test_null_optional_fields_are_absent() -> None:
    raw = event_dict("conversation.started", skill=None, theme=None, handled_by=None)
    event = accepted(raw)
    assert fields_of(event) == event_dict("conversation.started")
    assert event.data.channel == "chat"  # type: ignore[union-attr]


def test_agent_message_needs_an_agent_but_others_do_not() -> None:
    assert accepted(event_dict("message.sent", sender="agent", agent_id="ag-1"))
    for sender in ("customer", "bot", "system"):
        assert accepted(event_dict("message.sent", sender=sender))


@pytest.mark.parametrize(("survey", "low", "high"), [("csat", 1, 5), ("nps", 0, 10), ("ces", 1, 7)])
def test_scores_at_survey_bounds_are_accepted(survey: str, low: int, high: int) -> None:
    for score in (low, high):
        assert accepted(event_dict("conversation.rated", survey=survey, score=score))


def test_integral_float_score_is_the_integer() -> None:
    """4.0 is an integer under JSON Schema's rule; it is stored as int 4."""
    event = accepted(event_dict("conversation.rated", score=4.0))
    assert event.data.score == 4  # type: ignore[union-attr]
    assert type(event.data.score) is int  # type: ignore[union-attr]


@pytest.mark.parametrize("amount", [0, 12, 12.5, -3.25, 1e9])
def test_amount_is_any_json_number(amount: float) -> None:
    event = accepted(event_dict("conversation.transaction", amount=amount))
    assert event.data.amount == amount  # type: ignore[union-attr]
    assert type(event.data.amount) is float  # type: ignore[union-attr]


def test_assignment_to_a_group_alone_is_valid() -> None:
    raw = event_dict("conversation.assigned", group_id="g-es", via="transfer")
    del raw["agent_id"]
    assert accepted(raw).data.group_id == "g-es"  # type: ignore[union-attr]
    assert accepted({**raw, "agent_id": None})


# --- invalid input: each reason names the field -------------------------------


@pytest.mark.parametrize(
    ("event_type", "field"),
    [
        *[(t, f) for t in MINIMAL for f in ("event_id", "type", "ts", "tenant")],
        *[(t, "conversation_id") for t in MINIMAL if t != "agent.status"],
        *[(t, f) for t, fields in REQUIRED.items() for f in fields],
    ],
)
def test_missing_required_field_is_named(event_type: str, field: str) -> None:
    raw = event_dict(event_type)
    del raw[field]
    assert rejected(raw).reason.startswith(f"missing field '{field}'")


def test_null_required_field_counts_as_missing() -> None:
    reason = rejected(event_dict("message.sent", sender=None)).reason
    assert reason == "missing field 'sender' (null counts as missing)"


def test_agent_message_without_agent_is_rejected() -> None:
    reason = rejected(event_dict("message.sent", sender="agent")).reason
    assert reason == "missing field 'agent_id', required when sender is 'agent'"
    assert "agent_id" in rejected(event_dict("message.sent", sender="agent", agent_id=None)).reason


@pytest.mark.parametrize(("event_type", "field"), sorted(ENUMS))
def test_value_outside_an_enumeration_is_rejected(event_type: str, field: str) -> None:
    for bad in ("", "Other", ENUMS[(event_type, field)][0].upper(), 1, ["inbound"]):
        reason = rejected(event_dict(event_type, **{field: bad})).reason
        assert f"field '{field}' must be one of" in reason


@pytest.mark.parametrize(
    ("event_type", "field", "bad"),
    [(t, f, bad) for t, fields in OPTIONAL.items() for f, (_, bad) in fields.items()],
)
def test_optional_field_of_wrong_kind_is_rejected(event_type: str, field: str, bad: Any) -> None:
    assert f"field '{field}'" in rejected(event_dict(event_type, **{field: bad})).reason


@pytest.mark.parametrize("field", ["event_id", "tenant", "conversation_id"])
@pytest.mark.parametrize("bad", ["", 12, True, ["x"], {"id": "x"}])
def test_envelope_ids_must_be_non_empty_strings(field: str, bad: Any) -> None:
    reason = rejected(event_dict("conversation.closed", **{field: bad})).reason
    assert reason.startswith(f"field '{field}' must be a non-empty string")


@pytest.mark.parametrize(
    ("event_type", "field"),
    [
        ("conversation.started", "customer_id"),
        ("conversation.started", "channel"),
        ("agent.focus.started", "agent_id"),
        ("conversation.tagged", "tag"),
        ("conversation.transaction", "transaction_id"),
        ("conversation.transaction", "currency"),
        ("agent.status", "agent_id"),
    ],
)
def test_required_strings_must_be_non_empty_strings(event_type: str, field: str) -> None:
    bads: tuple[Any, ...] = ("", 5, False, [], {})
    for bad in bads:
        assert f"field '{field}'" in rejected(event_dict(event_type, **{field: bad})).reason


def test_ts_of_the_wrong_json_type_is_named() -> None:
    assert rejected(event_dict("conversation.closed", ts=1795424395)).reason == (
        "field 'ts' must be a string, got a number 1795424395"
    )


@pytest.mark.parametrize("ts", ["2026-02-30T10:00:00Z", "2026-11-23 08:59:55Z", "2026-11-23T08:59"])
def test_unparseable_ts_is_rejected_naming_ts(ts: str) -> None:
    assert rejected(event_dict("conversation.closed", ts=ts)).reason.startswith("field 'ts': ")


def test_unknown_type_is_rejected() -> None:
    result = rejected(event_dict("conversation.closed", type="foo.bar"))
    assert result.reason == "unknown event type 'foo.bar'"
    assert result.tenant == "acme"
    assert result.ts_us == TS_US


@pytest.mark.parametrize("bad_type", [7, ["message.sent"], "", "Message.Sent"])
def test_type_that_is_not_a_known_string_is_rejected(bad_type: Any) -> None:
    assert rejected(event_dict("conversation.closed", type=bad_type)).reason.startswith(
        "unknown event type"
    )


def test_assignment_needs_exactly_one_of_agent_and_group() -> None:
    both = rejected(event_dict("conversation.assigned", group_id="g-1")).reason
    assert both == "exactly one of fields 'agent_id' and 'group_id' is required, got both"
    neither = event_dict("conversation.assigned")
    del neither["agent_id"]
    assert rejected(neither).reason.endswith("got neither")
    assert rejected({**neither, "agent_id": None, "group_id": None}).reason.endswith("got neither")


@pytest.mark.parametrize(
    ("survey", "score"),
    [
        ("csat", 0),
        ("csat", 6),
        ("nps", -1),
        ("nps", 11),
        ("ces", 0),
        ("ces", 8),
        ("csat", 4.5),
        ("csat", True),
        ("csat", "4"),
        ("nps", [9]),
        ("ces", 1e300),
    ],
)
def test_score_must_be_an_integer_in_its_surveys_range(survey: str, score: Any) -> None:
    reason = rejected(event_dict("conversation.rated", survey=survey, score=score)).reason
    assert reason.startswith("field 'score' must be an integer from ")
    assert f"for survey '{survey}'" in reason


def test_score_reason_reads_well() -> None:
    reason = rejected(event_dict("conversation.rated", score=6)).reason
    assert reason == (
        "field 'score' must be an integer from 1 to 5 for survey 'csat', got a number 6"
    )


@pytest.mark.parametrize("amount", ["12.5", True, None, {"value": 1}])
def test_amount_must_be_a_json_number(amount: Any) -> None:
    reason = rejected(event_dict("conversation.transaction", amount=amount)).reason
    assert "'amount'" in reason


@pytest.mark.parametrize(
    "raw", [b"{", b"not json", b"\xff\xfe", b'{"a": NaN}', b'{"a":1} {"b":2}', b""]
)
def test_bytes_that_are_not_json_are_rejected(raw: bytes) -> None:
    result = decode_event(raw)
    assert isinstance(result, Rejection)
    assert result.reason.startswith("not JSON: ")
    assert result.raw == raw
    assert (result.tenant, result.ts_us) == (None, None)


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"[]", "an array"),
        (b'"x"', "a string"),
        (b"3", "a number"),
        (b"null", "null"),
        (b"true", "a boolean"),
    ],
)
def test_a_top_level_value_that_is_not_an_object_is_rejected(raw: bytes, kind: str) -> None:
    result = decode_event(raw)
    assert isinstance(result, Rejection)
    assert result.reason == f"not a JSON object: the top-level value is {kind}"


def oversized(size: int) -> bytes:
    raw = event_dict("message.sent", text="")
    base = len(encode(raw))
    return encode({**raw, "text": "x" * (size - base)})


def test_event_over_one_mib_is_rejected_with_tenant_and_ts() -> None:
    raw = oversized(MAX_EVENT_BYTES + 1)
    assert len(raw) == MAX_EVENT_BYTES + 1
    result = decode_event(raw)
    assert isinstance(result, Rejection)
    assert result.reason == f"event is {MAX_EVENT_BYTES + 1} bytes, over the 1 MiB limit"
    assert (result.tenant, result.ts_us) == ("acme", TS_US)


def test_event_of_exactly_one_mib_is_accepted() -> None:
    raw = oversized(MAX_EVENT_BYTES)
    assert isinstance(decode_event(raw), Event)


def test_oversized_garbage_is_rejected_for_its_size() -> None:
    result = decode_event(b"x" * (MAX_EVENT_BYTES + 10))
    assert isinstance(result, Rejection)
    assert result.reason.startswith(f"event is {MAX_EVENT_BYTES + 10} bytes")


def test_tenant_and_ts_are_recovered_only_when_readable() -> None:
    result = rejected(event_dict("message.sent", sender="robot"))
    assert (result.tenant, result.ts_us) == ("acme", TS_US)
    result = rejected(event_dict("message.sent", tenant=5, ts="yesterday"))
    assert (result.tenant, result.ts_us) == (None, None)
    result = rejected(event_dict("message.sent", tenant="", ts="2026-11-23T09:59:55.12+01:00"))
    assert (result.tenant, result.ts_us) == (None, TS_US)


def test_rejection_keeps_the_original_bytes() -> None:
    raw = b'{"type": "message.sent",  "ts": null}'
    result = decode_event(raw)
    assert isinstance(result, Rejection)
    assert result.raw is raw


# --- decode_line -----------------------------------------------------------


@pytest.mark.parametrize("line", [b"", b"\n", b"   \n", b"\t \r\n", b" "])
def test_blank_lines_are_skipped(line: bytes) -> None:
    assert decode_line(line) is None


def test_line_is_decoded_without_its_newline() -> None:
    raw = encode(event_dict("conversation.closed"))
    for line in (raw, raw + b"\n", raw + b"\r\n"):
        result = decode_line(line)
        assert isinstance(result, Event)
    bad = decode_line(b'{"type":"x"}\r\n')
    assert isinstance(bad, Rejection)
    assert bad.raw == b'{"type":"x"}'


def test_line_over_one_mib_is_invalid_not_counting_its_newline() -> None:
    assert isinstance(decode_line(oversized(MAX_EVENT_BYTES) + b"\n"), Event)
    assert isinstance(decode_line(oversized(MAX_EVENT_BYTES + 1) + b"\n"), Rejection)


# --- ts grammar (SPEC §7 [4]) ------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-23T08:59:55.120Z", TS_US),
        ("2026-11-23t08:59:55.120z", TS_US),
        ("2026-11-23T08:59:55.12Z", TS_US),
        ("2026-11-23T08:59:55.120000Z", TS_US),
        ("2026-11-23T08:59:55.1200009999Z", TS_US),
        ("2026-11-23T09:59:55.120+01:00", TS_US),
        ("2026-11-23T03:29:55.120-05:30", TS_US),
        ("2026-11-23T08:59:55.120-00:00", TS_US),
        ("2026-11-23T08:59:55.120+00:00", TS_US),
        ("2026-11-23T08:59:55Z", TS_US - 120_000),
        ("2026-11-22T10:00:00.250Z", 1_795_341_600_250_000),
        ("2024-02-29T00:00:00Z", 1_709_164_800_000_000),
        ("1970-01-01T00:00:00Z", 0),
        ("1970-01-01T01:00:00+01:00", 0),
        ("2026-11-23T08:59:55.9999999Z", TS_US - 120_000 + 999_999),
    ],
)
def test_ts_grammar_accepts(text: str, expected: int) -> None:
    assert parse_ts(text) == expected


_TS_REJECTED = pytest.mark.parametrize(
    "text",
    [
        "2026-11-23T08:59:55",  # no offset
        "2026-11-23 08:59:55Z",  # space instead of T
        "2026-11-23T08:59:55.Z",  # empty fraction
        "2026-11-23T08:59:55,120Z",  # comma fraction
        "2026-11-23T08:59:55+0100",  # offset without colon
        "2026-11-23T08:59:55+01",
        "2026-11-23T08:59:55 Z",
        "2026-11-23T08:59Z",
        "2026-11-23",
        "2026-1-23T08:59:55Z",
        "26-11-23T08:59:55Z",
        " 2026-11-23T08:59:55Z",
        "2026-11-23T08:59:55Z\n",
        "2026-11-23T08:59:55ZZ",
        "2026-11-23X08:59:55Z",
        "2026-11-23T08:59:55UTC",
        "2026-11-23T08:59:55GMT+1",
        "２０２６-11-23T08:59:55Z",  # non-ASCII digits
        "2026-11-23T08:59:5_Z",
        "2026-02-30T10:00:00Z",  # no such date
        "2025-02-29T10:00:00Z",  # not a leap year
        "2026-13-01T10:00:00Z",
        "2026-00-10T10:00:00Z",
        "2026-11-00T10:00:00Z",
        "2026-11-23T24:00:00Z",
        "2026-11-23T23:60:00Z",
        "2026-11-23T23:59:60Z",  # leap second
        "2026-11-23T08:59:55+24:00",
        "2026-11-23T08:59:55+01:60",
        "1969-12-31T23:59:59.999999Z",  # before the epoch
        "1970-01-01T00:30:00+01:00",
        "9999-12-31T00:00:00Z",  # local bucketing could not represent it
        "0000-01-01T00:00:00Z",
        "",
        "Z",
        "2026-11-23T08:59:55.12a+01:00",
        "2026-11-23T08:59:55.1²Z",  # a digit that is not ASCII
        "2026-11-23T08:59:55.1+01:00+01:00",
    ],
)


@_TS_REJECTED
def test_ts_grammar_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="'"):
        parse_ts(text)


@_TS_REJECTED
def test_ts_grammar_rejects_when_its_parts_were_seen_valid(text: str) -> None:
    """The cached minutes and zones of valid timestamps never let a bad one through."""
    for valid in ("2026-11-23T08:59:55Z", "2026-11-23T08:59:55.1+01:00", "2026-11-23T08:59:55z"):
        parse_ts(valid)
    with pytest.raises(ValueError, match="'"):
        parse_ts(text)


def test_ts_reasons_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="no such date"):
        parse_ts("2026-02-30T10:00:00Z")
    with pytest.raises(ValueError, match=r"YYYY-MM-DDTHH:MM:SS\[\.fraction\]"):
        parse_ts("2026-11-23 08:59:55Z")
    with pytest.raises(ValueError, match="leap seconds"):
        parse_ts("2026-11-23T23:59:60Z")


def test_format_ts_writes_utc_microseconds_with_z() -> None:
    assert format_ts(TS_US) == "2026-11-23T08:59:55.120000Z"
    assert format_ts(0) == "1970-01-01T00:00:00.000000Z"
    assert parse_ts(format_ts(TS_US + 1)) == TS_US + 1


LATEST = dt.datetime(9999, 12, 29)


@st.composite
def rfc3339(draw: st.DrawFn) -> tuple[str, int]:
    """A valid ts string in any offset, fraction length and case, and its value."""
    moment = draw(st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=LATEST))
    minutes = draw(st.integers(-(23 * 60 + 59), 23 * 60 + 59))
    digits = draw(st.text("0123456789", min_size=0, max_size=9))
    tz = dt.timezone(dt.timedelta(minutes=minutes))
    local = moment.replace(microsecond=0, tzinfo=dt.UTC).astimezone(tz)
    sign = "-" if minutes < 0 else "+"
    offset = draw(st.sampled_from(["Z", "z"])) if minutes == 0 else ""
    offset = offset or f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    t = draw(st.sampled_from(["T", "t"]))
    text = local.strftime(f"%Y-%m-%d{t}%H:%M:%S")
    if digits:
        text += "." + digits
    micros = int(digits[:6].ljust(6, "0")) if digits else 0
    expected = int(moment.replace(microsecond=0, tzinfo=dt.UTC).timestamp()) * 1_000_000 + micros
    return text + offset, expected


@given(rfc3339())
def test_parse_ts_agrees_with_datetime(case: tuple[str, int]) -> None:
    text, expected = case
    assert parse_ts(text) == expected


def _by_table(text: str) -> int:
    """The table reader's value, -1 where it raises (the character reader's "not mine")."""
    try:
        return events._ts_by_table(text)
    except ValueError:
        return -1


# The compiled core reads a ts character by character and leaves anything it does not
# accept to the table reader; the two are held to the same answer for every text, in
# both passes (as plain Python the dispatch in parse_ts never calls the first).


@given(rfc3339())
def test_reading_by_character_gives_the_table_value(case: tuple[str, int]) -> None:
    text, expected = case
    assert events._ts_by_character(text) == expected == events._ts_by_table(text)


@_TS_REJECTED
def test_reading_by_character_accepts_no_rejected_ts(text: str) -> None:
    assert events._ts_by_character(text) == -1


_TS_CHARACTERS = "0123456789:-+.TtZz x\u0663\u00b2\n"


@given(
    st.one_of(
        rfc3339().map(lambda case: case[0]),
        # early years: valid only when the offset brings them past the epoch
        st.builds(
            "{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}{}".format,
            st.integers(0, 1971),
            st.integers(0, 13),
            st.integers(0, 32),
            st.integers(0, 24),
            st.integers(0, 60),
            st.integers(0, 60),
            st.sampled_from(["Z", "-23:59", "+23:59", "-01:00", "+00:00", "-24:00", ".5Z"]),
        ),
    ),
    st.integers(0, 40),
    st.sampled_from(_TS_CHARACTERS),
    st.sampled_from(["keep", "replace", "insert", "delete"]),
)
def test_reading_by_character_agrees_with_the_table_on_any_text(
    text: str, at: int, character: str, how: str
) -> None:
    events._ts_by_character(text)  # read first, as a stream would: then the changed text
    if how == "replace":
        text = text[:at] + character + text[at + 1 :]
    elif how == "insert":
        text = text[:at] + character + text[at:]
    elif how == "delete":
        text = text[:at] + text[at + 1 :]
    assert events._ts_by_character(text) == _by_table(text)


@pytest.mark.parametrize(
    "text", ["2026-10-22T06:00:26.355078Z", "2026-03-29T01:59:59+02:00", "2024-02-29T23:00:00Z"]
)
def test_every_change_of_one_character_after_a_kept_hour_reads_as_the_table(text: str) -> None:
    """Each text differing from a valid ts by one character, anywhere (read right
    after it: a reader that kept anything of the ts before must not be misled)."""
    for at in range(len(text) + 1):
        for character in _TS_CHARACTERS:
            for changed in (
                text[:at] + character + text[at + 1 :],
                text[:at] + character + text[at:],
                text[:at] + text[at + 1 :],
            ):
                assert events._ts_by_character(text) == _by_table(text)
                assert events._ts_by_character(changed) == _by_table(changed), changed


@pytest.mark.parametrize(
    "text",
    ["1969-12-31T23:30:00-01:00", "1969-12-31T23:30:00Z", "1970-01-01T00:00:00+00:01"],
)
def test_an_hour_before_the_epoch_is_read_as_the_table_reads_it(text: str) -> None:
    """A local hour before 1970 is a valid `ts` when its offset brings it past the
    epoch (read twice: the same answer once the reader has seen it)."""
    for _ in range(2):
        assert events._ts_by_character(text) == _by_table(text)


def _kept_heads(heads: events._Heads) -> list[tuple[str, int]]:
    return [
        (heads.head0, heads.value0),
        (heads.head1, heads.value1),
        (heads.head2, heads.value2),
        (heads.head3, heads.value3),
    ]


@given(st.lists(rfc3339().map(lambda case: case[0]), max_size=6))
def test_every_kept_head_holds_its_own_value(texts: list[str]) -> None:
    """The heads the character reader keeps (a fresh set, and the module's after
    reading `texts`) each hold the microseconds of their own hour."""
    for text in texts:
        events._ts_by_character(text)
    for heads in (events._Heads(), events._HEADS):
        for head, value in _kept_heads(heads):
            assert events._head_us(head + ":00:00Z") == value
            if head[:4] != "0000":  # before datetime's first year (kept only if met)
                hour = dt.datetime.strptime(head.upper(), "%Y-%m-%dT%H").replace(tzinfo=dt.UTC)
                assert value == int(hour.timestamp()) * 1_000_000


@given(st.text(_TS_CHARACTERS, max_size=34) | st.text(max_size=34))
def test_reading_by_character_agrees_with_the_table_on_random_text(text: str) -> None:
    assert events._ts_by_character(text) == _by_table(text)


@given(st.integers(0, parse_ts("9999-12-30T23:59:59.999999Z")))
def test_format_ts_round_trips(ts_us: int) -> None:
    assert parse_ts(format_ts(ts_us)) == ts_us


@given(st.text(max_size=40))
def test_parse_ts_raises_only_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        assert isinstance(parse_ts(text), int)


# --- fuzzing: never raise, and agree with the schemas --------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

ids = st.text(min_size=1, max_size=8)
texts = st.text(max_size=8)
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "event_id": ids,
    "tenant": ids,
    "conversation_id": ids,
    "customer_id": ids,
    "agent_id": ids,
    "group_id": ids,
    "team_id": ids,
    "transaction_id": ids,
    "channel": ids,
    "tag": ids,
    "currency": ids,
    "customer_name": texts,
    "contact_type": texts,
    "skill": texts,
    "campaign": texts,
    "theme": texts,
    "text": texts,
    "amount": st.integers(-(10**6), 10**6) | st.floats(-1e6, 1e6),
    "score": st.integers(-2, 12) | st.sampled_from([4.0, 4.5, 0.0, 10.0]),
    **{field: st.sampled_from(values) for (_, field), values in ENUMS.items()},
}
ALL_FIELDS = sorted({*FIELD_VALUES, "type", "ts", "group_id", "extra"})
NEAR_MISSES: st.SearchStrategy[Any] = st.sampled_from(
    [
        "",
        "Agent",
        "agent ",
        "csat",
        "bot",
        "live",
        "2026-02-30T00:00:00Z",
        4.0,
        4.5,
        True,
        0,
        -1,
        None,
        [],
        {},
        "2026-11-23T08:59:55+01:00",
        "1969-12-31T23:00:00Z",
        "foo.bar",
    ]
)


@st.composite
def valid_event(draw: st.DrawFn) -> dict[str, Any]:
    event_type = draw(st.sampled_from(sorted(MINIMAL)))
    raw = event_dict(event_type)
    raw["ts"] = draw(rfc3339())[0]
    for field in raw:
        if field in FIELD_VALUES:
            raw[field] = draw(FIELD_VALUES[field])
    if event_type == "conversation.rated":
        raw["score"] = draw(st.integers(1, 5))
        raw["survey"] = "csat"
    for field in OPTIONAL.get(event_type, {}):
        choice = draw(st.sampled_from(["absent", "null", "value"]))
        if choice != "absent":
            raw[field] = None if choice == "null" else draw(FIELD_VALUES[field])
    if event_type == "message.sent" and raw["sender"] == "agent" and raw.get("agent_id") is None:
        raw["agent_id"] = draw(ids)
    return raw


@st.composite
def mutated_event(draw: st.DrawFn) -> dict[str, Any]:
    raw = draw(valid_event())
    for _ in range(draw(st.integers(0, 3))):
        field = draw(st.sampled_from(sorted({*raw, *ALL_FIELDS})))
        action = draw(st.sampled_from(["delete", "null", "json", "near", "field"]))
        if action == "delete":
            raw.pop(field, None)
        elif action == "null":
            raw[field] = None
        elif action == "json":
            raw[field] = draw(json_values)
        elif action == "near":
            raw[field] = draw(NEAR_MISSES)
        elif field in FIELD_VALUES:
            raw[field] = draw(FIELD_VALUES[field])
    return raw


def check_total(result: object) -> None:
    assert isinstance(result, (Event, Rejection))
    if isinstance(result, Rejection):
        assert result.reason
        assert "\n" not in result.reason


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    check_total(decode_event(raw))
    line = decode_line(raw)
    if line is not None:
        check_total(line)


@given(json_values)
def test_arbitrary_json_values_never_raise(value: Any) -> None:
    check_total(decode(value))


@given(valid_event())
def test_generated_valid_events_are_accepted(raw: dict[str, Any]) -> None:
    event = accepted(raw)
    assert fields_of(event) == {key: value for key, value in raw.items() if value is not None}


def same_outcome(raw: bytes) -> None:
    fast, schema = decode_event(raw), decode_with_schema(raw)
    check_total(fast)
    assert type(fast) is type(schema), (fast, schema)
    if isinstance(fast, Event):
        assert fast == schema
    else:
        assert isinstance(schema, Rejection)
        assert (fast.tenant, fast.ts_us, fast.raw) == (schema.tenant, schema.ts_us, schema.raw)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_event())
def test_hand_decoder_agrees_with_the_schemas(raw: dict[str, Any]) -> None:
    """The fast hand-written checks accept exactly what topics/schemas accept."""
    same_outcome(encode(raw))


@functools.cache
def topic_validators(topic: str) -> tuple[jsonschema.Draft7Validator, Callable[[Any], Any]]:
    schema = load_schema(topic)
    return jsonschema.Draft7Validator(schema), fastjsonschema.compile(schema)


@settings(max_examples=300, deadline=None)
@given(mutated_event())
def test_topic_schemas_read_the_same_in_both_validators(raw: dict[str, Any]) -> None:
    """jsonschema and fastjsonschema agree on the whole topic schema (e.g. 4.0 is an integer),
    and the decoder's schema path accepts what they accept, when the ts also parses."""
    topic = "chat.agent-status" if raw.get("type") == "agent.status" else "chat.events"
    reference, compiled = topic_validators(topic)
    valid = reference.is_valid(raw)
    try:
        compiled(raw)
    except fastjsonschema.JsonSchemaValueException:
        assert not valid
    else:
        assert valid
    ts_parses = valid and _parses(raw["ts"])
    assert isinstance(decode_with_schema(encode(raw)), Event) == ts_parses


def _parses(ts: str) -> bool:
    try:
        parse_ts(ts)
    except ValueError:
        return False
    return True


def test_decoder_knows_exactly_the_types_of_the_schemas() -> None:
    chat = load_schema("chat.events")["properties"]["type"]["enum"]
    status = load_schema("chat.agent-status")["properties"]["type"]["enum"]
    assert set(events._CHECKS) == {*chat, *status} == set(MINIMAL)


@pytest.mark.parametrize("event_type", sorted(MINIMAL))
def test_schema_path_gives_readable_reasons_too(event_type: str) -> None:
    raw = event_dict(event_type)
    del raw["tenant"]
    result = decode_with_schema(encode(raw))
    assert isinstance(result, Rejection)
    assert result.reason == "missing field 'tenant'"


def test_decoded_event_is_the_same_immutable_event_the_constructor_builds() -> None:
    raw = event_dict("message.sent")
    event = decode_event(encode(raw))
    assert type(event) is Event
    body = MessageSent(**{key: value for key, value in raw.items() if key != "type"})
    assert event == Event(raw["event_id"], "message.sent", TS_US, "acme", "c-1", body)
    assert_read_only(event)


# --- the fast path (msgspec structs) and the checked path -----------------------


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_event())
def test_fast_path_accepts_only_what_the_checked_path_accepts(raw: dict[str, Any]) -> None:
    """Whatever the structs accept, the hand-written checks accept as the same event:
    the checked path alone decides validity (and names the reasons)."""
    encoded = encode(raw)
    checked = events._decode_checked(encoded)
    try:
        body = events._decode_body(encoded)
    except (msgspec.MsgspecError, RecursionError):
        return
    fast = events._fast_event(body)
    if fast is not None:
        assert fast == checked


UNDECLARED = st.dictionaries(
    st.text(min_size=1, max_size=8).filter(lambda key: key not in ALL_FIELDS),
    json_values,
    min_size=1,
    max_size=3,
)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_event(), UNDECLARED)
def test_undeclared_fields_path_accepts_only_what_the_checked_path_accepts(
    raw: dict[str, Any], undeclared: dict[str, Any]
) -> None:
    """An event with fields its type does not declare skips the checked path when the
    rest is valid, and is then the very event the checks make; whatever it refuses the
    checked path decides (and names)."""
    encoded = encode({**raw, **undeclared})
    checked = events._decode_checked(encoded)
    body = events._body_without_undeclared(encoded)
    fast = None if body is None else events._fast_event(body)
    if fast is not None:
        assert fast == checked
    assert decode_event(encoded) == checked


@given(valid_event(), UNDECLARED)
def test_a_valid_event_with_undeclared_fields_keeps_the_fast_path(
    raw: dict[str, Any], undeclared: dict[str, Any]
) -> None:
    encoded = encode({**raw, **undeclared})
    with pytest.raises(msgspec.ValidationError, match="unknown field"):
        events._decode_body(encoded)
    assert events._decode_fast(encoded) == events._decode_checked(encoded)
    assert isinstance(events._decode_fast(encoded), Event)


@pytest.mark.parametrize(
    "tail",
    [
        b',"x_trace":"\xff\xfe"}',  # not UTF-8
        b',"x_trace":1e400}',  # beyond a double: orjson refuses
        b',"x_trace":' + b"[" * 2000 + b"]" * 2000 + b"}",  # deeper than orjson takes
    ],
)
def test_an_undeclared_field_that_is_not_json_to_orjson_is_rejected(tail: bytes) -> None:
    encoded = encode(event_dict("message.sent"))[:-1] + tail
    assert events._body_without_undeclared(encoded) is None
    assert isinstance(decode_event(encoded), Rejection)


# --- undeclared fields, learned (`events._ExtraFields`) -----------------------------

#: Names platforms add; two of them are declared by some types (then they are that
#: type's field, with its checks) and undeclared by the others.
PLATFORM_FIELDS = ("x_trace", "source", "meta", "agent_id", "conversation_id")
PLATFORM_EXTRAS = st.dictionaries(st.sampled_from(PLATFORM_FIELDS), json_values, max_size=3)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(mutated_event(), PLATFORM_EXTRAS), min_size=1, max_size=4))
def test_learned_fields_path_accepts_only_what_the_checked_path_accepts(
    stream: list[tuple[dict[str, Any], dict[str, Any]]],
) -> None:
    """Events with and without fields their type does not declare, in any order: each is
    the very event (or the very rejection) the checks make, and a valid one with such
    fields keeps the fast path, its names learned and tried first for the next event."""
    extra = events._EXTRA_FIELDS
    extra.forget()
    for raw, platform in stream:
        merged = {**raw, **platform}
        encoded = encode(merged)
        checked = events._decode_checked(encoded)
        undeclared: set[str] = set()
        declared_only_fast = False
        if isinstance(checked, Event):  # a null is absent (SPEC §7 [3])
            declared = {"type", *checked.data.__struct_encode_fields__}
            undeclared = {name for name, value in merged.items() if value is not None}
            undeclared -= declared
            declared_only = {name: value for name, value in merged.items() if name in declared}
            declared_only_fast = events._decode_fast(encode(declared_only)) is not None
        fast = events._decode_fast(encoded)
        if fast is not None:
            assert fast == checked
        assert decode_event(encoded) == checked
        if undeclared and declared_only_fast:  # fields no type declares keep the fast path
            assert fast == checked
            for _ in range(events.LEARNING_STREAK):  # a run of them: names learned
                assert events._decode_fast(encoded) == checked
            assert undeclared <= set(extra.names)
            assert extra.first
        elif fast is not None:
            assert not extra.first
    extra.forget()


def test_learned_fields_are_read_by_one_decoder_and_tried_first_while_events_carry_them() -> None:
    extra = events._EXTRA_FIELDS
    extra.forget()
    plain = encode(event_dict("message.sent"))
    tagged = encode({**event_dict("conversation.tagged", tag="vip"), "source": "web", "meta": {}})
    assert decode_event(plain) == events._decode_checked(plain)
    assert extra.names == [] and not extra.first
    assert decode_event(tagged) == events._decode_checked(tagged)
    for _ in range(events.LEARNING_STREAK - 1):
        assert decode_event(tagged) == events._decode_checked(tagged)
    assert extra.names == [] and not extra.first  # not yet a run
    assert decode_event(tagged) == events._decode_checked(tagged)
    assert extra.names == ["source", "meta"] and extra.first
    extra_free = events._decode_fast(plain)
    assert extra_free == events._decode_checked(plain)
    assert type(extra_free.data) is MessageSent  # the type's own struct, not the learned one
    assert not extra.first  # the last event had none: the structs first again
    extra.forget()


LEARNED_X = (
    b'{"type":"conversation.closed","event_id":"e","ts":"2026-01-01T00:00:00Z",'
    b'"tenant":"t","conversation_id":"c"'
)
HUGE = b"1" + b"0" * 309  # past a double: orjson refuses it, msgspec reads an int


def learn_x() -> Any:
    """The extra-fields state with `x` learned on conversation.closed and tried first."""
    extra = events._EXTRA_FIELDS
    extra.forget()
    learned = LEARNED_X + b',"x":1}'
    for _ in range(events.LEARNING_STREAK + 1):  # a run of them: learned
        assert decode_event(learned) == events._decode_checked(learned)
    assert extra.names == ["x"] and extra.first
    return extra


@pytest.mark.parametrize(
    ("tail", "recursion_limit"),
    [
        (b',"x":"\xff\xfe"}', 0),  # not UTF-8
        (b',"x":1e400}', 0),  # beyond a double
        (b',"x":"\\ud800"}', 0),  # a lone surrogate
        (b',"x":[' + b"9" * 400 + b"]}", 0),  # an integer beyond a double
        (b',"x":' + b"[" * 2000 + b"]" * 2000 + b"}", 0),  # deeper than orjson takes
        # msgspec nests as deep as the recursion limit, which a program may raise
        (b',"x":' + b"[" * 1100 + b"]" * 1100 + b"}", 20_000),
        (b',"x":' + b"[" * 25_000 + b"]" * 25_000 + b"}", 30_000),  # crashed msgspec
        # a repeated key keeps its last value in msgspec: an earlier one orjson refuses
        # must keep the line from the learned decoder too (found in review)
        (b',"x":' + HUGE + b',"x":0}', 0),
        (b',"x":-' + HUGE + b',"x":null}', 0),
        (b',"x":{"a":' + HUGE + b',"a":0}}', 0),
        (b',"x":[{"a":' + HUGE + b',"a":0}]}', 0),
        (b',"\\u0078":' + HUGE + b',"x":1}', 0),  # the key spelled with an escape
        (b',"x":' + b"[" * 1100 + b"]" * 1100 + b',"x":0}', 20_000),
    ],
)
def test_a_learned_field_that_is_not_json_to_orjson_is_rejected(
    tail: bytes, recursion_limit: int
) -> None:
    extra = learn_x()
    encoded = LEARNED_X + tail
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, recursion_limit))
    try:
        fast = events._decode_fast(encoded)
        result = decode_event(encoded)
    finally:
        sys.setrecursionlimit(limit)
    assert fast is None
    assert isinstance(result, Rejection) and result.reason.startswith("not JSON")
    extra.forget()


@pytest.mark.parametrize(
    "value",
    [
        b"[" * 1020 + b"]" * 1020,  # past the learned decoder's bracket bound: orjson reads it
        b'{"n":18446744073709551616}',  # past 64 bits: orjson reads a double, msgspec an int
        b"-" + b"9" * 300,
    ],
)
def test_a_learned_field_orjson_takes_is_read_as_the_checks_read_it(value: bytes) -> None:
    extra = learn_x()
    for encoded in (LEARNED_X + b',"x":' + value + b"}", LEARNED_X + b',"new":' + value + b"}"):
        assert decode_event(encoded) == events._decode_checked(encoded)
        assert isinstance(decode_event(encoded), Event)
    extra.forget()


def test_a_repeated_score_whose_earlier_value_orjson_refuses_is_rejected() -> None:
    """The structs read `score` bounded: an earlier, huge value is not overwritten unseen."""
    raw = encode(event_dict("conversation.rated"))[:-1] + b',"score":' + HUGE + b',"score":3}'
    assert events._decode_fast(raw) is None
    result = decode_event(raw)
    assert isinstance(result, Rejection) and result.reason.startswith("not JSON")


def test_names_msgspec_cannot_take_and_names_past_the_bound_are_read_as_before() -> None:
    extra = events._EXTRA_FIELDS
    extra.forget()
    base = event_dict("conversation.closed")
    for odd_name in ("line\nbreak", 'quo"te', "back\\slash"):
        odd = encode({**base, odd_name: 1})
        for _ in range(events.LEARNING_STREAK + 1):  # a run of them: tried
            assert decode_event(odd) == events._decode_checked(odd)
            assert isinstance(decode_event(odd), Event)
    assert extra.names == [] and extra.refused == {"line\nbreak", 'quo"te', "back\\slash"}
    for number in range(events.EXTRA_FIELD_NAMES + 5):
        encoded = encode({**base, f"field_{number}": number})
        assert decode_event(encoded) == events._decode_checked(encoded)
        assert isinstance(decode_event(encoded), Event)
    assert len(extra.names) == events.EXTRA_FIELD_NAMES
    extra.forget()


@pytest.mark.parametrize(
    "raw",
    [
        event_dict("conversation.rated", score=4.0),  # an integral float score
        event_dict("conversation.rated", survey="nps", score=10.0),
    ],
)
def test_input_the_structs_refuse_is_still_decided_by_the_checks(raw: dict[str, Any]) -> None:
    encoded = encode(raw)
    with pytest.raises(msgspec.ValidationError):
        events._decode_body(encoded)
    assert decode_event(encoded) == events._decode_checked(encoded)
    assert isinstance(decode_event(encoded), Event)


def test_a_repeated_type_key_counts_its_last_value_as_in_the_checks() -> None:
    raw = encode(event_dict("message.sent"))[:-1] + b',"type":"conversation.closed"}'
    event = decode_event(raw)
    assert isinstance(event, Event)
    assert event.type == "conversation.closed"


@pytest.mark.parametrize("depth", [600, 1020])
def test_unknown_field_nested_deeper_than_the_structs_allow_is_still_accepted(depth: int) -> None:
    """An unknown field sends the event down the checked path (the structs refuse it);
    orjson takes up to 1 024 levels of nesting, so the event is valid."""
    nested = b"[" * depth + b"]" * depth
    raw = encode(event_dict("conversation.closed"))[:-1] + b',"x":' + nested + b"}"
    assert isinstance(decode_event(raw), Event)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (event_dict("message.sent", sender="agent"), "missing field 'agent_id'"),
        (event_dict("conversation.assigned", group_id="g-1"), "exactly one of"),
        (event_dict("conversation.rated", score=6), "field 'score' must be an integer from 1"),
        (event_dict("conversation.closed", ts="2026-02-30T00:00:00Z"), "field 'ts'"),
    ],
)
def test_rules_across_fields_and_ts_are_checked_after_the_structs(
    raw: dict[str, Any], reason: str
) -> None:
    """The structs accept these; the rules checked after them refuse, with the reason."""
    events._decode_body(encode(raw))
    assert rejected(raw).reason.startswith(reason)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mutated_event(),
    st.sampled_from([b"", b"\n", b"\r\n", b" \n", b"\n\n", b"\t\n", b"\x0c\n", b"\r", b"\x00\n"]),
)
def test_a_line_decodes_as_its_event_without_the_newline(raw: dict[str, Any], end: bytes) -> None:
    """decode_line hands valid lines to the fast path newline and all; the result is the
    checked path's on the line without its newline (SPEC §7 [1])."""
    line = encode(raw) + end
    event = line[:-2] if line.endswith(b"\r\n") else line[:-1] if line.endswith(b"\n") else line
    assert decode_line(line) == events._decode_checked(event)


CLOSED = encode(event_dict("conversation.closed"))[:-1]
STATUS = encode(event_dict("agent.status"))[:-1]


@pytest.mark.parametrize(
    "raw",
    [
        CLOSED + b',"x":"\xff"}',  # invalid UTF-8 in a field no struct declares
        CLOSED + b',"x":"\xed\xa0\x80"}',  # an encoded surrogate
        CLOSED + b',"x":[{"y":-1e400}]}',  # a number beyond a double, nested
        CLOSED + b',"x":' + b"9" * 400 + b"}",
        STATUS + b',"conversation_id":"\xff"}',  # declared by other types, not agent.status
        encode(event_dict("message.sent", sender="bot"))[:-1] + b',"meta":1e309}',
    ],
)
def test_input_that_is_not_json_in_an_unknown_field_is_rejected(raw: bytes) -> None:
    """msgspec skips an undeclared field without orjson's checks: the structs refuse
    undeclared fields, so the checked path decides (found in review)."""
    assert events._decode_fast(raw) is None
    result = decode_event(raw)
    assert isinstance(result, Rejection)
    assert result.reason.startswith("not JSON")


def test_an_unknown_field_is_ignored_without_the_checked_path() -> None:
    raw = encode(event_dict("message.sent", x_trace={"span": [1, 2.5, None]}))
    plain = decode_event(encode(event_dict("message.sent")))
    assert isinstance(plain, Event)
    assert events._decode_fast(raw) == plain == decode_event(raw)


JSON_ODDITIES = st.sampled_from(
    [
        b"1e400",
        b"-1e309",
        b"9" * 330,
        b"1.",
        b".5",
        b"01",
        b"NaN",
        b"Infinity",
        b'"\\ud800"',
        b'"\xff"',
        b'"\xc0\xaf"',
        b"[" * 1030 + b"]" * 1030,
        b"true",
        b"null",
        b'"\\u0000"',
        b"{}",
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(sorted(MINIMAL)), st.one_of(JSON_ODDITIES, st.binary(max_size=12)))
def test_bytes_orjson_refuses_anywhere_keep_an_event_off_the_fast_path(
    event_type: str, value: bytes
) -> None:
    """Raw bytes, not a dict: what `encode` can never produce, in a declared or an
    unknown field; the fast path accepts only what the checked path accepts."""
    for field in ("x", *MINIMAL[event_type]):
        base = {key: v for key, v in event_dict(event_type).items() if key != field}
        raw = encode(base)[:-1] + b',"' + field.encode() + b'":' + value + b"}"
        fast = events._decode_fast(raw)
        if fast is not None:
            assert fast == events._decode_checked(raw)
