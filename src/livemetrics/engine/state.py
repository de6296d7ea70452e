"""Per-conversation state: plain data that serialises to compact JSON lists.

The state lives in a Faust table in the live pipeline and in a dict in
`replay`; both call `conversation_to_list` / `conversation_from_list`, so a
worker can stop anywhere and resume with exactly the same future results.
Field order in the lists is the wire format: append new fields at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from livemetrics.engine.outputs import TEAM, Observation
from livemetrics.events import format_ts

# Turn sides (SPEC §2 "Turns").
NO_SIDE: Final = 0
CUSTOMER: Final = 1
AGENT: Final = 2

# Conversation status (SPEC §7 [8]).
OPEN: Final = "open"
RESOLVED: Final = "resolved"
CLOSED: Final = "closed"


@dataclass(slots=True, init=False)
class Session:
    """The current session (SPEC §2 "Sessions", §7 [13])."""

    first_us: int
    last_us: int
    customer_wrote: bool
    agents: list[str]
    team: str | None  # team at the session's last message (decision D29)
    provisional: list[Observation] | None  # emitted by the clock; retractable

    def __init__(
        self,
        first_us: int,
        last_us: int,
        customer_wrote: bool = False,
        agents: list[str] | None = None,
        team: str | None = None,
        provisional: list[Observation] | None = None,
    ) -> None:
        # written out (init=False): mypyc compiles this one; dataclass's would run as Python
        self.first_us = first_us
        self.last_us = last_us
        self.customer_wrote = customer_wrote
        self.agents = [] if agents is None else agents
        self.team = team
        self.provisional = provisional

    def to_list(self) -> list[Any]:
        prov = None if self.provisional is None else [o.to_list() for o in self.provisional]
        return [self.first_us, self.last_us, self.customer_wrote, self.agents, self.team, prov]

    @classmethod
    def from_list(cls, item: list[Any]) -> Session:
        first_us, last_us, customer_wrote, agents, team, prov = item
        provisional = None if prov is None else [Observation.from_list(o) for o in prov]
        return cls(first_us, last_us, customer_wrote, list(agents), team, provisional)


@dataclass(slots=True, init=False)
class SlaClock:
    """One running SLA clock (SPEC §4, decisions D40-D42)."""

    kind: str
    turn: int
    started_us: int
    deadline_us: int
    at_risk_us: int
    at_risk_sent: bool
    breach: Observation | None  # set once the clock has fired
    frozen: bool  # breach attributes settled (an own event after the deadline came)

    def __init__(
        self,
        kind: str,
        turn: int,
        started_us: int,
        deadline_us: int,
        at_risk_us: int,
        at_risk_sent: bool = False,
        breach: Observation | None = None,
        frozen: bool = False,
    ) -> None:
        # written out (init=False): mypyc compiles this one; dataclass's would run as Python
        self.kind = kind
        self.turn = turn
        self.started_us = started_us
        self.deadline_us = deadline_us
        self.at_risk_us = at_risk_us
        self.at_risk_sent = at_risk_sent
        self.breach = breach
        self.frozen = frozen

    def to_list(self) -> list[Any]:
        breach = None if self.breach is None else self.breach.to_list()
        return [
            self.kind,
            self.turn,
            self.started_us,
            self.deadline_us,
            self.at_risk_us,
            self.at_risk_sent,
            breach,
            self.frozen,
        ]

    @classmethod
    def from_list(cls, item: list[Any]) -> SlaClock:
        kind, turn, started, deadline, at_risk, sent, breach, frozen = item
        obs = None if breach is None else Observation.from_list(breach)
        return cls(kind, turn, started, deadline, at_risk, sent, obs, frozen)


@dataclass(slots=True, init=False)
class Conversation:
    """Everything the engine remembers about one conversation."""

    tenant: str
    conversation_id: str
    # tenant, channel, direction, contact_type, skill, campaign, theme
    base_dims: tuple[str | None, ...]
    customer_id: str | None
    customer_name: str | None
    started_us: int
    status: str
    cycle: int
    cycle_start_us: int
    cycle_assigned_us: int | None  # first human assignment in the cycle
    cycle_handled: bool  # handle_seconds observed in this cycle
    bot: bool  # under bot handling
    handoff_us: int | None  # when bot handling ended (decision D10)
    customer_wrote_in_bot: bool
    waiting_since: int | None
    first_response_done: bool
    queue_wait_open: bool  # a queue wait may still be observed (D23)
    human_wrote: bool
    team: str | None
    last_agent: str | None
    side: int
    turn_first_us: int | None
    turn_offline: bool
    customer_turns: int
    last_customer_us: int | None
    first_customer_offline: bool | None
    writers: list[str]
    pending_contacts: dict[str, Observation]  # agent -> contact
    focus: dict[str, int]  # agent -> window start
    session: Session | None
    session_timer_armed: bool
    last_event_us: int
    ratings: dict[str, list[Observation]]  # survey -> outputs
    csat_score: int | None
    unrated: list[Observation]
    converted: bool
    clocks: list[SlaClock]
    # the event ids met: a set, kept as a dict's keys (values None), which at a
    # conversation's sizes (8 to 40 ids) takes a third to two thirds of a set's memory
    seen: dict[str, None]
    closed_us: int | None
    subject: str | None
    group: str | None  # the group of the latest assignment, if it went to a group
    # derived, never serialised: `dims()` of the current team (rebuilt when the
    # team changes), `started_at_text()`, and the key (tenant, conversation_id),
    # one tuple shared by the engine's index, every timer the conversation
    # schedules and the store (typed Any: the compiled core keeps a typed pair
    # unboxed, and would build a new tuple at each read)
    untagged_dims: tuple[str | None, ...] | None = field(repr=False, compare=False)
    started_at: str | None = field(repr=False, compare=False)
    key: Any = field(repr=False, compare=False)

    def __init__(
        self,
        tenant: str,
        conversation_id: str,
        base_dims: tuple[str | None, ...],
        customer_id: str | None,
        customer_name: str | None,
        started_us: int,
        status: str = OPEN,
        cycle: int = 0,
        cycle_start_us: int = 0,
        cycle_assigned_us: int | None = None,
        cycle_handled: bool = False,
        bot: bool = False,
        handoff_us: int | None = None,
        customer_wrote_in_bot: bool = False,
        waiting_since: int | None = None,
        first_response_done: bool = False,
        queue_wait_open: bool = True,
        human_wrote: bool = False,
        team: str | None = None,
        last_agent: str | None = None,
        side: int = NO_SIDE,
        turn_first_us: int | None = None,
        turn_offline: bool = False,
        customer_turns: int = 0,
        last_customer_us: int | None = None,
        first_customer_offline: bool | None = None,
        writers: list[str] | None = None,
        pending_contacts: dict[str, Observation] | None = None,
        focus: dict[str, int] | None = None,
        session: Session | None = None,
        session_timer_armed: bool = False,
        last_event_us: int = 0,
        ratings: dict[str, list[Observation]] | None = None,
        csat_score: int | None = None,
        unrated: list[Observation] | None = None,
        converted: bool = False,
        clocks: list[SlaClock] | None = None,
        seen: dict[str, None] | None = None,
        closed_us: int | None = None,
        subject: str | None = None,
        group: str | None = None,
    ) -> None:
        # written out (init=False): mypyc compiles this one; dataclass's would run as
        # Python, and a conversation has 41 fields
        self.tenant = tenant
        self.conversation_id = conversation_id
        self.base_dims = base_dims
        self.customer_id = customer_id
        self.customer_name = customer_name
        self.started_us = started_us
        self.status = status
        self.cycle = cycle
        self.cycle_start_us = cycle_start_us
        self.cycle_assigned_us = cycle_assigned_us
        self.cycle_handled = cycle_handled
        self.bot = bot
        self.handoff_us = handoff_us
        self.customer_wrote_in_bot = customer_wrote_in_bot
        self.waiting_since = waiting_since
        self.first_response_done = first_response_done
        self.queue_wait_open = queue_wait_open
        self.human_wrote = human_wrote
        self.team = team
        self.last_agent = last_agent
        self.side = side
        self.turn_first_us = turn_first_us
        self.turn_offline = turn_offline
        self.customer_turns = customer_turns
        self.last_customer_us = last_customer_us
        self.first_customer_offline = first_customer_offline
        self.writers = [] if writers is None else writers
        self.pending_contacts = {} if pending_contacts is None else pending_contacts
        self.focus = {} if focus is None else focus
        self.session = session
        self.session_timer_armed = session_timer_armed
        self.last_event_us = last_event_us
        self.ratings = {} if ratings is None else ratings
        self.csat_score = csat_score
        self.unrated = [] if unrated is None else unrated
        self.converted = converted
        self.clocks = [] if clocks is None else clocks
        self.seen = {} if seen is None else seen
        self.closed_us = closed_us
        self.subject = subject
        self.group = group
        self.untagged_dims = None
        self.started_at = None
        self.key = (tenant, conversation_id)

    def dims(self, tag: str | None = None) -> tuple[str | None, ...]:
        """Observation dimensions with the current team (SPEC §2 "Attribution").

        Most observations have no tag, so that tuple is kept until the team changes
        (the team is compared by identity: a team equal to the last but another
        object only makes an equal tuple, where comparing `str | None` values by
        value takes Python's generic comparison at every observation).
        """
        if tag is None:
            dims = self.untagged_dims
            if dims is None or dims[TEAM] is not self.team:
                dims = self.untagged_dims = self.dims_with_team(self.team)
            return dims
        return (*self.base_dims, self.team, self.customer_id, self.conversation_id, tag)

    def started_at_text(self) -> str:
        """`started_us` as the RFC 3339 text of the `started_at` attribute, made once."""
        text = self.started_at
        if text is None:
            text = self.started_at = format_ts(self.started_us)
        return text

    def dims_with_team(self, team: str | None) -> tuple[str | None, ...]:
        """Observation dimensions with another team (a session credits its last message's, D29)."""
        return (*self.base_dims, team, self.customer_id, self.conversation_id, None)


def attribute_values(conv: Conversation) -> dict[str, Any]:
    """A conversation's attributes, for `--by conversation` rows (SPEC §3).

    Only rules change them, and each change shows in the four fields the engine
    compares around every event (`Engine.process`: status, the writers' count,
    csat_score, subject); the rest is fixed at the start. So the values read at
    any time between two events are those the engine last sent.
    """
    return {
        "customer_id": conv.customer_id,
        "customer_name": conv.customer_name,
        "subject": conv.subject,
        "agents": list(conv.writers),
        "channel": conv.base_dims[1],
        "status": conv.status,
        "started_at": conv.started_at_text(),
        "csat_score": conv.csat_score,
    }


def conversation_to_list(conv: Conversation) -> list[Any]:
    """Serialise to a JSON-ready list (orjson turns it into bytes)."""
    return [
        conv.tenant,
        conv.conversation_id,
        list(conv.base_dims),
        conv.customer_id,
        conv.customer_name,
        conv.started_us,
        conv.status,
        conv.cycle,
        conv.cycle_start_us,
        conv.cycle_assigned_us,
        conv.cycle_handled,
        conv.bot,
        conv.handoff_us,
        conv.customer_wrote_in_bot,
        conv.waiting_since,
        conv.first_response_done,
        conv.queue_wait_open,
        conv.human_wrote,
        conv.team,
        conv.last_agent,
        conv.side,
        conv.turn_first_us,
        conv.turn_offline,
        conv.customer_turns,
        conv.last_customer_us,
        conv.first_customer_offline,
        conv.writers,
        {agent: obs.to_list() for agent, obs in conv.pending_contacts.items()},
        conv.focus,
        None if conv.session is None else conv.session.to_list(),
        conv.session_timer_armed,
        conv.last_event_us,
        {s: [o.to_list() for o in obs] for s, obs in conv.ratings.items()},
        conv.csat_score,
        [o.to_list() for o in conv.unrated],
        conv.converted,
        [c.to_list() for c in conv.clocks],
        sorted(conv.seen),
        conv.closed_us,
        conv.subject,
        conv.group,
    ]


def conversation_from_list(item: list[Any]) -> Conversation:
    """Inverse of `conversation_to_list`."""
    (
        tenant,
        conversation_id,
        base_dims,
        customer_id,
        customer_name,
        started_us,
        status,
        cycle,
        cycle_start_us,
        cycle_assigned_us,
        cycle_handled,
        bot,
        handoff_us,
        customer_wrote_in_bot,
        waiting_since,
        first_response_done,
        queue_wait_open,
        human_wrote,
        team,
        last_agent,
        side,
        turn_first_us,
        turn_offline,
        customer_turns,
        last_customer_us,
        first_customer_offline,
        writers,
        pending,
        focus,
        session,
        session_timer_armed,
        last_event_us,
        ratings,
        csat_score,
        unrated,
        converted,
        clocks,
        seen,
        closed_us,
        subject,
        group,
    ) = item
    return Conversation(
        tenant=tenant,
        conversation_id=conversation_id,
        base_dims=tuple(base_dims),
        customer_id=customer_id,
        customer_name=customer_name,
        started_us=started_us,
        status=status,
        cycle=cycle,
        cycle_start_us=cycle_start_us,
        cycle_assigned_us=cycle_assigned_us,
        cycle_handled=cycle_handled,
        bot=bot,
        handoff_us=handoff_us,
        customer_wrote_in_bot=customer_wrote_in_bot,
        waiting_since=waiting_since,
        first_response_done=first_response_done,
        queue_wait_open=queue_wait_open,
        human_wrote=human_wrote,
        team=team,
        last_agent=last_agent,
        side=side,
        turn_first_us=turn_first_us,
        turn_offline=turn_offline,
        customer_turns=customer_turns,
        last_customer_us=last_customer_us,
        first_customer_offline=first_customer_offline,
        writers=list(writers),
        pending_contacts={a: Observation.from_list(o) for a, o in pending.items()},
        focus=dict(focus),
        session=None if session is None else Session.from_list(session),
        session_timer_armed=session_timer_armed,
        last_event_us=last_event_us,
        ratings={s: [Observation.from_list(o) for o in obs] for s, obs in ratings.items()},
        csat_score=csat_score,
        unrated=[Observation.from_list(o) for o in unrated],
        converted=converted,
        clocks=[SlaClock.from_list(c) for c in clocks],
        seen=dict.fromkeys(seen),
        closed_us=closed_us,
        subject=subject,
        group=group,
    )
