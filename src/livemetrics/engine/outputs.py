"""What the engine emits: observations, SLA events and conversation attributes.

Every output is a small slotted class with a hand-written `__init__`, made
hundreds of thousands of times a second in replay: compiled, it is a native
class (a C struct, built and read without Python's calling convention), where
a named tuple cost four times as much to build, read and free (`tuple.__new__`
through the generic call). Outputs are never changed once made (a retraction
or a renamed observation is a new one): their fields are `Final`, so mypy
refuses a write anywhere, and the compiled core also at run time. They are
written out by `to_list` (state) and the processor's message builders only:
they do not hash or pickle, and orjson cannot read the compiled classes.

An `Observation` is one metric value credited to a bucket and dimensions
(SPEC §2 "Attribution"). A retraction is the same observation with
`sign = -1`; applying both leaves every aggregate as if neither happened, so
sinks never need to look anything up to undo a provisional result.

    >>> obs = Observation("csat_score", 4.0, 0, "2026-11-23", "09", dims, ("ag-luis",))
    >>> obs.retraction().sign
    -1
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

#: Positions inside `Observation.dims`; `agent` and `day`/`hour` live beside it.
DIM_FIELDS: Final[tuple[str, ...]] = (
    "tenant",
    "channel",
    "direction",
    "contact_type",
    "skill",
    "campaign",
    "theme",
    "team",
    "customer",
    "conversation",
    "tag",
)
DIM_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(DIM_FIELDS)}
TEAM: Final = DIM_INDEX["team"]
TAG: Final = DIM_INDEX["tag"]

Dims = tuple[str | None, ...]


@dataclass(slots=True, init=False)
class Observation:
    """One metric value in a bucket, with its dimensions and credited agents."""

    metric: Final[str]
    # int | float, not float: compiled, a float is a C double and a counter's 1
    # would become 1.0 in messages and state; an object keeps what it was given
    value: Final[int | float]
    ts_us: Final[int]  # the instant that decides the bucket
    day: Final[str | None]
    hour: Final[str | None]
    dims: Final[Dims]
    agents: Final[tuple[str, ...]]
    sign: Final[int]
    event_id: Final[str | None]

    def __init__(
        self,
        metric: str,
        value: int | float,
        ts_us: int,
        day: str | None,
        hour: str | None,
        dims: Dims,
        agents: tuple[str, ...] = (),
        sign: int = 1,
        event_id: str | None = None,
    ) -> None:
        # written out (init=False): mypyc compiles this one; dataclass's would run as Python
        self.metric = metric
        self.value = value
        self.ts_us = ts_us
        self.day = day
        self.hour = hour
        self.dims = dims
        self.agents = agents
        self.sign = sign
        self.event_id = event_id

    def retraction(self) -> Observation:
        return Observation(
            self.metric,
            self.value,
            self.ts_us,
            self.day,
            self.hour,
            self.dims,
            self.agents,
            -self.sign,
            self.event_id,
        )

    def renamed(self, metric: str, event_id: str | None) -> Observation:
        """The same observation (bucket, dimensions, credit) under another metric and event."""
        return Observation(
            metric,
            self.value,
            self.ts_us,
            self.day,
            self.hour,
            self.dims,
            self.agents,
            self.sign,
            event_id,
        )

    def to_list(self) -> list[Any]:
        return [
            self.metric,
            self.value,
            self.ts_us,
            self.day,
            self.hour,
            self.dims,
            self.agents,
            self.sign,
            self.event_id,
        ]

    @classmethod
    def from_list(cls, item: list[Any]) -> Observation:
        metric, value, ts_us, day, hour, dims, agents, sign, event_id = item
        return cls(metric, value, ts_us, day, hour, tuple(dims), tuple(agents), sign, event_id)


class Folder:
    """Where observations go straight in when nobody keeps them (replay's aggregate store).

    A context with a folder hands it the parts of such an observation instead of
    building an `Observation` for its output list: in replay, where the store is
    the only reader, that object was made, listed, read once and freed for about
    three observations an event. A conversation whose attributes changed goes to
    `keep_attributes`. Observations kept for a later retraction or rename
    (`Context.observe_kept`), and every other output, still go to the list.
    """

    def fold(
        self,
        metric: str,
        value: int | float,
        sign: int,
        day: str | None,
        hour: str | None,
        dims: Dims,
        agents: tuple[str, ...],
    ) -> None:
        """Fold one observation in, as if it came as an `Observation` with these fields."""
        raise NotImplementedError

    def keep_attributes(self, conv: Any) -> None:
        """The attributes of conversation `conv` (an `engine.state.Conversation`)
        changed: keep it, and read its attributes (`state.attribute_values`) when they
        are read, instead of a `ConversationAttributes` now. About one event in four
        changes them; replay keeps the last of each conversation only."""
        raise NotImplementedError


@dataclass(slots=True, init=False)
class SlaEvent:
    """A breach, an at-risk notice or a breach retraction for `livemetrics.sla` (SPEC §4)."""

    kind: Final[str]  # breach | at_risk | retraction
    sla_kind: Final[str]  # first_response | next_response | resolution
    tenant: Final[str]
    conversation_id: Final[str]
    channel: Final[str]
    turn: Final[int]
    started_us: Final[int]
    deadline_us: Final[int]
    detected_us: Final[int]
    team: Final[str | None]
    agent: Final[str | None]

    def __init__(
        self,
        kind: str,
        sla_kind: str,
        tenant: str,
        conversation_id: str,
        channel: str,
        turn: int,
        started_us: int,
        deadline_us: int,
        detected_us: int,
        team: str | None,
        agent: str | None,
    ) -> None:
        self.kind = kind
        self.sla_kind = sla_kind
        self.tenant = tenant
        self.conversation_id = conversation_id
        self.channel = channel
        self.turn = turn
        self.started_us = started_us
        self.deadline_us = deadline_us
        self.detected_us = detected_us
        self.team = team
        self.agent = agent


@dataclass(slots=True, init=False)
class ConversationAttributes:
    """The latest attributes of one conversation, for `--by conversation` rows (SPEC §3)."""

    tenant: Final[str]
    conversation_id: Final[str]
    values: Final[dict[str, Any]]

    def __init__(self, tenant: str, conversation_id: str, values: dict[str, Any]) -> None:
        self.tenant = tenant
        self.conversation_id = conversation_id
        self.values = values


@dataclass(slots=True, init=False)
class ConversationDropped:
    """The conversation's state was dropped after retention (SPEC §7 [30]); its results stay."""

    tenant: Final[str]
    conversation_id: Final[str]

    def __init__(self, tenant: str, conversation_id: str) -> None:
        self.tenant = tenant
        self.conversation_id = conversation_id


Output = Observation | SlaEvent | ConversationAttributes | ConversationDropped
