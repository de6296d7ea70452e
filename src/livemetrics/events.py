"""Decode and validate input bytes into events, or say exactly why not (SPEC §1, §7 [1]-[4]).

Bad input never stops the pipeline and is never dropped silently: it becomes a
`Rejection` with one readable line naming the field, for the dead-letter topic
and `invalid_events` (D3).

    >>> decode_event(b'{"event_id":"e1","type":"conversation.closed",'
    ...              b'"ts":"2026-11-22T10:00:00Z","tenant":"acme","conversation_id":"c1"}').ts_us
    1795341600000000

Speed matters (replay targets 150k events/s on one core), so there are two
paths. The fast one decodes and validates in one pass in C: msgspec structs,
one per event type (`event_types`), then the few rules that span fields and
`ts`. Anything it does not accept goes down the checked path: `orjson` plus
hand-written checks that name the first broken rule, and that alone decide
whether the input is valid (the structs are stricter, never looser: a field
they do not declare, a score of `4.0`, a repeated `type` key). The JSON
Schemas in `topics/schemas/` stay the documented contract: `decode_with_schema`
runs the same input through validators compiled from them, and the tests
prove that all paths accept and reject the same inputs.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import re
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import msgspec
import orjson

if TYPE_CHECKING:  # mypyc's machine integer; plain int at run time
    from mypy_extensions import i64

from livemetrics.event_types import (
    DECODER,
    TYPE_DECODER,
    TYPE_OF,
    AgentStatus,
    ConversationAssigned,
    ConversationRated,
    EventBody,
    ExtendedDecoder,
    MessageSent,
)

__all__ = [
    "MAX_EVENT_BYTES",
    "Event",
    "Rejection",
    "decode_event",
    "decode_line",
    "decode_with_schema",
    "format_ts",
    "parse_ts",
]

MAX_EVENT_BYTES: Final = 1 << 20  # a message/line over 1 MiB is invalid (SPEC §7 [1])

AGENT_STATUS: Final = "agent.status"


@dataclass(slots=True, init=False)
class Event:
    """A valid input event; `data` is its typed body (`event_types`), absent optionals None.

    Never changed once decoded: its fields are `Final`, so mypy refuses a write
    anywhere, and the compiled core also at run time. A slotted class with a
    hand-written `__init__`: compiled, a native class, built and read without
    Python's calling convention (one is made per input event; a named tuple
    built by `tuple.__new__` cost about 1.4k instructions more in replay).
    """

    event_id: Final[str]
    type: Final[str]
    ts_us: Final[int]
    tenant: Final[str]
    conversation_id: Final[str | None]
    data: Final[EventBody]

    def __init__(
        self,
        event_id: str,
        type: str,
        ts_us: int,
        tenant: str,
        conversation_id: str | None,
        data: EventBody,
    ) -> None:
        # written out (init=False): mypyc compiles this one; dataclass's would run as Python
        self.event_id = event_id
        self.type = type
        self.ts_us = ts_us
        self.tenant = tenant
        self.conversation_id = conversation_id
        self.data = data


@dataclass(slots=True, frozen=True)
class Rejection:
    """Input that cannot be used, with tenant and ts when readable (D3) for the DLQ."""

    reason: str
    raw: bytes
    tenant: str | None
    ts_us: int | None


# --- time ------------------------------------------------------------------

_TS_GRAMMAR: Final = "YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)"
_HEAD_MATCH: Final = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}"
).fullmatch
_TAIL_MATCH: Final = re.compile(r"(?:\.([0-9]+))?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))").fullmatch
_EPOCH: Final = _dt.datetime(1970, 1, 1)
_EPOCH_ORDINAL: Final = _EPOCH.toordinal()
_TS_MAX_US: Final = (_dt.date(9999, 12, 31).toordinal() - _EPOCH_ORDINAL) * 86_400_000_000
_CACHE_SIZE: Final = 8192
# The grammar splits into 'YYYY-MM-DDTHH', ':MM:SS', an optional '.fraction'
# and a zone ('Z' or '±HH:MM') that are valid independently. Events share
# hours and zones, so each valid hour and zone is cached with its value in
# microseconds (a day of traffic has 24 hours; a cache of minutes, 1 440 a
# day, missed on most events of a long file); minutes and seconds are a fixed
# table of 3 600. The fraction is nearly unique per event, so it is read
# directly: parsing a ts is three dictionary lookups and, with a fraction,
# one int().
_HOURS: Final[dict[str, int]] = {}
_MINUTE_SECONDS: Final[dict[str, int]] = {
    f":{minute:02d}:{second:02d}": (minute * 60 + second) * 1_000_000
    for minute in range(60)
    for second in range(60)
}
_ZONES: Final[dict[str, int]] = {"Z": 0, "z": 0}  # zone -> microseconds to add to reach UTC


def _hour_us(text: str) -> int:
    """Microseconds of the valid 'YYYY-MM-DDTHH' that starts `text`, read as UTC."""
    try:
        ordinal = _dt.date(int(text[:4]), int(text[5:7]), int(text[8:10])).toordinal()
    except ValueError as exc:
        raise ValueError(f"{_show(text)} has no such date ({exc})") from None
    hour = int(text[11:13])
    if hour > 23:
        raise ValueError(f"{_show(text)} has no such time of day")
    return ((ordinal - _EPOCH_ORDINAL) * 86_400 + hour * 3_600) * 1_000_000


def _tail_us(tail: str, text: str) -> int:
    """Fraction (truncated to µs) minus the UTC offset, in microseconds, else ValueError.

    Remembers the zone of a valid tail for the fast path of `parse_ts`.
    """
    match = _TAIL_MATCH(tail)
    if match is None:
        raise ValueError(f"{_show(text)} is not {_TS_GRAMMAR}")
    fraction, sign, offset_hours, offset_minutes = match.groups()
    fraction_us = 0 if fraction is None else int(fraction[:6].ljust(6, "0"))
    zone_us = 0
    if sign is not None:
        hours, minutes = int(offset_hours), int(offset_minutes)
        if hours > 23 or minutes > 59:
            raise ValueError(f"{_show(text)} has an impossible offset")
        offset_us = (hours * 3_600 + minutes * 60) * 1_000_000
        zone_us = -offset_us if sign == "+" else offset_us
    zone = tail if fraction is None else tail[1 + len(fraction) :]
    _remember(_ZONES, zone, zone_us)
    return fraction_us + zone_us


def _remember(cache: dict[str, int], key: str, value: int) -> int:
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value
    return value


def _parse_slow(text: str) -> int:
    """Validate `text` fully and cache its parts; the slow path of `parse_ts`."""
    if _HEAD_MATCH(text[:19]) is None:
        raise ValueError(f"{_show(text)} is not {_TS_GRAMMAR}")
    hour_key = text[:13]
    hour_us = _HOURS.get(hour_key)
    if hour_us is None:
        hour_us = _remember(_HOURS, hour_key, _hour_us(text))
    minute_second_us = _MINUTE_SECONDS.get(text[13:19])
    if minute_second_us is None:
        if int(text[14:16]) > 59:
            raise ValueError(f"{_show(text)} has no such time of day")
        leap = " (leap seconds are not accepted)" if text[17:19] == "60" else ""
        raise ValueError(f"{_show(text)} has no such time of day{leap}")
    return hour_us + minute_second_us + _tail_us(text[19:], text)


def parse_ts(text: str) -> int:
    """Microseconds since the epoch (UTC) of an RFC 3339 `ts` (SPEC §7 [4]).

    Grammar `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, `t`/`z` also in lower
    case; fraction digits past the microsecond are truncated. Rejected with a
    ValueError: anything else (no offset, a space for `T`), a date or time that
    does not exist (`2026-02-30`, second 60), and instants outside
    [1970-01-01, 9999-12-31) UTC, which local-time bucketing could not represent.

        >>> parse_ts("2026-11-22T11:00:00.2504999+01:00")
        1795341600250499

    Compiled, a valid `ts` is read character by character (`_ts_by_character`);
    as plain Python that is three times slower than the cached parts of
    `_ts_by_table`, which also names what is wrong with an invalid one.
    """
    if _COMPILED:
        ts_us = _ts_by_character(text)
        if ts_us >= 0:
            return ts_us
    return _ts_by_table(text)


def _ts_by_table(text: str) -> int:
    """`parse_ts` from cached hours and zones and a table of minute-seconds."""
    hour_us = _HOURS.get(text[:13])
    minute_second_us = _MINUTE_SECONDS.get(text[13:19])
    last = text[-1:]
    zone_at = len(text) - 1 if last == "Z" or last == "z" else len(text) - 6
    zone_us = _ZONES.get(text[zone_at:])
    if hour_us is None or minute_second_us is None or zone_us is None or zone_at < 19:
        ts_us = _parse_slow(text)
    elif zone_at == 19:
        ts_us = hour_us + minute_second_us + zone_us
    else:
        digits = text[20:zone_at]
        if text[19] != "." or not digits.isdigit() or not digits.isascii():
            ts_us = _parse_slow(text)  # raises the reason
        elif len(digits) == 6:
            ts_us = hour_us + minute_second_us + zone_us + int(digits)
        else:
            ts_us = hour_us + minute_second_us + zone_us + int(digits[:6].ljust(6, "0"))
    if not 0 <= ts_us < _TS_MAX_US:
        raise ValueError(f"{_show(text)} is outside 1970-01-01 .. 9999-12-30 UTC")
    return ts_us


def _two_digits(text: str, at: i64) -> i64:
    """The value of the two ASCII digits at `at`, else -1."""
    high: i64 = ord(text[at]) - 48
    low: i64 = ord(text[at + 1]) - 48
    if 0 <= high <= 9 and 0 <= low <= 9:
        return high * 10 + low
    return -1


class _Heads:
    """The last four valid heads (`YYYY-MM-DDTHH`) met by `_ts_by_character`, each
    with its microseconds since the epoch (of that local hour, before the offset).

    A stream's events share hours, in a few offsets (one per tenant's zone, say):
    on the bench stream four heads answer 94 % of events. Comparing a head takes
    one `startswith` (a memcmp) where reading it takes the date checks and the
    day count: about 240 instructions fewer an event in replay. Starts as four
    copies of the epoch's head, a valid one: a text only matches a head that it
    begins with, so a kept head is never a guess, and what is kept changes no
    result, only the time.
    """

    def __init__(self) -> None:
        self.head0 = self.head1 = self.head2 = self.head3 = "1970-01-01T00"
        self.value0: i64 = 0
        self.value1: i64 = 0
        self.value2: i64 = 0
        self.value3: i64 = 0

    def remember(self, head: str, value: i64) -> None:
        """Keep `head` first and forget the oldest."""
        self.head3, self.value3 = self.head2, self.value2
        self.head2, self.value2 = self.head1, self.value1
        self.head1, self.value1 = self.head0, self.value0
        self.head0, self.value0 = head, value


_HEADS: Final = _Heads()
_HEAD_LENGTH: Final = 13  # len("YYYY-MM-DDTHH")
_NO_HEAD: Final[i64] = -(1 << 62)  # below every head's value (year 0 is about -6.2e16 us)


def _head_us(text: str) -> i64:
    """Microseconds since the epoch of the valid head `YYYY-MM-DDTHH` that `text`
    starts with (at least 20 characters), else `_NO_HEAD`."""
    century = _two_digits(text, 0)
    year = _two_digits(text, 2)
    month = _two_digits(text, 5)
    day = _two_digits(text, 8)
    hour = _two_digits(text, 11)
    if century < 0 or year < 0 or day < 1 or month < 1 or month > 12 or hour < 0 or hour > 23:
        return _NO_HEAD
    separator: i64 = ord(text[10])
    if ord(text[4]) != 45 or ord(text[7]) != 45 or (separator != 84 and separator != 116):
        return _NO_HEAD  # not "-", "-", "T" or "t"
    year += century * 100  # year 0 ends up before the epoch: refused by the range
    if day > 28:
        if month == 2:
            leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
            last_day: i64 = 29 if leap else 28
        else:
            last_day = 30 + (month + month // 8) % 2  # 31 in Jan, Mar, May, Jul, Aug, Oct, Dec
        if day > last_day:
            return _NO_HEAD
    # days since 1970-01-01 of the proleptic Gregorian date (H. Hinnant's days_from_civil)
    shifted_year: i64 = year - 1 if month <= 2 else year
    era: i64 = shifted_year // 400
    year_of_era: i64 = shifted_year - era * 400
    day_of_year: i64 = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    day_of_era: i64 = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days: i64 = era * 146_097 + day_of_era - 719_468
    return (days * 24 + hour) * 3_600_000_000


def _ts_by_character(text: str) -> int:
    """`parse_ts` of a valid `ts`, read character by character; -1 for any other text.

    Compiled, `ord(text[i])` reads a code point in place (no string is made)
    and the `i64` locals are machine integers, so this is several times
    faster than `_ts_by_table`'s slices and dictionary lookups. The head
    (`YYYY-MM-DDTHH`) is mostly one of the last few met (`_Heads`). It never
    decides that a `ts` is invalid: -1 sends it to `_ts_by_table`, which says
    why (tests hold the two to the same answer for any text).
    """
    size: i64 = len(text)
    if size < 20:
        return -1
    heads = _HEADS
    if text.startswith(heads.head0):
        head_us = heads.value0
    elif text.startswith(heads.head1):
        head_us = heads.value1
    elif text.startswith(heads.head2):
        head_us = heads.value2
    elif text.startswith(heads.head3):
        head_us = heads.value3
    else:
        head_us = _head_us(text)
        if head_us == _NO_HEAD:
            return -1
        heads.remember(text[:_HEAD_LENGTH], head_us)
    minute = _two_digits(text, 14)
    second = _two_digits(text, 17)
    if minute < 0 or minute > 59 or second < 0 or second > 59:
        return -1
    if ord(text[13]) != 58 or ord(text[16]) != 58:  # ":"
        return -1
    fraction_us: i64 = 0
    at: i64 = 19
    if ord(text[19]) == 46:  # "."
        at = 20
        scale: i64 = 100_000  # digits past the sixth add 0: truncated
        while at < size:
            digit: i64 = ord(text[at]) - 48
            if digit < 0 or digit > 9:
                break
            fraction_us += digit * scale
            scale //= 10
            at += 1
        if at == 20 or at == size:
            return -1
    zone: i64 = ord(text[at])
    offset_us: i64 = 0
    if zone == 90 or zone == 122:  # "Z" or "z"
        if at + 1 != size:
            return -1
    elif (zone == 43 or zone == 45) and at + 6 == size and ord(text[at + 3]) == 58:
        offset_hours = _two_digits(text, at + 1)
        offset_minutes = _two_digits(text, at + 4)
        if offset_hours < 0 or offset_hours > 23 or offset_minutes < 0 or offset_minutes > 59:
            return -1
        offset_us = (offset_hours * 3_600 + offset_minutes * 60) * 1_000_000
        if zone == 43:  # "+": ahead of UTC
            offset_us = -offset_us
    else:
        return -1
    ts_us: i64 = head_us + (minute * 60 + second) * 1_000_000 + fraction_us + offset_us
    if ts_us < 0 or ts_us >= _TS_MAX_US:
        return -1
    return ts_us


#: Whether this module runs compiled by mypyc (its functions are then builtins).
_COMPILED: Final = not isinstance(_two_digits, types.FunctionType)


def format_ts(ts_us: int) -> str:
    """RFC 3339 UTC with microseconds and `Z`, the one form livemetrics writes.

    >>> format_ts(1795341600250000)
    '2026-11-22T10:00:00.250000Z'

    Dates are cached (one per day met); hours and minute-seconds come from
    fixed tables, so no `datetime` is built per call (one per conversation
    start and per observation message: a cache of seconds missed nearly always).
    The microseconds come from two tables of a thousand, and the parts are
    joined with `+`: compiled, an f-string calls `__format__` on every part
    and `divmod` makes a tuple (together 11k instructions a call, now 1.3k).
    """
    days = ts_us // 86_400_000_000
    date = _FORMAT_DATES.get(days)
    if date is None:
        if len(_FORMAT_DATES) >= _CACHE_SIZE:
            _FORMAT_DATES.clear()
        date = _dt.date.fromordinal(_EPOCH_ORDINAL + days).isoformat() + "T"
        _FORMAT_DATES[days] = date
    day_us = ts_us - days * 86_400_000_000
    seconds = day_us // 1_000_000
    micros = day_us - seconds * 1_000_000
    hour = seconds // 3_600
    millis = micros // 1_000
    return (
        date
        + _FORMAT_HOURS[hour]
        + _FORMAT_MINUTE_SECONDS[seconds - hour * 3_600]
        + _FORMAT_MILLIS[millis]
        + _FORMAT_MICROS[micros - millis * 1_000]
    )


_FORMAT_DATES: Final[dict[int, str]] = {}  # days since the epoch -> 'YYYY-MM-DDT'
_FORMAT_HOURS: Final = [f"{hour:02d}:" for hour in range(24)]
_FORMAT_MINUTE_SECONDS: Final = [f"{m:02d}:{s:02d}" for m in range(60) for s in range(60)]
_FORMAT_MILLIS: Final = [f".{n:03d}" for n in range(1_000)]
_FORMAT_MICROS: Final = [f"{n:03d}Z" for n in range(1_000)]


# --- field checks ----------------------------------------------------------


class _Invalid(Exception):
    """Raised by a field check with the reason; caught once in the decoder."""


class _Missing(_Invalid):
    """A required field is absent (or null, which means absent: SPEC §7 [3])."""

    def __init__(self, field: str, condition: str = "") -> None:
        super().__init__(field)
        self.field = field
        self.condition = condition


_JSON_TYPE: Final = {
    dict: "an object",
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


def _show(value: Any) -> str:
    """A short one-line rendering of a value for a reason."""
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, (dict, list)):
        try:
            text = orjson.dumps(value).decode()
        except orjson.JSONEncodeError:  # nested deeper than orjson writes (254 levels)
            return f"{_JSON_TYPE[type(value)]} nested too deep to show"
    else:
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _got(value: Any) -> str:
    kind = _JSON_TYPE.get(type(value), "a value")
    if isinstance(value, (dict, list)):
        return kind
    return f"{kind} {_show(value)}" if kind != "null" else kind


FieldCheck = Callable[[str, Any], None]


def _id_error(field: str, value: Any) -> _Invalid:
    return _Invalid(f"field '{field}' must be a non-empty string, got {_got(value)}")


def _non_empty(field: str, value: Any) -> None:
    if type(value) is not str or not value:
        raise _id_error(field, value)


def _text(field: str, value: Any) -> None:
    if type(value) is not str:
        raise _Invalid(f"field '{field}' must be a string, got {_got(value)}")


def _number(field: str, value: Any) -> None:
    if type(value) is not int and type(value) is not float:
        raise _Invalid(f"field '{field}' must be a JSON number, got {_got(value)}")


def _one_of(*allowed: str) -> FieldCheck:
    choices = frozenset(allowed)
    listed = ", ".join(allowed)

    def check(field: str, value: Any) -> None:
        if type(value) is not str or value not in choices:
            raise _Invalid(f"field '{field}' must be one of {listed}; got {_got(value)}")

    return check


def _anything(field: str, value: Any) -> None:
    """Score: checked with its survey by `_check_rated`."""


# (field, required, check) per type, after the envelope (SPEC §1 tables, §7 [3]).
_Spec = tuple[tuple[str, bool, FieldCheck], ...]
_SPECS: Final[dict[str, _Spec]] = {
    "conversation.started": (
        ("channel", True, _non_empty),
        ("direction", True, _one_of("inbound", "outbound")),
        ("customer_id", True, _non_empty),
        ("customer_name", False, _text),
        ("contact_type", False, _text),
        ("skill", False, _text),
        ("campaign", False, _text),
        ("theme", False, _text),
        ("handled_by", False, _one_of("bot", "human")),
    ),
    "message.sent": (
        ("sender", True, _one_of("customer", "agent", "bot", "system")),
        ("agent_id", False, _non_empty),
        ("mode", False, _one_of("live", "offline")),
        ("text", False, _text),
    ),
    "conversation.assigned": (
        ("agent_id", False, _non_empty),
        ("group_id", False, _non_empty),
        ("via", True, _one_of("routing", "transfer", "bot")),
        ("team_id", False, _non_empty),
    ),
    "agent.focus.started": (("agent_id", True, _non_empty),),
    "agent.focus.ended": (("agent_id", True, _non_empty),),
    "conversation.tagged": (("tag", True, _non_empty),),
    "conversation.resolved": (("agent_id", False, _non_empty),),
    "conversation.reopened": (),
    "conversation.closed": (),
    "conversation.rated": (
        ("survey", True, _one_of("csat", "nps", "ces")),
        ("score", True, _anything),
    ),
    "conversation.transaction": (
        ("transaction_id", True, _non_empty),
        ("amount", True, _number),
        ("currency", True, _non_empty),
    ),
    AGENT_STATUS: (
        ("agent_id", True, _non_empty),
        ("status", True, _one_of("online", "away", "offline")),
        ("team_id", False, _non_empty),
    ),
}

_SCORE_RANGE: Final = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}


_SENDERS: Final = frozenset(("customer", "agent", "bot", "system"))


def _check_message_sent(data: dict[str, Any]) -> None:
    """`_SPECS['message.sent']` written out by hand: the most frequent type is the hot path."""
    sender = data.get("sender")
    if type(sender) is not str or sender not in _SENDERS:
        if sender is None:
            raise _Missing("sender")
        raise _Invalid(
            f"field 'sender' must be one of customer, agent, bot, system; got {_got(sender)}"
        )
    agent_id = data.get("agent_id")
    if agent_id is None:
        if sender == "agent":
            raise _Missing("agent_id", ", required when sender is 'agent'")
    elif type(agent_id) is not str or not agent_id:
        _non_empty("agent_id", agent_id)
    mode = data.get("mode")
    if mode is not None and mode != "live" and mode != "offline":
        raise _Invalid(f"field 'mode' must be one of live, offline; got {_got(mode)}")
    text = data.get("text")
    if text is not None and type(text) is not str:
        _text("text", text)


def _check_assigned(data: dict[str, Any]) -> None:
    if ("agent_id" in data) == ("group_id" in data):
        both = "both" if "agent_id" in data else "neither"
        raise _Invalid(f"exactly one of fields 'agent_id' and 'group_id' is required, got {both}")


def _check_rated(data: dict[str, Any]) -> None:
    """`score` is an integer in its survey's range; 4.0 is the integer 4 (JSON Schema's rule)."""
    survey, score = data["survey"], data["score"]
    low, high = _SCORE_RANGE[survey]
    if type(score) is float and score.is_integer():
        score = data["score"] = int(score)
    if type(score) is not int or not low <= score <= high:
        raise _Invalid(
            f"field 'score' must be an integer from {low} to {high} for survey '{survey}', "
            f"got {_got(score)}"
        )


def _fields_check(
    spec: _Spec, rule: Callable[[dict[str, Any]], None] | None = None
) -> Callable[[dict[str, Any]], None]:
    """A type's check from its `_SPECS` row plus an optional cross-field rule."""

    def check(data: dict[str, Any]) -> None:
        for field, required, check_value in spec:
            value = data.get(field)
            if value is None:
                if required:
                    raise _Missing(field)
                continue
            check_value(field, value)
        if rule is not None:
            rule(data)

    return check


_RULES: Final[dict[str, Callable[[dict[str, Any]], None]]] = {
    "conversation.assigned": _check_assigned,
    "conversation.rated": _check_rated,
}
_CHECKS: Final[dict[str, Callable[[dict[str, Any]], None]]] = {
    event_type: _fields_check(spec, _RULES.get(event_type)) for event_type, spec in _SPECS.items()
}
_CHECKS["message.sent"] = _check_message_sent


# --- decoding --------------------------------------------------------------


def _rejection(reason: str, raw: bytes, obj: Any) -> Rejection:
    """Keep the tenant and ts when readable so `invalid_events` lands in the right row (D3)."""
    if not isinstance(obj, dict):
        return Rejection(reason, raw, None, None)
    tenant = obj.get("tenant")
    ts = obj.get("ts")
    ts_us = None
    if type(ts) is str:
        with contextlib.suppress(ValueError):
            ts_us = parse_ts(ts)
    return Rejection(reason, raw, tenant if type(tenant) is str and tenant else None, ts_us)


def _load(raw: bytes) -> Rejection | dict[str, Any]:
    """Size, JSON and top-level checks shared by both decoding paths."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        oversized = len(raw) > MAX_EVENT_BYTES
        return Rejection(_oversized(raw) if oversized else f"not JSON: {exc}", raw, None, None)
    if len(raw) > MAX_EVENT_BYTES:
        return _rejection(_oversized(raw), raw, obj)
    if type(obj) is not dict:
        kind = _JSON_TYPE.get(type(obj), "not an object")
        return Rejection(f"not a JSON object: the top-level value is {kind}", raw, None, None)
    return obj


def _without_nulls(obj: dict[str, Any]) -> dict[str, Any]:
    """`null` on an optional field means absent (SPEC §7 [3]); on a required one, missing."""
    return {key: value for key, value in obj.items() if value is not None}


def _oversized(raw: bytes) -> str:
    return f"event is {len(raw)} bytes, over the 1 MiB limit"


def _unknown_type(event_type: Any) -> str:
    return f"unknown event type {_show(event_type)}"


def _missing_reason(missing: _Missing, obj: dict[str, Any]) -> str:
    null = " (null counts as missing)" if missing.field in obj else ""
    return f"missing field '{missing.field}'{missing.condition}{null}"


def decode_event(raw: bytes) -> Event | Rejection:
    """An `Event`, or a `Rejection` naming the first broken rule (SPEC §1, §7 [1]-[4]).

    Checks, in order: size (1 MiB), JSON, an object, `type` known, the envelope
    (`event_id`, `ts`, `tenant`, `conversation_id` except on `agent.status`),
    then the type's own fields. Never raises for any input. Valid input takes
    the fast path (msgspec structs, module doc); the rest, and the reasons,
    the checked one.
    """
    event = _decode_fast(raw) if len(raw) <= MAX_EVENT_BYTES else None
    return _decode_checked(raw) if event is None else event


_decode_body: Final = DECODER.decode
_type_only: Final = TYPE_DECODER.decode
_as_tuple: Final = msgspec.structs.astuple


def _decode_fast(raw: bytes) -> Event | None:
    """The fast path: the `Event` of input the structs and the rules after them accept,
    else None (the checked path decides). JSON white space around the object, a line's
    newline included, is allowed by both paths. An event with fields its type does not
    declare is read by `_EXTRA_FIELDS`, which learns their names (`_body_past_extras`)."""
    extra = _EXTRA_FIELDS
    try:
        learned = extra.first and _learned_may_read(raw)
        body = extra.decode(raw) if learned else _decode_body(raw)
    except msgspec.ValidationError as error:
        message = str(error)
        if not message.startswith(_UNKNOWN_FIELD):
            return None
        if extra.streak >= LEARNING_STREAK:  # a run of them: worth learning (`_ExtraFields`)
            declared = _body_past_extras(raw, message)
        else:
            extra.streak += 1
            declared = _body_without_undeclared(raw)
        if declared is None:
            return None
        return _fast_event(declared)
    except (msgspec.MsgspecError, RecursionError):
        return None
    if extra.first:
        declared = extra.declared_body(body)
        if not extra.first:
            extra.streak = 0
        return _fast_event(declared)
    extra.streak = 0
    return _fast_event(body)


# msgspec's message for a field the struct does not declare (`forbid_unknown_fields`)
_UNKNOWN_FIELD: Final = "Object contains unknown field `"
#: Names of undeclared fields learned at most (`_ExtraFields`); past it, an event
#: with a new one takes `_body_without_undeclared`.
EXTRA_FIELD_NAMES: Final = 64
#: Events in a row with fields their type does not declare before names are learned.
LEARNING_STREAK: Final = 8


class _ExtraFields:
    """Names of fields met on events of a type that does not declare them (SPEC §7 [3]:
    ignored), and a decoder that reads them (`event_types.ExtendedDecoder`).

    Platforms add their own fields, often to every event. Refused by the structs,
    each such event took an exception and orjson (`_body_without_undeclared`):
    about 16 000 instructions more an event, 0.6x the replay rate. Learned, it is
    decoded in one pass like any other. `first`: the last event had such fields,
    so the next one is tried with the learned decoder first (it accepts all that
    `DECODER` does, a little slower). Names are learned only in a run of such
    events (`streak`, `LEARNING_STREAK`): learning a name builds a struct and a
    decoder (about a million instructions), and the learned path costs a lone
    one more than orjson's does (the bench stream has them on 3 % of events,
    scattered). A cache that changes no result, like `_Heads`.
    """

    def __init__(self) -> None:
        self.refused: set[str] = set()
        self.first = False
        self.streak = 0  # events in a row with fields their type does not declare
        self._extended = ExtendedDecoder()

    @property
    def names(self) -> list[str]:
        """The names learned, type by type (a name once for each type it was learned on)."""
        return [name for names in self._extended.names_of.values() for name in names]

    def forget(self) -> None:
        """Forget every name learned (tests start from none)."""
        self.refused.clear()
        self.first = False
        self.streak = 0
        self._extended = ExtendedDecoder()

    def decode(self, raw: bytes) -> Any:
        """The learned decoder's body of `raw` (raises as msgspec does)."""
        return self._extended.decode(raw)

    def knows(self, event_type: str, name: str) -> bool:
        """Whether `name` is read on events of `event_type` already."""
        return name in self._extended.names_of.get(event_type, ())

    def learn(self, event_type: str, name: str) -> bool:
        """Read `name` on `event_type` from now on; False when it is refused (msgspec takes
        no name with a control character, a quote or a backslash) or there are enough."""
        if name in self.refused:
            return False
        if len(self.names) >= EXTRA_FIELD_NAMES or len(self.refused) >= EXTRA_FIELD_NAMES:
            return False
        try:
            self._extended.add(event_type, name)
        except (ValueError, TypeError):
            self.refused.add(name)
            return False
        return True

    def declared_body(self, body: Any) -> EventBody:
        """The body as its type's own struct, without the fields it does not declare;
        `first` stays on only while events carry some."""
        found = self._extended.base_of.get(type(body))
        if found is None:
            self.first = False
            declared: EventBody = body
            return declared
        base, size = found
        fields = _as_tuple(body)
        self.first = any(value is not None for value in fields[size:])
        declared = base(*fields[:size])
        return declared


#: What msgspec reads and orjson refuses: a number past a double's range (309 digits
#: or more) and nesting past 1 024 levels (msgspec's limit is the recursion limit,
#: which a program may raise, and past the C stack it crashes). A repeated key keeps
#: its last value, so a check of the decoded values would miss an earlier one: the
#: learned decoder reads no line with 309 digits in a row or over this many brackets.
_BRACKETS_LIMIT: Final = 256
_DIGIT_RUN: Final = b"0" * 309
_DIGITS_AS_ZERO: Final = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))


def _learned_may_read(raw: bytes) -> bool:
    """Whether the learned decoder may read `raw` (see `_BRACKETS_LIMIT`); a line too
    short to hold either is answered at once."""
    if len(raw) <= _BRACKETS_LIMIT:
        return True
    if raw.count(b"[") + raw.count(b"{") > _BRACKETS_LIMIT:
        return False
    return len(raw) < len(_DIGIT_RUN) or _DIGIT_RUN not in raw.translate(_DIGITS_AS_ZERO)


_EXTRA_FIELDS: Final = _ExtraFields()


def _body_past_extras(raw: bytes, message: str) -> EventBody | None:
    """The body of an event with fields its type does not declare: each name a decoder
    refuses (`message`) is learned for the event's type, and the event read by the
    learned decoder. When a name cannot be learned, or that decoder refuses the event
    for another reason, it is read as before (`_body_without_undeclared`), so learning
    never changes a result."""
    extra = _EXTRA_FIELDS
    if not _learned_may_read(raw):
        return _body_without_undeclared(raw)
    try:
        event_type = _type_only(raw).type
    except (msgspec.MsgspecError, RecursionError):
        return _body_without_undeclared(raw)
    if event_type not in _DECLARED:
        return _body_without_undeclared(raw)
    tried: list[str] = []
    while True:
        name = message[len(_UNKNOWN_FIELD) : message.rfind("`")]
        if name in tried:
            break
        if not extra.knows(event_type, name) and not extra.learn(event_type, name):
            break
        tried.append(name)
        try:
            body = extra.decode(raw)
        except msgspec.ValidationError as error:
            message = str(error)
            if message.startswith(_UNKNOWN_FIELD):
                continue
            break
        except (msgspec.MsgspecError, RecursionError):
            break
        extra.first = True
        return extra.declared_body(body)
    return _body_without_undeclared(raw)


def _body_without_undeclared(raw: bytes) -> EventBody | None:
    """The body of an event that has fields its type does not declare (SPEC §7 [3]:
    ignored), read as the checked path reads it: orjson decides it is JSON (msgspec
    skips an undeclared value without orjson's checks), nulls are absent, the declared
    fields go through the struct. None for anything else: the checked path then
    decides and names the reason. A quarter of the checked path's cost: platforms
    that add their own fields to every event keep the fast path."""
    obj = _load(raw)
    if isinstance(obj, Rejection):
        return None
    event_type = obj.get("type")
    if type(event_type) is not str or event_type not in _DECLARED:
        return None
    try:
        return _declared_body(event_type, obj)
    except msgspec.ValidationError:
        return None


# each type's body class and the fields it declares (SPEC §7 [3]: others are ignored)
_DECLARED: Final[dict[str, tuple[type, frozenset[str]]]] = {
    event_type: (body_class, frozenset(body_class.__struct_fields__))
    for body_class, event_type in TYPE_OF.items()
}
_convert: Final = msgspec.convert


def _declared_body(event_type: str, data: dict[str, Any]) -> EventBody:
    """The body of an event's dict: its declared fields through the type's struct, the
    others ignored and nulls absent (SPEC §7 [3]); raises msgspec.ValidationError."""
    body_class, fields = _DECLARED[event_type]
    declared = {key: value for key, value in data.items() if value is not None and key in fields}
    body: EventBody = _convert(declared, body_class)
    return body


# What the fast path checks after the structs, per body class: nothing more, a
# rule across fields (SPEC §7 [3]), or nothing and no conversation (presence).
_PLAIN: Final = 0
_AGENT_IF_SENDER_AGENT: Final = 1
_AGENT_XOR_GROUP: Final = 2
_SCORE_IN_RANGE: Final = 3
_PRESENCE: Final = 4
_RULE_AFTER: Final[dict[type, int]] = {
    MessageSent: _AGENT_IF_SENDER_AGENT,
    ConversationAssigned: _AGENT_XOR_GROUP,
    ConversationRated: _SCORE_IN_RANGE,
    AgentStatus: _PRESENCE,
}
_FAST_TYPES: Final[dict[type, tuple[str, int]]] = {
    body_class: (event_type, _RULE_AFTER.get(body_class, _PLAIN))
    for body_class, event_type in TYPE_OF.items()
}


def _fast_event(body: EventBody) -> Event | None:
    """The `Event` of a body msgspec accepted, or None when a rule across fields or `ts`
    fails (the checked path then names it)."""
    event_type, rule = _FAST_TYPES[type(body)]
    # every body starts with event_id, ts, tenant (then conversation_id, but on
    # agent.status): one tuple of them is cheaper than four attribute lookups
    fields = _as_tuple(body)
    conversation_id = None
    if rule != _PRESENCE:
        conversation_id = fields[3]
        if rule != _PLAIN and _breaks_rule(fields, rule):
            return None
    try:
        ts_us = parse_ts(fields[1])
    except ValueError:
        return None
    return Event(fields[0], event_type, ts_us, fields[2], conversation_id, body)


def _breaks_rule(fields: tuple[Any, ...], rule: int) -> bool:
    """Whether a body, as the tuple of its fields, breaks the rule across them that the
    structs cannot state. Read by position (`_AT`), not by name: a msgspec struct is not
    a native class, so the compiled core would look each attribute up by name."""
    if rule == _AGENT_IF_SENDER_AGENT:
        sender: str = fields[_AT_SENDER]
        return sender == "agent" and fields[_AT_SENDER_AGENT] is None
    if rule == _AGENT_XOR_GROUP:
        return (fields[_AT_ASSIGNED_AGENT] is None) == (fields[_AT_ASSIGNED_GROUP] is None)
    survey: str = fields[_AT_SURVEY]
    score: int = fields[_AT_SCORE]
    low, high = _SCORE_RANGE[survey]
    return not low <= score <= high


# where `_breaks_rule` finds the fields it reads in `msgspec.structs.astuple(body)`
_AT_SENDER: Final = MessageSent.__struct_fields__.index("sender")
_AT_SENDER_AGENT: Final = MessageSent.__struct_fields__.index("agent_id")
_AT_ASSIGNED_AGENT: Final = ConversationAssigned.__struct_fields__.index("agent_id")
_AT_ASSIGNED_GROUP: Final = ConversationAssigned.__struct_fields__.index("group_id")
_AT_SURVEY: Final = ConversationRated.__struct_fields__.index("survey")
_AT_SCORE: Final = ConversationRated.__struct_fields__.index("score")


def _decode_checked(raw: bytes) -> Event | Rejection:
    """The checked path of `decode_event`: hand-written checks that name the first broken rule.

    Checks, in order: size (1 MiB), JSON, an object, `type` known, the envelope
    (`event_id`, `ts`, `tenant`, `conversation_id` except on `agent.status`),
    then the type's own fields. Never raises for any input.
    """
    obj = _load(raw)
    if isinstance(obj, Rejection):
        return obj
    data = _without_nulls(obj) if None in obj.values() else obj
    try:
        event_type = data.get("type")
        if type(event_type) is not str:
            raise _Missing("type") if event_type is None else _Invalid(_unknown_type(event_type))
        check = _CHECKS.get(event_type)
        if check is None:
            raise _Invalid(_unknown_type(event_type))
        event_id = data.get("event_id")
        if type(event_id) is not str or not event_id:
            raise _Missing("event_id") if event_id is None else _id_error("event_id", event_id)
        ts = data.get("ts")
        if type(ts) is not str:
            if ts is None:
                raise _Missing("ts")
            raise _Invalid(f"field 'ts' must be a string, got {_got(ts)}")
        try:
            ts_us = parse_ts(ts)
        except ValueError as exc:
            raise _Invalid(f"field 'ts': {exc}") from None
        tenant = data.get("tenant")
        if type(tenant) is not str or not tenant:
            raise _Missing("tenant") if tenant is None else _id_error("tenant", tenant)
        conversation_id = None
        if event_type != AGENT_STATUS:
            conversation_id = data.get("conversation_id")
            if type(conversation_id) is not str or not conversation_id:
                if conversation_id is None:
                    raise _Missing("conversation_id")
                raise _id_error("conversation_id", conversation_id)
        check(data)
    except _Missing as missing:
        return _rejection(_missing_reason(missing, obj), raw, data)
    except _Invalid as invalid:
        return _rejection(str(invalid), raw, data)
    body = _declared_body(event_type, data)
    return Event(event_id, event_type, ts_us, tenant, conversation_id, body)


def decode_line(line: bytes) -> Event | Rejection | None:
    """Decode one JSONL line (SPEC §7 [1]): None for a blank line, else `decode_event`.

    The trailing `\\n` (or `\\r\\n`) is not part of the event, nor of its size. A valid
    line is decoded as it is, newline and all (JSON white space), without copying it;
    one over the size limit with its newline takes the checked path, which measures it
    without.
    """
    fast_tried = len(line) <= MAX_EVENT_BYTES
    if fast_tried:
        event = _decode_fast(line)
        if event is not None:
            return event
    if line.endswith(b"\n"):
        line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
    if not line.strip():
        return None
    return _decode_checked(line) if fast_tried else decode_event(line)


# --- the schema path: the contract, executable -----------------------------


@functools.cache
def _schema_validators() -> dict[str, Callable[[Any], Any]]:
    """One fastjsonschema validator per event type, compiled from `topics/schemas`."""
    import fastjsonschema

    from livemetrics.topics import load_schema

    validators: dict[str, Callable[[Any], Any]] = {}
    for topic in ("chat.events", "chat.agent-status"):
        schema = load_schema(topic)
        type_enum = schema["properties"]["type"]["enum"]
        for event_type in type_enum:
            document = {
                "$ref": f"#/definitions/{event_type}",
                "definitions": schema["definitions"],
            }
            validators[event_type] = fastjsonschema.compile(
                document, use_default=False, use_formats=False
            )
    return validators


def _schema_reason(error: Any, obj: dict[str, Any]) -> str:
    """Turn a fastjsonschema error into a reason naming the field."""
    field = str(error.name).removeprefix("data").lstrip(".") or "(event)"
    rule, definition = error.rule, error.rule_definition
    if rule == "required":
        missing = [name for name in definition if obj.get(name) is None]
        return f"missing field '{missing[0]}'" if missing else str(error.message)
    if rule == "oneOf":
        return "exactly one of fields 'agent_id' and 'group_id' is required"
    if rule == "enum":
        choices = ", ".join(str(choice) for choice in definition if choice is not None)
        return f"field '{field}' must be one of {choices}; got {_got(error.value)}"
    if rule == "minLength":
        return f"field '{field}' must be a non-empty string"
    if rule == "type":
        return f"field '{field}' must be {definition}, got {_got(error.value)}"
    if rule == "pattern" and field == "ts":
        return f"field 'ts': {_show(error.value)} is not {_TS_GRAMMAR}"
    if rule in ("minimum", "maximum"):
        return f"field '{field}' is out of range for survey {_show(obj.get('survey'))}"
    return f"field '{field}': {error.message}"


def decode_with_schema(raw: bytes) -> Event | Rejection:
    """Same result as `decode_event`, checked by the compiled JSON Schemas instead.

    Slower; kept as the executable contract (tests compare both) and for tools
    that must follow the schema files exactly. Date validity and the ts range are
    beyond JSON Schema and use `parse_ts`.
    """
    import fastjsonschema

    data = _load(raw)
    if isinstance(data, Rejection):
        return data
    event_type = data.get("type")
    validator = _schema_validators().get(event_type) if type(event_type) is str else None
    if validator is None or type(event_type) is not str:
        reason = "missing field 'type'" if event_type is None else _unknown_type(event_type)
        return _rejection(reason, raw, data)
    try:
        validator(data)
        ts_us = parse_ts(data["ts"])
    except fastjsonschema.JsonSchemaValueException as error:
        return _rejection(_schema_reason(error, data), raw, data)
    except ValueError as exc:
        return _rejection(f"field 'ts': {exc}", raw, data)
    clean = _without_nulls(data)
    if type(clean.get("score")) is float and event_type == "conversation.rated":
        clean["score"] = int(clean["score"])
    conversation_id = None if event_type == AGENT_STATUS else clean["conversation_id"]
    body = _declared_body(event_type, clean)
    return Event(clean["event_id"], event_type, ts_us, clean["tenant"], conversation_id, body)
