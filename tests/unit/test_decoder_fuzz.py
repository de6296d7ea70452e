"""Garbage in never stops the pipeline (SPEC §1 "Bad input"): fuzzing the decoder and the processor.

`decode_event` / `decode_line` must answer every byte string with an `Event` or
a `Rejection` (a readable reason), never an exception: broken and deeply
nested JSON, wrong types on every field, missing keys, non-UTF-8 bytes, huge
numbers, payloads over 1 MiB, timestamps outside 1970..9999. `LiveProcessor.apply`
must take the same garbage without raising, dead-letter each bad input with
its reason and original bytes (`flush().messages`), and keep counting valid
input after any amount of it.
"""

from __future__ import annotations

import base64
from functools import cache
from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livemetrics.config import Config, parse_config
from livemetrics.events import MAX_EVENT_BYTES, Event, Rejection, decode_event, decode_line
from livemetrics.simulate.streams import STREAM_CONFIG, generate_stream
from livemetrics.stream.processor import DLQ, DLQ_ORIGINAL_LIMIT, EVENTS, STATUS, LiveProcessor
from livemetrics.topics import load_schema

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROCESSOR_FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

FIELDS = (
    "event_id", "type", "ts", "tenant", "conversation_id", "channel", "direction",
    "customer_id", "customer_name", "contact_type", "skill", "campaign", "theme", "handled_by",
    "sender", "agent_id", "mode", "text", "group_id", "via", "team_id", "tag", "survey",
    "score", "transaction_id", "amount", "currency", "status",
)  # fmt: skip
TYPES = (
    "conversation.started", "message.sent", "conversation.assigned", "agent.focus.started",
    "agent.focus.ended", "conversation.tagged", "conversation.resolved",
    "conversation.reopened", "conversation.closed", "conversation.rated",
    "conversation.transaction", "agent.status",
)  # fmt: skip
EDGE_TIMESTAMPS = (
    "1970-01-01T00:00:00Z",
    "1969-12-31T23:59:59.999999Z",
    "0001-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "9999-12-30T23:59:59.999999Z",
    "9999-12-31T00:00:00Z",
    "9999-12-31T23:59:59+23:59",
    "10000-01-01T00:00:00Z",
    "1970-01-01T00:00:00+14:00",
    "2026-11-22T10:00:00.12345678901234567890Z",
    "2026-11-22T10:00:00Z\u0000",
    "２０２６-11-22T10:00:00Z",
)


@cache
def _config() -> Config:
    return parse_config(STREAM_CONFIG)


@cache
def _valid_lines() -> tuple[bytes, ...]:
    lines = generate_stream(77, conversations=40, invalid_rate=0.0)
    return tuple(line for line in lines if isinstance(decode_line(line), Event))


# --- strategies -----------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(("", " ", "acme", "chat", "agent", "csat", "9", "4.0", *TYPES)),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
timestamps = st.one_of(
    st.sampled_from(EDGE_TIMESTAMPS),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.text(max_size=30),
    json_values,
)


@st.composite
def event_like_objects(draw: st.DrawFn) -> dict[str, Any]:
    """Objects that look like events: some known fields, any values, some missing."""
    obj: dict[str, Any] = {}
    for name in draw(st.lists(st.sampled_from(FIELDS), unique=True, max_size=len(FIELDS))):
        obj[name] = draw(json_values)
    if draw(st.booleans()):
        obj["type"] = draw(st.sampled_from(TYPES))
    if draw(st.booleans()):
        obj["ts"] = draw(timestamps)
    return obj


@st.composite
def mutated_valid_lines(draw: st.DrawFn) -> bytes:
    """A real event with one thing broken: a field removed, retyped, or the bytes mangled."""
    line = draw(st.sampled_from(_valid_lines()))
    how = draw(st.sampled_from(("drop", "retype", "truncate", "flip", "splice")))
    if how in ("drop", "retype"):
        obj = orjson.loads(line)
        name = draw(st.sampled_from(sorted(obj)))
        if how == "drop":
            del obj[name]
        else:
            obj[name] = draw(json_values)
        return orjson.dumps(obj)
    if how == "truncate":
        return line[: draw(st.integers(0, len(line) - 1))]
    if how == "flip":
        at = draw(st.integers(0, len(line) - 1))
        return line[:at] + bytes([draw(st.integers(0, 255))]) + line[at + 1 :]
    at = draw(st.integers(0, len(line)))
    return line[:at] + draw(st.binary(min_size=1, max_size=8)) + line[at:]


garbage = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    event_like_objects().map(orjson.dumps),
    json_values.map(orjson.dumps),
    mutated_valid_lines(),
)


def _check_decoded(raw: bytes, item: Event | Rejection) -> None:
    assert isinstance(item, Event | Rejection)
    if isinstance(item, Rejection):
        assert item.reason and "\n" not in item.reason
        assert item.raw == raw
        assert item.tenant is None or (isinstance(item.tenant, str) and item.tenant)
        assert item.ts_us is None or isinstance(item.ts_us, int)
        return
    assert item.event_id and item.tenant and item.type in TYPES
    assert item.ts_us >= 0
    assert (item.conversation_id is None) == (item.type == "agent.status")


# --- the decoder ----------------------------------------------------------------


@FUZZ
@given(garbage)
def test_decode_event_answers_any_bytes_with_an_event_or_a_reason(raw: bytes) -> None:
    _check_decoded(raw, decode_event(raw))


@FUZZ
@given(event_like_objects())
def test_event_like_objects_with_wrong_types_and_missing_keys(obj: dict[str, Any]) -> None:
    raw = orjson.dumps(obj)
    item = decode_event(raw)
    _check_decoded(raw, item)
    if isinstance(item, Event):  # then the envelope really was valid
        assert item.event_id == obj["event_id"]
        assert item.tenant == obj["tenant"]


@FUZZ
@given(st.binary(max_size=200), st.sampled_from((b"", b"\n", b"\r\n")))
def test_decode_line_is_none_only_for_blank_lines(body: bytes, ending: bytes) -> None:
    line = body + ending
    event_bytes = line[:-2] if line.endswith(b"\r\n") else line.removesuffix(b"\n")
    item = decode_line(line)
    if not event_bytes.strip():
        assert item is None
    else:
        assert item is not None
        _check_decoded(event_bytes, item)


@pytest.mark.parametrize("ts", EDGE_TIMESTAMPS)
def test_timestamps_far_in_the_past_or_future(ts: str) -> None:
    raw = orjson.dumps(
        {
            "event_id": "e1",
            "type": "conversation.closed",
            "ts": ts,
            "tenant": "acme",
            "conversation_id": "c1",
        }
    )
    item = decode_event(raw)
    _check_decoded(raw, item)
    if isinstance(item, Rejection):
        assert "field 'ts'" in item.reason


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[" * 100_000, "not JSON"),
        (b'{"a":' * 5_000 + b"1" + b"}" * 5_000, "not JSON"),
        (orjson.dumps({"event_id": [[[[[[[[[[[]]]]]]]]]]]}), "missing field 'type'"),
        (b'{"event_id": 1e999}', "not JSON"),
        (b'{"type": "conversation.closed", "event_id": 1234567890123456789012345}', "event_id"),
        (b'{"type": "conversation.closed", "event_id": "e", "ts": 1e308}', "field 'ts'"),
        (b'{"event_id": -0.0, "type": "conversation.closed"}', "event_id"),
        (b"\xff\xfe\x00\x01", "not JSON"),
        (b'{"tenant": "\xc3\x28"}', "not JSON"),
        (b'{"tenant": "\\ud800"}', "not JSON"),
        (b"\x00" * 64, "not JSON"),
        (b"", "not JSON"),
    ],
)
def test_pathological_inputs_are_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    item = decode_event(raw)
    assert isinstance(item, Rejection)
    assert reason in item.reason


@pytest.mark.parametrize("valid_json", [True, False])
def test_payloads_over_one_mib_are_rejected_with_tenant_and_ts_kept(valid_json: bool) -> None:
    body = {
        "event_id": "big",
        "type": "message.sent",
        "ts": "2026-10-23T10:00:00Z",
        "tenant": "acme",
        "conversation_id": "c1",
        "sender": "customer",
        "text": "x" * MAX_EVENT_BYTES,
    }
    raw = orjson.dumps(body) if valid_json else orjson.dumps(body)[:-2]
    item = decode_event(raw)
    assert isinstance(item, Rejection)
    assert "over the 1 MiB limit" in item.reason
    if valid_json:
        assert (item.tenant, item.ts_us) == ("acme", 1_792_749_600_000_000)


def test_exactly_one_mib_is_still_decoded() -> None:
    head = b'{"event_id":"e","type":"conversation.closed","ts":"2026-10-23T10:00:00Z",'
    head += b'"tenant":"acme","conversation_id":"c1","pad":"'
    raw = head + b"x" * (MAX_EVENT_BYTES - len(head) - 2) + b'"}'
    assert len(raw) == MAX_EVENT_BYTES
    assert isinstance(decode_event(raw), Event)
    assert isinstance(decode_event(raw[:-2] + b'x"}'), Rejection)


# --- the processor ----------------------------------------------------------------


def _dead_letters(processor: LiveProcessor) -> list[dict[str, Any]]:
    return [orjson.loads(m.value) for m in processor.flush().messages if m.topic == DLQ]


@PROCESSOR_FUZZ
@given(st.lists(st.one_of(garbage, st.sampled_from(_valid_lines())), min_size=1, max_size=30))
def test_live_processor_never_raises_and_dead_letters_each_bad_input(inputs: list[bytes]) -> None:
    processor = LiveProcessor(_config())
    for offset, raw in enumerate(inputs):
        assert processor.apply(EVENTS, 0, offset, raw)
    letters = _dead_letters(processor)
    rejected = [raw for raw in inputs if isinstance(decode_event(raw), Rejection)]
    assert len(letters) == len(rejected)
    counters = processor.partition(EVENTS, 0).counters
    assert counters.get("dead_lettered", 0) == len(rejected)
    assert sum(counters.values()) == len(inputs)  # one outcome per input
    for letter, raw in zip(letters, rejected, strict=True):
        assert letter["reason"] == decode_event(raw).reason  # type: ignore[union-attr]
        assert letter["source_topic"] == EVENTS
        assert base64.b64decode(letter["original"]) == raw[:DLQ_ORIGINAL_LIMIT]
        assert letter["original_bytes"] == len(raw)


@PROCESSOR_FUZZ
@given(event_like_objects(), st.sampled_from((EVENTS, STATUS)))
def test_live_processor_takes_event_like_objects_on_both_topics(
    obj: dict[str, Any], topic: str
) -> None:
    """Valid events among them are processed whatever their values (ids, tenants, texts)."""
    processor = LiveProcessor(_config())
    raw = orjson.dumps(obj)
    item = decode_event(raw)
    assert processor.apply(topic, 3, 0, raw)
    flush = processor.flush()
    if isinstance(item, Rejection):
        assert [m.topic for m in flush.messages if m.topic == DLQ] == [DLQ]


def test_a_valid_event_after_a_thousand_bad_ones_is_counted() -> None:
    processor = LiveProcessor(_config())
    bad = [
        b"",
        b"\xff" * 10,
        b"{",
        b"[]",
        b'{"type": "conversation.started"}',
        b'{"event_id": "x", "type": "message.sent", "ts": "yesterday", "tenant": "acme"}',
        b'{"event_id": "x", "type": "conversation.snoozed", "ts": "2026-10-23T10:00:00Z"}',
        b"x" * (MAX_EVENT_BYTES + 1),
    ]
    for offset in range(1000):
        processor.apply(EVENTS, 0, offset, bad[offset % len(bad)])
    assert len(_dead_letters(processor)) == 1000
    good = orjson.dumps(
        {
            "event_id": "good-1",
            "type": "conversation.started",
            "ts": "2026-10-23T10:00:00Z",
            "tenant": "acme",
            "conversation_id": "c-after-garbage",
            "channel": "chat",
            "direction": "inbound",
            "customer_id": "cust-1",
        }
    )
    assert processor.apply(EVENTS, 0, 1000, good)
    counters = processor.partition(EVENTS, 0).counters
    assert counters == {"dead_lettered": 1000, "processed": 1}
    started = [
        c.cells for c in processor.flush().conversations if c.conversation_id == "c-after-garbage"
    ]
    assert started
    assert any(cell.get("conversations_started") == 1 for cell in started[0].values())


@pytest.mark.parametrize(
    "tenant",
    ["acme", "globex", "initech"],
)
def test_valid_events_at_the_end_of_time_do_not_crash_the_processor(tenant: str) -> None:
    processor = LiveProcessor(_config())
    for offset, (event_type, extra) in enumerate(
        [
            (
                "conversation.started",
                {"channel": "chat", "direction": "inbound", "customer_id": "c"},
            ),
            ("message.sent", {"sender": "customer"}),
            ("conversation.assigned", {"agent_id": "ag", "via": "routing"}),
            ("message.sent", {"sender": "agent", "agent_id": "ag"}),
            ("conversation.closed", {}),
        ]
    ):
        raw = orjson.dumps(
            {
                "event_id": f"e{offset}",
                "type": event_type,
                "ts": f"9999-12-30T23:59:5{offset}Z",
                "tenant": tenant,
                "conversation_id": "c-end",
                **extra,
            }
        )
        assert processor.apply(EVENTS, 0, offset, raw)


_END_CONFIG = """
[tenants.late]
timezone = "UTC"
holidays = ["9999-12-31"]

[tenants.late.service_hours]
thu = ["07:00-17:00"]

[[tenants.late.sla]]
kind = "first_response"
target_seconds = 36000
business_hours = true
"""


def test_an_at_risk_notice_whose_deadline_is_past_9999_says_it_never_comes() -> None:
    """Thursday 9999-12-30 08:00 + 10 business hours: 9 h that day, then closed forever.

    The at-risk point (80 %: 16:00) is reachable, the deadline is not; the
    notice must carry `deadline: null` (schema-valid) instead of crashing.
    """
    processor = LiveProcessor(parse_config(_END_CONFIG))
    base = {"tenant": "late", "conversation_id": "c-last"}
    events = [
        {"type": "conversation.started", "ts": "9999-12-30T08:00:00Z", "channel": "chat",
         "direction": "inbound", "customer_id": "cu"},
        {"type": "message.sent", "ts": "9999-12-30T08:00:00Z", "sender": "customer"},
        {"type": "message.sent", "ts": "9999-12-30T16:30:00Z", "sender": "customer"},
    ]  # fmt: skip
    for offset, event in enumerate(events):
        raw = orjson.dumps({"event_id": f"e{offset}", **base, **event})
        assert processor.apply(EVENTS, 0, offset, raw)
    notices = [
        orjson.loads(m.value) for m in processor.flush().messages if m.topic == "livemetrics.sla"
    ]
    assert [(n["kind"], n["deadline"]) for n in notices] == [("at_risk", None)]
    schema = jsonschema.Draft7Validator(load_schema("livemetrics.sla"))
    assert not list(schema.iter_errors(notices[0]))


@pytest.mark.parametrize("opening", [b"[", b'{"a":'])
@pytest.mark.parametrize("depth", [253, 254, 255, 600, 1023])
def test_a_type_nested_deeper_than_orjson_writes_is_rejected_with_a_reason(
    opening: bytes, depth: int
) -> None:
    """The reason shows the value it refuses; a value nested past orjson's encoder
    limit (254 levels, where its decoder takes 1024) is named, not shown: before,
    showing it raised instead of rejecting."""
    closing = b"]" if opening == b"[" else b"}"
    raw = b'{"event_id":"e-1","type":' + opening * depth + b"1" + closing * depth + b"}"
    for result in (decode_event(raw), decode_line(raw + b"\n")):
        assert isinstance(result, Rejection), result
        assert result.reason.startswith("unknown event type"), result.reason
