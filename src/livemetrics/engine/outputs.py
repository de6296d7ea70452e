"""What the engine emits: observations, SLA events and conversation attributes.

Every output is a named tuple: immutable, and cheap to build (hundreds of
thousands a second in replay). An `Observation` is one metric value credited
to a bucket and dimensions (SPEC §2 "Attribution"). A retraction is the same
observation with `sign = -1`; applying both leaves every aggregate as if
neither happened, so sinks never need to look anything up to undo a
provisional result.

    >>> obs = Observation("csat_score", 4.0, 0, "2026-11-23", "09", dims, ("ag-luis",))
    >>> obs.retraction().sign
    -1
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

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

#: Builds a named tuple without its Python-level `__new__`, at a fraction of the
#: cost: every output is made with it. In the compiled core a `Final` module name,
#: also one imported from another compiled module, is a C static; any other module
#: name is a dictionary lookup at every use (hence also `OBSERVATION_CLASS`).
new_tuple: Final = tuple.__new__


class Observation(NamedTuple):
    """A tuple, because millions are made: cheap to build, hash and serialise."""

    metric: str
    value: float
    ts_us: int  # the instant that decides the bucket
    day: str | None
    hour: str | None
    dims: Dims
    agents: tuple[str, ...] = ()
    sign: int = 1
    event_id: str | None = None

    def retraction(self) -> Observation:
        metric, value, ts_us, day, hour, dims, agents, sign, event_id = self
        # tuple.__new__, as everywhere outputs are made: `_replace` runs as Python
        retracted: Observation = new_tuple(
            OBSERVATION_CLASS, (metric, value, ts_us, day, hour, dims, agents, -sign, event_id)
        )
        return retracted

    def renamed(self, metric: str, event_id: str | None) -> Observation:
        """The same observation (bucket, dimensions, credit) under another metric and event."""
        _, value, ts_us, day, hour, dims, agents, sign, _ = self
        renamed: Observation = new_tuple(
            OBSERVATION_CLASS, (metric, value, ts_us, day, hour, dims, agents, sign, event_id)
        )
        return renamed

    def to_list(self) -> list[Any]:
        return list(self)

    @classmethod
    def from_list(cls, item: list[Any]) -> Observation:
        metric, value, ts_us, day, hour, dims, agents, sign, event_id = item
        return cls(metric, value, ts_us, day, hour, tuple(dims), tuple(agents), sign, event_id)


#: `Observation` for the hot path of the compiled core (see `new_tuple`).
OBSERVATION_CLASS: Final = Observation


class SlaEvent(NamedTuple):
    """A breach, an at-risk notice or a breach retraction for `livemetrics.sla` (SPEC §4)."""

    kind: str  # breach | at_risk | retraction
    sla_kind: str  # first_response | next_response | resolution
    tenant: str
    conversation_id: str
    channel: str
    turn: int
    started_us: int
    deadline_us: int
    detected_us: int
    team: str | None
    agent: str | None


class ConversationAttributes(NamedTuple):
    """The latest attributes of one conversation, for `--by conversation` rows (SPEC §3)."""

    tenant: str
    conversation_id: str
    values: dict[str, Any]


class ConversationDropped(NamedTuple):
    """The conversation's state was dropped after retention (SPEC §7 [30]); its results stay."""

    tenant: str
    conversation_id: str


Output = Observation | SlaEvent | ConversationAttributes | ConversationDropped
