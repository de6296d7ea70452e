"""The typed body of each event type of SPEC §1, decoded and validated in one pass by msgspec.

One `msgspec.Struct` per type, tagged by the `type` field, mirrors the
type's JSON Schema in `topics/schemas/`: required fields without a default,
optional ones (`?` in SPEC §1) default to None (a `null` is absent, SPEC
§7 [3]), enumerations as `Literal`, ids as non-empty strings.
`events.decode_event` uses them as its fast path (the C decoder checks every
field while it parses); the rules that span fields (`agent_id` when
`sender=agent`, one of `agent_id`/`group_id`, a score in its survey's range)
and `ts` are checked after it.

A field the structs do not declare is refused (`forbid_unknown_fields`):
msgspec skips an undeclared field without the checks `orjson` makes (valid
UTF-8, numbers within a double's range, nesting depth), and skipping it would
accept input the checked path rejects as not JSON. Such an event is read
again by `events._body_without_undeclared` (orjson, then the struct on the
declared fields), which ignores unknown fields as SPEC §7 [3] says; in a
run of such events, their names are learned and read by an `ExtendedDecoder`
(`events._ExtraFields`).

    >>> body = DECODER.decode(b'{"type":"conversation.tagged","event_id":"e1",'
    ...                       b'"ts":"2026-11-22T10:00:00Z","tenant":"acme",'
    ...                       b'"conversation_id":"c1","tag":"vip"}')
    >>> body.tag
    'vip'

This module is not compiled by mypyc (hatch_build.py): a msgspec struct is
a C type of msgspec's, which a mypyc native class cannot extend. Bodies hold
strings and numbers only, so they skip the cycle collector (`gc=False`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, Union

import msgspec

__all__ = [
    "DECODER",
    "TYPE_DECODER",
    "TYPE_OF",
    "AgentFocusEnded",
    "AgentFocusStarted",
    "AgentStatus",
    "ConversationAssigned",
    "ConversationClosed",
    "ConversationRated",
    "ConversationReopened",
    "ConversationResolved",
    "ConversationStarted",
    "ConversationTagged",
    "ConversationTransaction",
    "EventBody",
    "ExtendedDecoder",
    "MessageSent",
]

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]


class _Envelope(
    msgspec.Struct, tag_field="type", frozen=True, gc=False, forbid_unknown_fields=True
):
    """Fields every event has (SPEC §1 "Every event"); `ts` is parsed by `events.parse_ts`."""

    event_id: NonEmpty
    ts: str
    tenant: NonEmpty


class _ConversationEvent(_Envelope, frozen=True, gc=False):
    conversation_id: NonEmpty


class ConversationStarted(_ConversationEvent, tag="conversation.started", frozen=True, gc=False):
    channel: NonEmpty
    direction: Literal["inbound", "outbound"]
    customer_id: NonEmpty
    customer_name: str | None = None
    contact_type: str | None = None
    skill: str | None = None
    campaign: str | None = None
    theme: str | None = None
    handled_by: Literal["bot", "human"] | None = None


class MessageSent(_ConversationEvent, tag="message.sent", frozen=True, gc=False):
    sender: Literal["customer", "agent", "bot", "system"]
    agent_id: NonEmpty | None = None  # required when sender is 'agent' (checked after)
    mode: Literal["live", "offline"] | None = None
    text: str | None = None


class ConversationAssigned(_ConversationEvent, tag="conversation.assigned", frozen=True, gc=False):
    via: Literal["routing", "transfer", "bot"]
    agent_id: NonEmpty | None = None  # exactly one of agent_id, group_id (checked after)
    group_id: NonEmpty | None = None
    team_id: NonEmpty | None = None


class AgentFocusStarted(_ConversationEvent, tag="agent.focus.started", frozen=True, gc=False):
    agent_id: NonEmpty


class AgentFocusEnded(_ConversationEvent, tag="agent.focus.ended", frozen=True, gc=False):
    agent_id: NonEmpty


class ConversationTagged(_ConversationEvent, tag="conversation.tagged", frozen=True, gc=False):
    tag: NonEmpty


class ConversationResolved(_ConversationEvent, tag="conversation.resolved", frozen=True, gc=False):
    agent_id: NonEmpty | None = None  # absent: resolved by bot or system


class ConversationReopened(_ConversationEvent, tag="conversation.reopened", frozen=True, gc=False):
    pass


class ConversationClosed(_ConversationEvent, tag="conversation.closed", frozen=True, gc=False):
    pass


class ConversationRated(_ConversationEvent, tag="conversation.rated", frozen=True, gc=False):
    survey: Literal["csat", "nps", "ces"]
    # in its survey's range (checked after); 4.0 is the integer 4 (SPEC §7 [3]). Bounded:
    # msgspec reads an integer of any size, orjson refuses one past a double's range, and
    # a repeated `score` keeps the last value, so an earlier huge one would pass unseen
    score: Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]


class ConversationTransaction(
    _ConversationEvent, tag="conversation.transaction", frozen=True, gc=False
):
    transaction_id: NonEmpty
    amount: float  # any JSON number
    currency: NonEmpty


class AgentStatus(_Envelope, tag="agent.status", frozen=True, gc=False):
    """Presence (topic `chat.agent-status`); it has no conversation, even if one is sent."""

    agent_id: NonEmpty
    status: Literal["online", "away", "offline"]
    team_id: NonEmpty | None = None


EventBody = (
    ConversationStarted
    | MessageSent
    | ConversationAssigned
    | AgentFocusStarted
    | AgentFocusEnded
    | ConversationTagged
    | ConversationResolved
    | ConversationReopened
    | ConversationClosed
    | ConversationRated
    | ConversationTransaction
    | AgentStatus
)

_BODY_TYPES: dict[str, type[EventBody]] = {
    body.__struct_config__.tag: body  # type: ignore[misc]
    for body in (
        ConversationStarted,
        MessageSent,
        ConversationAssigned,
        AgentFocusStarted,
        AgentFocusEnded,
        ConversationTagged,
        ConversationResolved,
        ConversationReopened,
        ConversationClosed,
        ConversationRated,
        ConversationTransaction,
        AgentStatus,
    )
}

#: Decodes one event's JSON into its body; raises msgspec.DecodeError (or
#: ValidationError) for anything the structs do not accept.
DECODER: msgspec.json.Decoder[EventBody] = msgspec.json.Decoder(EventBody)

#: Each body class's event type (its tag).
TYPE_OF: dict[type[msgspec.Struct], str] = {body: name for name, body in _BODY_TYPES.items()}


class ExtendedDecoder:
    """`DECODER` that also reads, on events of a type, fields that type does not declare.

    `add` gives a type's struct a subclass with the names learned for it as
    optional fields (JSON names mapped by `rename`). Their values are decoded
    in full, typed `Any`: msgspec then checks them as orjson does (valid UTF-8,
    no lone surrogates, floats within a double's range). Where the two differ
    (integers past a double's range, nesting past 1 024 levels, even in a value
    a repeated key overwrites), `events._learned_may_read` keeps the line from
    this decoder, so the fast path stays stricter than the checked one.
    Anything neither declared nor added is still refused (`forbid_unknown_fields`).
    `events` makes the body of the type's own struct again: downstream sees the
    same classes either way.
    """

    def __init__(self) -> None:
        #: event type -> the names added for it, in order
        self.names_of: dict[str, tuple[str, ...]] = {}
        #: extended class -> (its type's struct, the number of fields that struct has)
        self.base_of: dict[type[msgspec.Struct], tuple[type[EventBody], int]] = {}
        self._classes: dict[str, type[msgspec.Struct]] = dict(_BODY_TYPES)
        self.decode: Callable[[bytes], Any] = DECODER.decode

    def add(self, event_type: str, name: str) -> None:
        """Read `name` on events of `event_type` from now on. Raises ValueError (nothing
        changed) for a name msgspec takes for no field: one with a control character,
        a quote or a backslash."""
        body = _BODY_TYPES[event_type]
        names = (*self.names_of.get(event_type, ()), name)
        attributes = [f"extra_{index}" for index in range(len(names))]
        extended = msgspec.defstruct(
            f"{body.__name__}WithExtraFields",
            [(attribute, Any, None) for attribute in attributes],
            bases=(body,),
            tag=event_type,
            tag_field="type",
            rename=dict(zip(attributes, names, strict=True)),
            frozen=True,
            gc=False,
            forbid_unknown_fields=True,
        )
        classes = {**self._classes, event_type: extended}
        decode = msgspec.json.Decoder(Union[tuple(classes.values())]).decode  # noqa: UP007
        self.base_of.pop(self._classes[event_type], None)
        self.base_of[extended] = (body, len(body.__struct_fields__))
        self._classes = classes
        self.names_of[event_type] = names
        self.decode = decode


class _TypeOnly(msgspec.Struct, gc=False):
    type: str


#: Reads an event's `type` alone, skipping the rest (which it does not check).
TYPE_DECODER: msgspec.json.Decoder[_TypeOnly] = msgspec.json.Decoder(_TypeOnly)
