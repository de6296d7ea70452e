"""An independent reference computation of the SPEC: the test oracle.

Written from `SPEC.md` and `docs/spec-decisions.md` only, in a deliberately
different style from the streaming engine: the oracle sees the whole input
first and derives each conversation's *final, net* observations directly.
There are no timers and no retractions:

1. decode and validate every line (`invalid_events`, D3), de-duplicate
   (`duplicate_events`, D1), take "now" as the largest accepted `ts` (D50);
2. group the accepted events per conversation, keeping arrival order;
3. walk each conversation's own list once, recording plain facts (state after
   each event, messages, closes, SLA clocks and what stopped them, ratings)
   and the observations that need no look-ahead;
4. decide the look-ahead families from those facts: sessions (gaps, closes and
   "now", SPEC §2, D29), SLA breaches (first stopping event and "now",
   D40-D42), ratings (latest per survey, D27) and `conversations_unrated`
   (only when no rating ever arrives, D26);
5. build reports with a simple group-by over the observation list (SPEC §5).

Retention drops (D4) are not modelled: the generated streams never span more
than `retention_days` (`livemetrics.simulate.streams` asserts it).

    >>> run = oracle_run(lines, config)
    >>> report = run.report(ReportQuery.parse(by="agent,day"))
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from livemetrics import metrics
from livemetrics.aggregate.query import ReportQuery, range_dates
from livemetrics.config import Config
from livemetrics.events import Event, Rejection, decode_line, format_ts

US = 1_000_000
AGENT_STATUS = "agent.status"
PERCENTILES = (50, 90, 99)

CSAT_CATEGORY = {1: "csat_unsatisfied", 2: "csat_unsatisfied", 3: "csat_neutral"}
NPS_PASSIVE = (7, 8)


@dataclass(frozen=True, slots=True)
class Observation:
    """One net metric observation with every dimension a report can group by.

    Counters have `value` 1. `ts_us` is the instant whose tenant-local day and
    hour is the bucket (None: an invalid event whose `ts` does not parse).
    """

    metric: str
    value: float
    ts_us: int | None
    tenant: str | None
    channel: str | None = None
    direction: str | None = None
    contact_type: str | None = None
    skill: str | None = None
    campaign: str | None = None
    theme: str | None = None
    team: str | None = None
    agents: frozenset[str] = frozenset()
    customer: str | None = None
    conversation_id: str | None = None
    tag: str | None = None


@dataclass(frozen=True, slots=True)
class ConversationAttributes:
    """SPEC §3 conversation attributes, as of the end of the input (D30)."""

    tenant: str
    conversation_id: str
    customer_id: str | None
    customer_name: str | None
    subject: str | None
    agents: tuple[str, ...]
    channel: str
    status: str
    started_at: str
    csat_score: int | None

    def as_row(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "customer_name": self.customer_name,
            "subject": self.subject,
            "agents": list(self.agents),
            "channel": self.channel,
            "status": self.status,
            "started_at": self.started_at,
            "csat_score": self.csat_score,
        }


# --- step 1: read the input -------------------------------------------------


@dataclass(slots=True)
class _Input:
    accepted: list[Event] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)


def _read(lines: Iterable[bytes]) -> _Input:
    """Validate, then de-duplicate (SPEC §7 [2], D1, D3); keep arrival order."""
    result = _Input()
    seen_in_conversation: set[tuple[str, str, str]] = set()
    seen_status: set[tuple[str, str]] = set()
    for line in lines:
        decoded = decode_line(line)
        if decoded is None:
            continue
        if isinstance(decoded, Rejection):
            result.observations.append(
                Observation("invalid_events", 1.0, decoded.ts_us, decoded.tenant)
            )
            continue
        key: Any
        if decoded.type == AGENT_STATUS:
            key, memory = (decoded.tenant, decoded.event_id), seen_status
        else:
            key = (decoded.tenant, decoded.conversation_id, decoded.event_id)
            memory = seen_in_conversation
        if key in memory:
            result.observations.append(
                Observation("duplicate_events", 1.0, decoded.ts_us, decoded.tenant)
            )
            continue
        memory.add(key)
        result.accepted.append(replace(decoded, data=_fields(decoded.data)))
    return result


def _fields(body: Any) -> dict[str, Any]:
    """The oracle reads an event's fields from a plain dict of the JSON's non-null
    fields (SPEC §7 [3]), not from the engine's typed bodies."""
    return {
        name: value for name, value in msgspec.structs.asdict(body).items() if value is not None
    }


# --- steps 2-4: one conversation -------------------------------------------


@dataclass(slots=True)
class _Clock:
    """An SLA clock: where it started and which event (if any) stopped it."""

    kind: str
    start_us: int
    start_idx: int
    stop_idx: int | None = None


@dataclass(frozen=True, slots=True)
class _Message:
    idx: int
    ts_us: int
    party: str  # customer | agent | bot
    agent_id: str | None


@dataclass(frozen=True, slots=True)
class _Rating:
    idx: int
    ts_us: int
    survey: str
    score: int
    writers: frozenset[str]


class _ConversationWalk:
    """Derives one conversation's net observations from its accepted events.

    `self.events` is the conversation's arrival-ordered list; `idx` always
    indexes it. Facts needing look-ahead are recorded and decided in `finish`.
    """

    def __init__(self, events: Sequence[Event], config: Config, now_us: int) -> None:
        first = events[0]
        tenant_config = config.tenant(first.tenant)
        self.events = events
        self.now_us = now_us
        self.tenant = first.tenant
        self.conversation_id = first.conversation_id or ""
        self.calendar = tenant_config.calendar
        self.tenant_config = tenant_config
        self.gap_us = round(tenant_config.session_gap_seconds * US)
        self.store_text = config.store_text
        self.out: list[Observation] = []

        # dimensions fixed at the start (SPEC §2 Attribution, §7 [7])
        self.channel = "unknown"
        self.direction = "inbound"
        self.contact_type: str | None = None
        self.skill: str | None = None
        self.campaign: str | None = None
        self.theme: str | None = None
        self.customer: str | None = None
        self.customer_name: str | None = None
        self.start_us = first.ts_us

        # state that changes
        self.team: str | None = None
        self.last_agent: str | None = None
        self.status = "open"
        self.bot_handling = False
        self.handoff_us: int | None = None
        self.customer_wrote_in_bot = False
        self.waiting_start_us: int | None = None
        self.first_response_done = False
        self.queue_wait_state = "pending"  # pending | done | never
        self.side: str | None = None
        self.turn_first_us = 0
        self.turn_offline = False
        self.last_customer_us = 0
        self.first_customer_offline: bool | None = None
        self.subject: str | None = None
        self.writers: list[str] = []
        self.human_message_seen = False
        self.pending_contacts: dict[str, tuple[int, str | None]] = {}
        self.open_focus: dict[str, int] = {}
        self.converted = False
        self.cycle_start_us = first.ts_us
        self.cycle_assignment_us: int | None = None
        self.cycle_resolved = False

        # facts for the look-ahead families
        self.team_after: list[str | None] = []
        self.agent_after: list[str | None] = []
        self.messages: list[_Message] = []
        self.close_idxs: list[int] = []
        self.clocks: list[_Clock] = []
        self.open_clocks: dict[str, _Clock] = {}
        self.ratings: list[_Rating] = []
        self.unrated_at_close: list[Observation] = []

    # -- driving -----------------------------------------------------------

    def run(self) -> list[Observation]:
        handlers = {
            "conversation.started": self._ignored,
            "message.sent": self._message,
            "conversation.assigned": self._assigned,
            "agent.focus.started": self._focus_started,
            "agent.focus.ended": self._focus_ended,
            "conversation.tagged": self._tagged,
            "conversation.resolved": self._resolved,
            "conversation.reopened": self._reopened,
            "conversation.closed": self._closed,
            "conversation.rated": self._rated,
            "conversation.transaction": self._transaction,
        }
        for idx, event in enumerate(self.events):
            if idx == 0:
                self._begin(event)
                if event.type != "conversation.started":
                    handlers[event.type](idx, event)
            else:
                handlers[event.type](idx, event)
            self.team_after.append(self.team)
            self.agent_after.append(self.last_agent)
            if idx > 0 and event.ts_us < self.events[idx - 1].ts_us:
                self._now("late_events", event.ts_us)  # D2: dimensions and team, no agent
        self._decide_sessions()
        self._decide_ratings()
        self._decide_sla()
        return self.out

    def attributes(self) -> ConversationAttributes:
        csat = [r.score for r in self.ratings if r.survey == "csat"]
        return ConversationAttributes(
            tenant=self.tenant,
            conversation_id=self.conversation_id,
            customer_id=self.customer,
            customer_name=self.customer_name,
            subject=self.subject,
            agents=tuple(self.writers),
            channel=self.channel,
            status=self.status,
            started_at=format_ts(self.start_us),
            csat_score=csat[-1] if csat else None,
        )

    # -- helpers -----------------------------------------------------------

    def _observation(
        self,
        metric: str,
        ts_us: int,
        value: float,
        agents: Iterable[str | None],
        team: str | None,
        tag: str | None = None,
    ) -> Observation:
        return Observation(
            metric=metric,
            value=float(value),
            ts_us=ts_us,
            tenant=self.tenant,
            channel=self.channel,
            direction=self.direction,
            contact_type=self.contact_type,
            skill=self.skill,
            campaign=self.campaign,
            theme=self.theme,
            team=team,
            agents=frozenset(a for a in agents if a is not None),
            customer=self.customer,
            conversation_id=self.conversation_id,
            tag=tag,
        )

    def _emit(
        self,
        metric: str,
        ts_us: int,
        value: float,
        agents: Iterable[str | None],
        team: str | None,
        tag: str | None = None,
    ) -> None:
        self.out.append(self._observation(metric, ts_us, value, agents, team, tag))

    def _now(self, metric: str, ts_us: int, value: float = 1.0, agent: str | None = None) -> None:
        """An observation with the state as it is now (after the event's own effect, D15)."""
        self._emit(metric, ts_us, value, (agent,), self.team)

    def _business_seconds(self, start_us: int, end_us: int) -> float:
        if end_us <= start_us:
            return 0.0
        return self.calendar.business_us(start_us, end_us) / US

    def _start_clock(self, kind: str, start_us: int, idx: int) -> None:
        clock = _Clock(kind, start_us, idx)
        self.clocks.append(clock)
        self.open_clocks[kind] = clock

    def _stop_clock(self, kind: str, idx: int) -> None:
        clock = self.open_clocks.pop(kind, None)
        if clock is not None:
            clock.stop_idx = idx

    def _stop_all_clocks(self, idx: int) -> None:
        for kind in list(self.open_clocks):
            self._stop_clock(kind, idx)

    def _end_bot_handling(self, idx: int, ts_us: int) -> None:
        """D10/D12: the handoff ts; waiting starts here if the customer wrote under the bot."""
        self.bot_handling = False
        self.handoff_us = ts_us
        if self.customer_wrote_in_bot:
            self._begin_waiting(idx, ts_us)

    def _begin_waiting(self, idx: int, ts_us: int) -> None:
        """D11: once per conversation; the first_response clock starts with it (D40)."""
        if self.waiting_start_us is not None:
            return
        self.waiting_start_us = ts_us
        self._start_clock("first_response", ts_us, idx)

    def _waiting(self) -> bool:
        return self.waiting_start_us is not None and not self.first_response_done

    # -- event rules ---------------------------------------------------------

    def _begin(self, event: Event) -> None:
        """Explicit start, or implicit start at the first event (SPEC §1, §7 [7])."""
        if event.type == "conversation.started":
            data = event.data
            self.channel = data["channel"]
            self.direction = data["direction"]
            self.customer = data["customer_id"]
            self.customer_name = data.get("customer_name")
            self.contact_type = data.get("contact_type")
            self.skill = data.get("skill")
            self.campaign = data.get("campaign")
            self.theme = data.get("theme")
            self.bot_handling = data.get("handled_by") == "bot"
        self._start_clock("resolution", event.ts_us, 0)
        self._now("conversations_started", event.ts_us)

    def _ignored(self, idx: int, event: Event) -> None:
        """A later `conversation.started` changes nothing (SPEC §7 [7])."""

    def _message(self, idx: int, event: Event) -> None:
        sender = event.data["sender"]
        if sender == "customer":
            self._customer_message(idx, event)
        elif sender == "agent":
            self._agent_message(idx, event)
        elif sender == "bot":
            self._now("bot_messages", event.ts_us)
            self.messages.append(_Message(idx, event.ts_us, "bot", None))
        # system messages have no side, no session and no counter

    def _customer_message(self, idx: int, event: Event) -> None:
        ts = event.ts_us
        offline = event.data.get("mode") == "offline"
        if self.first_customer_offline is None:
            self.first_customer_offline = offline
            if self.store_text and "text" in event.data:
                self.subject = event.data["text"][:120]  # the first customer message only
        if self.bot_handling:
            self.customer_wrote_in_bot = True
        else:
            self._begin_waiting(idx, ts)
        self._now("customer_messages", ts)
        if self.side != "customer":
            self.side = "customer"
            self.turn_first_us = ts
            self.turn_offline = offline
            self._now("customer_responses", ts)
            if self.first_response_done:
                self._start_clock("next_response", ts, idx)
        else:
            self.turn_offline = self.turn_offline and offline
        self.last_customer_us = ts
        self.messages.append(_Message(idx, ts, "customer", None))

    def _agent_message(self, idx: int, event: Event) -> None:
        ts = event.ts_us
        agent = event.data["agent_id"]
        if self.bot_handling:
            self._end_bot_handling(idx, ts)
        earlier_human_message = self.human_message_seen
        self._now("agent_messages", ts, agent=agent)
        if agent not in self.writers:
            self.writers.append(agent)
            self._now("conversations_attended", ts, agent=agent)

        is_first_response = self._waiting()
        if is_first_response:
            assert self.waiting_start_us is not None
            start = self.waiting_start_us
            self._now("first_response_seconds", ts, max(0, ts - start) / US, agent)
            if self.calendar.has_hours:
                self._now(
                    "first_response_business_seconds", ts, self._business_seconds(start, ts), agent
                )
            if self.first_customer_offline:
                self._now(
                    "first_offline_response_seconds",
                    ts,
                    max(0, ts - self.last_customer_us) / US,
                    agent,
                )
            self.first_response_done = True
            self._stop_clock("first_response", idx)

        if self.side != "agent":
            self._now("agent_responses", ts, agent=agent)
        if self.side == "customer":
            self._response(idx, ts, agent, is_first_response, earlier_human_message)
        self.side = "agent"

        pending = self.pending_contacts.pop(agent, None)
        if pending is not None:
            assigned_us, assigned_team = pending
            self._now("agent_first_response_seconds", ts, max(0, ts - assigned_us) / US, agent)
            self._emit("agent_contacts_with_response", assigned_us, 1.0, (agent,), assigned_team)
        self.human_message_seen = True
        self.messages.append(_Message(idx, ts, "agent", agent))

    def _response(
        self, idx: int, ts: int, agent: str, is_first_response: bool, earlier_human: bool
    ) -> None:
        """An agent message that ends a customer turn (SPEC §3 response_seconds, D13, D21)."""
        turn_start = self.turn_first_us
        if self.handoff_us is not None:
            turn_start = max(turn_start, self.handoff_us)
        self._now("response_seconds", ts, max(0, ts - turn_start) / US, agent)
        if self.calendar.has_hours:
            self._now(
                "response_business_seconds", ts, self._business_seconds(turn_start, ts), agent
            )
        if not is_first_response:
            self._now("follow_on_response_seconds", ts, max(0, ts - turn_start) / US, agent)
            self._now("follow_on_responses", ts, agent=agent)
        if self.turn_offline and earlier_human:
            self._now(
                "offline_response_seconds", ts, max(0, ts - self.last_customer_us) / US, agent
            )
        self._stop_clock("next_response", idx)

    def _assigned(self, idx: int, event: Event) -> None:
        ts = event.ts_us
        data = event.data
        agent = data.get("agent_id")
        via = data["via"]
        handoff = False
        if self.bot_handling and (via == "bot" or agent is not None):
            handoff = via == "bot"
            self._end_bot_handling(idx, ts)
        self.team = data.get("team_id")
        self.last_agent = agent
        if handoff:
            self._now("bot_handoffs", ts, agent=agent)
        if via == "transfer":
            self._now("transfers_to_agent" if agent else "transfers_to_group", ts, agent=agent)
        if agent is None:
            return
        self._now("agent_contacts", ts, agent=agent)
        self.pending_contacts[agent] = (ts, self.team)
        if self.queue_wait_state == "pending":
            if self.waiting_start_us is None:
                self.queue_wait_state = "never"
            elif not self.first_response_done:
                self._now("queue_wait_seconds", ts, max(0, ts - self.waiting_start_us) / US, agent)
                self.queue_wait_state = "done"
        if self.cycle_assignment_us is None:
            self.cycle_assignment_us = ts

    def _focus_started(self, idx: int, event: Event) -> None:
        self.open_focus.setdefault(event.data["agent_id"], event.ts_us)

    def _focus_ended(self, idx: int, event: Event) -> None:
        agent = event.data["agent_id"]
        started = self.open_focus.pop(agent, None)
        if started is not None:
            self._focus(agent, started, event.ts_us)

    def _focus(self, agent: str, started_us: int, ended_us: int) -> None:
        self._now("focus_seconds", ended_us, max(0, ended_us - started_us) / US, agent)
        self._now("focus_count", ended_us, agent=agent)

    def _tagged(self, idx: int, event: Event) -> None:
        self._emit("tag_count", event.ts_us, 1.0, (self.last_agent,), self.team, event.data["tag"])

    def _resolved(self, idx: int, event: Event) -> None:
        if self.status != "open":
            return
        ts = event.ts_us
        self.status = "resolved"
        resolver = event.data.get("agent_id")
        credited = resolver or self.last_agent
        self._now("conversations_resolved", ts, agent=credited)
        self._now("resolution_seconds", ts, max(0, ts - self.cycle_start_us) / US, credited)
        if self.cycle_assignment_us is not None:
            self._now(
                "handle_seconds", ts, max(0, ts - self.cycle_assignment_us) / US, self.last_agent
            )
        self.cycle_resolved = True
        if resolver is None and not self.human_message_seen:
            self._now("automated_conversations", ts, agent=credited)
        self.side = None
        self._stop_all_clocks(idx)

    def _reopened(self, idx: int, event: Event) -> None:
        if self.status not in ("resolved", "closed"):
            return
        ts = event.ts_us
        self.status = "open"
        self._now("conversations_reopened", ts, agent=self.last_agent)
        self.cycle_start_us = ts
        self.cycle_assignment_us = None
        self.cycle_resolved = False
        self._start_clock("resolution", ts, idx)

    def _closed(self, idx: int, event: Event) -> None:
        if self.status not in ("open", "resolved"):
            return
        ts = event.ts_us
        self.status = "closed"
        self._now("conversations_closed", ts, agent=self.last_agent)
        if not self.cycle_resolved and self.cycle_assignment_us is not None:
            self._now(
                "handle_seconds", ts, max(0, ts - self.cycle_assignment_us) / US, self.last_agent
            )
        if self._waiting():
            self._now("unanswered_conversations", ts, agent=self.last_agent)
        if not self.ratings:
            self.unrated_at_close.append(
                self._observation("conversations_unrated", ts, 1.0, (self.last_agent,), self.team)
            )
        for agent, started in sorted(self.open_focus.items()):
            self._focus(agent, started, ts)
        self.open_focus.clear()
        self.side = None
        self._stop_all_clocks(idx)
        self.close_idxs.append(idx)

    def _rated(self, idx: int, event: Event) -> None:
        self.ratings.append(
            _Rating(
                idx, event.ts_us, event.data["survey"], event.data["score"], frozenset(self.writers)
            )
        )

    def _transaction(self, idx: int, event: Event) -> None:
        data = event.data
        metric = metrics.TRANSACTION_PREFIX + data["currency"]
        self._now(metric, event.ts_us, data["amount"], self.last_agent)
        if not self.converted:
            self.converted = True
            self._now("converted_conversations", event.ts_us, agent=self.last_agent)

    # -- look-ahead families -------------------------------------------------

    def _decide_sessions(self) -> None:
        """SPEC §2 Sessions, §7 [13], D29: split on gaps > session_gap and on closes."""
        closes = set(self.close_idxs)
        boundaries = sorted(closes | {m.idx for m in self.messages})
        by_idx = {m.idx: m for m in self.messages}
        session: list[_Message] = []
        for idx in boundaries:
            if idx in closes:
                self._session(session)
                session = []
                continue
            message = by_idx[idx]
            if session and max(0, message.ts_us - session[-1].ts_us) > self.gap_us:
                self._session(session)
                session = []
            session.append(message)
        if session and self.now_us > session[-1].ts_us + self.gap_us:
            self._session(session)

    def _session(self, session: list[_Message]) -> None:
        if not session:
            return
        customer = any(m.party == "customer" for m in session)
        agents = {m.agent_id for m in session if m.party == "agent"}
        if not customer and not agents:
            return  # bot-only: neither live nor one-sided
        last = session[-1]
        team = self.team_after[last.idx]
        if customer and agents:
            length = max(0, last.ts_us - session[0].ts_us) / US
            self._emit("live_sessions", last.ts_us, 1.0, agents, team)
            self._emit("live_session_seconds", last.ts_us, length, agents, team)
        else:
            self._emit("one_sided_sessions", last.ts_us, 1.0, agents, team)

    def _decide_ratings(self) -> None:
        """D26/D27: the latest rating per survey counts; unrated only if none ever came."""
        latest: dict[str, _Rating] = {}
        for rating in self.ratings:
            latest[rating.survey] = rating
        for survey, rating in latest.items():
            team = self.team_after[rating.idx]
            self._emit(f"{survey}_score", rating.ts_us, rating.score, rating.writers, team)
            category = _rating_category(survey, rating.score)
            if category is not None:
                self._emit(category, rating.ts_us, 1.0, rating.writers, team)
        if not self.ratings:
            self.out.extend(self.unrated_at_close)

    def _decide_sla(self) -> None:
        """D40-D42: a clock breaches when its stopping event, or "now", is past the deadline."""
        for clock in self.clocks:
            policy = self.tenant_config.sla_policy(clock.kind, self.channel)
            if policy is None:
                continue
            target_us = round(policy.target_seconds * US)
            if policy.business_hours:
                deadline = self.calendar.add_business_us(clock.start_us, target_us)
            else:
                deadline = clock.start_us + target_us
            if clock.stop_idx is not None:
                breached = self.events[clock.stop_idx].ts_us > deadline
            else:
                breached = self.now_us > deadline
            if not breached:
                continue
            state_idx = len(self.events) - 1
            for idx in range(clock.start_idx + 1, len(self.events)):
                if self.events[idx].ts_us > deadline:
                    state_idx = idx - 1
                    break
            self._emit(
                f"sla_breaches_{clock.kind}",
                deadline,
                1.0,
                (self.agent_after[state_idx],),
                self.team_after[state_idx],
            )


def _rating_category(survey: str, score: int) -> str | None:
    if survey == "csat":
        return CSAT_CATEGORY.get(score, "csat_satisfied")
    if survey == "nps":
        if score >= 9:
            return "nps_promoters"
        return "nps_passives" if score in NPS_PASSIVE else "nps_detractors"
    return None


# --- the whole input --------------------------------------------------------


@dataclass(slots=True)
class OracleRun:
    """The oracle's result for one input: net observations, attributes, "now"."""

    config: Config
    observations: list[Observation]
    conversations: dict[tuple[str, str], ConversationAttributes]
    now_us: int | None

    def report(self, query: ReportQuery) -> dict[str, Any]:
        return self.report_with_values(query)[0]

    def report_with_values(
        self, query: ReportQuery
    ) -> tuple[dict[str, Any], dict[tuple[Any, ...], dict[str, list[float]]]]:
        """The SPEC §5 report plus, per row key, the sorted raw values of each distribution."""
        return _build_report(self, query)


def oracle_run(lines: Iterable[bytes], config: Config) -> OracleRun:
    read = _read(lines)
    observations = list(read.observations)
    conversations: dict[tuple[str, str], list[Event]] = defaultdict(list)
    now_us: int | None = None
    for event in read.accepted:
        now_us = event.ts_us if now_us is None else max(now_us, event.ts_us)
        if event.type != AGENT_STATUS:
            conversations[(event.tenant, event.conversation_id or "")].append(event)
    attributes: dict[tuple[str, str], ConversationAttributes] = {}
    for key, events in conversations.items():
        assert now_us is not None
        walk = _ConversationWalk(events, config, now_us)
        observations.extend(walk.run())
        attributes[key] = walk.attributes()
    return OracleRun(config, observations, attributes, now_us)


def oracle_observations(lines: Iterable[bytes], config: Config) -> list[Observation]:
    """Every net observation of the input, for debugging and hand-written checks."""
    return oracle_run(lines, config).observations


def oracle_report(lines: Iterable[bytes], config: Config, query: ReportQuery) -> dict[str, Any]:
    """The SPEC §5 JSON report, computed independently of the engine."""
    return oracle_run(lines, config).report(query)


# --- step 5: reports ----------------------------------------------------------


_PLAIN_DIMENSIONS = {
    "tenant": "tenant",
    "team": "team",
    "channel": "channel",
    "direction": "direction",
    "contact_type": "contact_type",
    "skill": "skill",
    "campaign": "campaign",
    "theme": "theme",
    "tag": "tag",
    "customer": "customer",
    "conversation": "conversation_id",
}


class _Buckets:
    """Tenant-local (day, hour) of an instant, cached; tenant None is bucketed in UTC."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.cache: dict[tuple[str | None, int], tuple[str, str]] = {}

    def of(self, tenant: str | None, ts_us: int | None) -> tuple[str | None, str | None]:
        if ts_us is None:
            return None, None
        key = (tenant, ts_us)
        bucket = self.cache.get(key)
        if bucket is None:
            if tenant is None:
                moment = dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=ts_us)
                bucket = (moment.date().isoformat(), f"{moment.hour:02d}")
            else:
                bucket = self.config.tenant(tenant).calendar.local_bucket(ts_us)
            self.cache[key] = bucket
        return bucket


def _dimension(obs: Observation, dim: str, day: str | None, hour: str | None) -> str | None:
    if dim == "day":
        return day
    if dim == "hour":
        return hour
    return getattr(obs, _PLAIN_DIMENSIONS[dim])


def _matches(
    obs: Observation, where: Sequence[tuple[str, str]], day: str | None, hour: str | None
) -> bool:
    """SPEC §7 [52]: ANDed; `agent=X` = credited to X; `DIM=` matches "no value"."""
    for dim, wanted in where:
        if dim == "agent":
            ok = not obs.agents if wanted == "" else wanted in obs.agents
        else:
            value = _dimension(obs, dim, day, hour)
            ok = value is None if wanted == "" else value == wanted
        if not ok:
            return False
    return True


class _DateWindow:
    """`--from/--to` or `--range`, as inclusive tenant-local date bounds (SPEC §7 [51], D3)."""

    def __init__(self, run: OracleRun, query: ReportQuery, buckets: _Buckets) -> None:
        self.fixed = (query.date_from, query.date_to)
        self.range_name = query.range_name
        self.bounded = bool(query.date_from or query.date_to) or query.range_name not in (
            None,
            "all",
        )
        self.run = run
        self.buckets = buckets
        self.per_tenant: dict[str | None, tuple[dt.date | None, dt.date | None]] = {}

    def contains(self, tenant: str | None, day: str | None) -> bool:
        if not self.bounded:
            return True
        if day is None:
            return False
        low, high = self._bounds(tenant)
        date = dt.date.fromisoformat(day)
        return (low is None or date >= low) and (high is None or date <= high)

    def _bounds(self, tenant: str | None) -> tuple[dt.date | None, dt.date | None]:
        if self.range_name in (None, "all"):
            return self.fixed
        if tenant not in self.per_tenant:
            assert self.run.now_us is not None and self.range_name is not None
            today_text, _ = self.buckets.of(tenant, self.run.now_us)
            assert today_text is not None
            self.per_tenant[tenant] = range_dates(
                self.range_name, dt.date.fromisoformat(today_text)
            )
        return self.per_tenant[tenant]


@dataclass(slots=True)
class _RowAccumulator:
    counters: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    values: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    customers: set[str] = field(default_factory=set)
    writers: set[str] = field(default_factory=set)


def _build_report(
    run: OracleRun, query: ReportQuery
) -> tuple[dict[str, Any], dict[tuple[Any, ...], dict[str, list[float]]]]:
    buckets = _Buckets(run.config)
    window = _DateWindow(run, query, buckets)
    rows: dict[tuple[Any, ...], _RowAccumulator] = defaultdict(_RowAccumulator)
    currencies: set[str] = set()
    for obs in run.observations:
        day, hour = buckets.of(obs.tenant, obs.ts_us)
        if not window.contains(obs.tenant, day) or not _matches(obs, query.where, day, hour):
            continue
        if obs.metric.startswith(metrics.TRANSACTION_PREFIX):
            currencies.add(obs.metric)
        for key in _row_keys(obs, query.by, day, hour):
            row = rows[key]
            if metrics.is_distribution(obs.metric):
                row.values[obs.metric].append(obs.value)
            else:
                row.counters[obs.metric] += 1
            if obs.customer is not None:
                row.customers.add(obs.customer)
            if obs.metric == "agent_messages":
                row.writers.update(obs.agents)

    distributions = (*metrics.DISTRIBUTIONS, *sorted(currencies))
    report_rows = []
    raw_values: dict[tuple[Any, ...], dict[str, list[float]]] = {}
    for key in sorted(rows, key=_null_first):
        row = rows[key]
        out: dict[str, Any] = dict(zip(query.by, key, strict=True))
        for counter in metrics.COUNTERS:
            out[counter] = row.counters.get(counter, 0)
        out["sla_breaches"] = sum(row.counters.get(c, 0) for c in metrics.SLA_BREACH_COUNTERS)
        for metric in distributions:
            values = sorted(row.values.get(metric, ()))
            out[metric] = _distribution(values)
        out["distinct_customers"] = len(row.customers)
        out["distinct_agents"] = len(row.writers)
        if "conversation" in query.by:
            # `csat_score` is both a distribution and an attribute: the attribute wins here.
            out.update(_attributes(run, out.get("tenant"), out["conversation"]))
        report_rows.append(out)
        raw_values[key] = {m: sorted(v) for m, v in row.values.items()}
    return {"by": list(query.by), "rows": report_rows}, raw_values


def _row_keys(
    obs: Observation, by: Sequence[str], day: str | None, hour: str | None
) -> list[tuple[Any, ...]]:
    """One key per credited agent when `agent` is in --by (none: the null-agent row)."""
    keys: list[list[Any]] = [[]]
    for dim in by:
        if dim == "agent":
            agents: list[str | None] = sorted(obs.agents) if obs.agents else [None]
            keys = [[*key, agent] for key in keys for agent in agents]
        else:
            value = _dimension(obs, dim, day, hour)
            keys = [[*key, value] for key in keys]
    return [tuple(key) for key in keys]


def _null_first(key: tuple[Any, ...]) -> tuple[tuple[bool, str], ...]:
    return tuple((value is not None, "" if value is None else str(value)) for value in key)


def _attributes(run: OracleRun, tenant: str | None, conversation_id: str | None) -> dict[str, Any]:
    """D30 attributes of the row's conversation; all null on the no-conversation row.

    Conversation ids are unique across tenants in the generated streams; with
    `tenant` in --by the pair is matched exactly.
    """
    for (conv_tenant, conv_id), attributes in run.conversations.items():
        if conv_id == conversation_id and (tenant is None or conv_tenant == tenant):
            return attributes.as_row()
    return dict.fromkeys(metrics.CONVERSATION_ATTRIBUTES)


def nearest_rank(values: Sequence[float], p: float) -> float:
    """SPEC §7 [20]: sorted[ceil(p·n/100) − 1] of already sorted values."""
    n = len(values)
    rank = max(1, -(-p * n // 100))
    return values[int(rank) - 1]


def _distribution(values: Sequence[float]) -> dict[str, Any]:
    if not values:
        return {
            "count": 0,
            "sum": 0,
            "min": None,
            "max": None,
            "p50": None,
            "p90": None,
            "p99": None,
        }
    result: dict[str, Any] = {
        "count": len(values),
        "sum": round(sum(values), 6),
        "min": round(values[0], 6),
        "max": round(values[-1], 6),
    }
    for p in PERCENTILES:
        result[f"p{p}"] = round(nearest_rank(values, p), 6)
    return result
