"""The engine: validated events in, observations / SLA events / attributes out.

Pure and deterministic: no I/O, no wall clock. The clock is the largest
event time seen (D50) or what the caller passes to `advance`; timers (session
gaps, SLA deadlines, retention) fire when the clock passes them. `replay` and
the live worker drive the same `Engine`.

    >>> engine = Engine(Config())
    >>> out: list[Output] = []
    >>> engine.process(event, out)        # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Final

from livemetrics.config import Config
from livemetrics.engine import assignments, lifecycle, messages, ratings, sessions, sla
from livemetrics.engine.context import (
    TIMER_RETENTION,
    TIMER_SESSION,
    TIMER_SLA_BREACH,
    TIMER_SLA_RISK,
    Context,
)
from livemetrics.engine.outputs import (
    DIM_INDEX,
    ConversationAttributes,
    ConversationDropped,
    Folder,
    Observation,
    Output,
)
from livemetrics.engine.state import (
    CLOSED,
    Conversation,
    attribute_values,
    conversation_from_list,
    conversation_to_list,
)
from livemetrics.engine.timers import TimerQueue
from livemetrics.event_types import AgentStatus, ConversationStarted
from livemetrics.events import Event, Rejection

ConversationKey = tuple[str, str]


def _apply_rule(ctx: Context, event_type: str, ts_us: int, body: Any) -> None:
    """Hand an event to the rule module of its type, the most frequent types first.

    Plain calls rather than a table of functions: the compiled core calls these
    directly, where a call through a table goes through Python's calling
    convention (arguments parsed again, at every event).
    """
    if event_type == "message.sent":
        messages.on_message(ctx, ts_us, body)
    elif event_type == "conversation.assigned":
        assignments.on_assigned(ctx, ts_us, body)
    elif event_type == "agent.focus.started":
        lifecycle.on_focus_started(ctx, ts_us, body)
    elif event_type == "agent.focus.ended":
        lifecycle.on_focus_ended(ctx, ts_us, body)
    elif event_type == "conversation.resolved":
        lifecycle.on_resolved(ctx, ts_us, body)
    elif event_type == "conversation.closed":
        lifecycle.on_closed(ctx, ts_us)
    elif event_type == "conversation.tagged":
        lifecycle.on_tagged(ctx, ts_us, body)
    elif event_type == "conversation.rated":
        ratings.on_rated(ctx, ts_us, body.survey, body.score)
    elif event_type == "conversation.transaction":
        lifecycle.on_transaction(ctx, ts_us, body)
    elif event_type == "conversation.reopened":
        lifecycle.on_reopened(ctx, ts_us)
    # conversation.started: a second start is ignored (SPEC §7 [7]); agent.status
    # never reaches here (Engine._agent_status)


_EMPTY_DIMS: Final[tuple[None, ...]] = (None,) * len(DIM_INDEX)


class Engine:
    """Holds every conversation's state, the clock and the timers."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.clock_us = 0
        self.conversations: dict[ConversationKey, Conversation] = {}
        # the same conversations by tenant, then id: what `process` looks up at every
        # event (a key of two strings fresh from the decoder is a tuple to build and
        # hash, and to compare item by item); changed with `conversations` only
        self._by_tenant: dict[str, dict[str, Conversation]] = {}
        # the tenant of the last event and its conversations (`process`): an event's
        # tenant is a string fresh from the decoder, whose hash a lookup computes
        self._last_tenant = ""
        self._last_of_tenant = self._of_tenant("")
        self.dropped: set[ConversationKey] = set()
        self.status_ids: dict[str, set[str]] = {}
        self.presence: dict[tuple[str, str], tuple[str, str | None]] = {}
        self._timers = TimerQueue()
        self._retention_us = round(config.retention_days * 86_400_000_000)
        self._contexts: dict[str, Context] = {}
        self._folder: Folder | None = None

    # -- input ---------------------------------------------------------------

    def process(self, event: Event, out: list[Output]) -> bool:
        """Apply one valid event; append what it produces to `out`.

        False when it was a duplicate (its `event_id` already seen, SPEC §7):
        only `duplicate_events` was counted.
        """
        event_id = event.event_id
        event_type = event.type
        ts_us = event.ts_us
        tenant = event.tenant
        conversation_id = event.conversation_id
        data = event.data
        if event_type == "agent.status":
            return self._agent_status(event, out)
        conversation_id = conversation_id or ""
        if tenant == self._last_tenant:  # mostly: a comparison, where a lookup hashes it
            of_tenant = self._last_of_tenant
        else:
            of_tenant = self._last_of_tenant = self._of_tenant(tenant)
            self._last_tenant = tenant
        conv = of_tenant.get(conversation_id)
        if conv is not None:
            # the id added at once: a duplicate leaves the ids as they were (one look
            # into them, where a test and an add later were two)
            seen = conv.seen
            known = len(seen)
            seen[event_id] = None
            if len(seen) == known:
                self._tenant_count("duplicate_events", tenant, ts_us, out)
                return False
        if ts_us > self.clock_us:
            self.advance(ts_us, out)
            if conv is not None and conv.status == CLOSED:
                # a retention timer may have dropped it (only a closed one)
                conv = of_tenant.get(conversation_id)
        if conv is None:
            if (tenant, conversation_id) in self.dropped:
                self._dropped_event(event, out)
                return True
            conv = self._start(event, out)
            conv.seen[event_id] = None
        ctx = self._context(conv, out, event_id)
        late = ts_us < conv.last_event_us
        conv.last_event_us = ts_us
        # what can change in `state.attribute_values`, compared after the event by
        # identity: a change sets another object; an equal value set anew (another
        # object) only sends the same attributes again (the compiled core compares
        # an `int | None` or a tuple of them through Python's generic comparison)
        status, writers, csat_score, subject = (
            conv.status,
            len(conv.writers),
            conv.csat_score,
            conv.subject,
        )
        if conv.clocks:
            sla.freeze_breaches(ctx, ts_us)
        _apply_rule(ctx, event_type, ts_us, data)
        if late:  # with the team the event leaves (D2, D15)
            ctx.observe("late_events", 1, ts_us)
        if self._timers.has_due_before(self.clock_us):
            self._fire_due(out)
        if (
            conv.status is not status
            or len(conv.writers) != writers
            or conv.csat_score is not csat_score
            or conv.subject is not subject
        ):
            self._send_attributes(conv, out)
        return True

    def reject(self, rejection: Rejection, out: list[Output]) -> None:
        """Count bad input under its tenant and bucket when readable (SPEC §7 [5], D3)."""
        tenant = rejection.tenant
        ts_us = rejection.ts_us
        if ts_us is None:
            out.append(Observation("invalid_events", 1, 0, None, None, (tenant, *_EMPTY_DIMS[1:])))
            return
        self._tenant_count("invalid_events", tenant, ts_us, out)

    def fold_into(self, folder: Folder | None) -> None:
        """Hand the observations nobody keeps, and the conversations whose attributes
        changed, to `folder` instead of the output list (replay's store, for the length
        of a replay); None: to the list again."""
        self._folder = folder
        for ctx in self._contexts.values():
            ctx.folder = folder

    def advance(self, now_us: int, out: list[Output]) -> None:
        """Move the clock forward (never back) and fire the timers it passes."""
        if now_us > self.clock_us:
            self.clock_us = now_us
            self._fire_due(out)

    # -- conversations -------------------------------------------------------

    def _start(self, event: Event, out: list[Output]) -> Conversation:
        """Explicit start, or implicit start at the first event seen (SPEC §1, §7 [7])."""
        tenant = event.tenant
        body = event.data
        if isinstance(body, ConversationStarted):
            base_dims: tuple[str | None, ...] = (
                tenant,
                body.channel,
                body.direction,
                body.contact_type,
                body.skill,
                body.campaign,
                body.theme,
            )
            customer_id: str | None = body.customer_id
            customer_name = body.customer_name
            bot = body.handled_by == "bot"
        else:  # implicit start: channel unknown, inbound, no customer, human handling ([7])
            base_dims = (tenant, "unknown", "inbound", None, None, None, None)
            customer_id = customer_name = None
            bot = False
        conv = Conversation(
            tenant=tenant,
            conversation_id=event.conversation_id or "",
            base_dims=base_dims,
            customer_id=customer_id,
            customer_name=customer_name,
            started_us=event.ts_us,
            cycle_start_us=event.ts_us,
            bot=bot,
            last_event_us=event.ts_us,
        )
        self._add(conv)
        ctx = self._context(conv, out, event.event_id)
        ctx.observe("conversations_started", 1, event.ts_us)
        sla.start_clock(ctx, "resolution", 0, event.ts_us)
        self._send_attributes(conv, out)
        return conv

    def _of_tenant(self, tenant: str) -> dict[str, Conversation]:
        """The tenant's conversations by id (`_by_tenant`), made empty when it has none."""
        of_tenant = self._by_tenant.get(tenant)
        if of_tenant is None:
            of_tenant = self._by_tenant[tenant] = {}
        return of_tenant

    def _add(self, conv: Conversation) -> None:
        self.conversations[conv.key] = conv
        self._of_tenant(conv.tenant)[conv.conversation_id] = conv

    def _remove(self, key: ConversationKey) -> None:
        if self.conversations.pop(key, None) is not None:
            del self._by_tenant[key[0]][key[1]]

    def _context(self, conv: Conversation, out: list[Output], event_id: str | None) -> Context:
        """The tenant's `Context`, pointed at this conversation, output list, event and clock.

        One context per tenant is re-pointed at every use instead of built anew
        (building one was about 5 % of replay): rule functions use it only for
        the length of their call and never keep it, and the engine applies one
        event or timer at a time. (It keeps its last conversation alive until
        the tenant's next event or timer.)
        """
        ctx = self._contexts.get(conv.tenant)
        if ctx is None:
            tenant = self.config.tenant(conv.tenant)
            ctx = self._contexts[conv.tenant] = Context(
                conv,
                tenant,
                tenant.calendar,
                out,
                event_id,
                self.clock_us,
                round(tenant.session_gap_seconds * 1_000_000),
                self._retention_us,
                self.config.store_text,
                self._timers,
                self._folder,
            )
            return ctx
        ctx.conv = conv
        ctx.out = out
        ctx.event_id = event_id
        ctx.clock_us = self.clock_us
        return ctx

    def _send_attributes(self, conv: Conversation, out: list[Output]) -> None:
        """The conversation's attributes changed: to the output list, or the folder
        keeps the conversation and reads them when they are read (`Folder`)."""
        folder = self._folder
        if folder is None:
            values = attribute_values(conv)
            out.append(ConversationAttributes(conv.tenant, conv.conversation_id, values))
        else:
            folder.keep_attributes(conv)

    def _dropped_event(self, event: Event, out: list[Output]) -> None:
        """An event for a conversation dropped after retention: late only (SPEC §7 [30])."""
        day, hour = self.config.tenant(event.tenant).calendar.local_bucket(event.ts_us)
        dims: list[str | None] = list(_EMPTY_DIMS)
        dims[DIM_INDEX["tenant"]] = event.tenant
        dims[DIM_INDEX["conversation"]] = event.conversation_id
        out.append(Observation("late_events", 1, event.ts_us, day, hour, tuple(dims)))

    def _agent_status(self, event: Event, out: list[Output]) -> bool:
        ids = self.status_ids.setdefault(event.tenant, set())
        if event.event_id in ids:
            self._tenant_count("duplicate_events", event.tenant, event.ts_us, out)
            return False
        ids.add(event.event_id)
        self.advance(event.ts_us, out)
        body = event.data
        assert isinstance(body, AgentStatus)
        self.presence[(event.tenant, body.agent_id)] = (body.status, body.team_id)
        return True

    def _tenant_count(self, metric: str, tenant: str | None, ts_us: int, out: list[Output]) -> None:
        calendar = self.config.tenant(tenant or "").calendar
        day, hour = calendar.local_bucket(ts_us)
        out.append(Observation(metric, 1, ts_us, day, hour, (tenant, *_EMPTY_DIMS[1:])))

    # -- timers ----------------------------------------------------------------

    def _fire_due(self, out: list[Output]) -> None:
        timers = self._timers
        conversations = self.conversations
        while True:
            timer = timers.pop_due_before(self.clock_us)
            if timer is None:
                return
            # the kind typed (compared as a machine int once compiled), the key not:
            # a typed key would be unpacked and packed anew for the lookup
            key = timer[2]
            kind: int = timer[3]
            ref = timer[4]
            conv = conversations.get(key)
            if conv is None:
                continue
            if kind == TIMER_SESSION:
                sessions.on_timer(self._context(conv, out, None))
            elif kind == TIMER_RETENTION:
                self._maybe_drop(conv, out)
            else:
                # a clock stopped by an answer leaves its timer behind (about
                # two in three SLA timers): skipped before a context is made
                clock = sla.find_clock(conv, ref[0], ref[1])
                if clock is not None:
                    sla.fire(self._context(conv, out, None), clock, kind)

    def _maybe_drop(self, conv: Conversation, out: list[Output]) -> None:
        if conv.status != CLOSED or conv.closed_us is None:
            return
        if self.clock_us > conv.closed_us + self._retention_us:
            self._remove(conv.key)
            self.dropped.add(conv.key)
            out.append(ConversationDropped(conv.tenant, conv.conversation_id))

    # -- live worker: conversations move in and out with partitions -------------

    def load(self, conv: Conversation) -> None:
        """Adopt a conversation restored from storage and re-arm its timers."""
        self._add(conv)
        self._rearm(conv)

    def fire_due(self, out: list[Output]) -> None:
        """Fire the timers already due at the current clock: those of conversations
        loaded after the clock passed them (a partition taken over in a rebalance)."""
        self._fire_due(out)

    def unload(self, key: ConversationKey) -> None:
        """Forget a conversation whose partition moved to another worker (its timers lapse)."""
        self._remove(key)
        self.dropped.discard(key)

    # -- state -----------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Everything needed to resume; timers are rebuilt from the conversations."""
        return {
            "clock_us": self.clock_us,
            "conversations": [conversation_to_list(c) for c in self.conversations.values()],
            "dropped": [list(k) for k in sorted(self.dropped)],
            "status_ids": {t: sorted(ids) for t, ids in self.status_ids.items()},
            "presence": [[t, a, s, team] for (t, a), (s, team) in self.presence.items()],
        }

    @classmethod
    def from_state(cls, config: Config, state: dict[str, Any]) -> Engine:
        engine = cls(config)
        engine.clock_us = state["clock_us"]
        for item in state["conversations"]:
            conv = conversation_from_list(item)
            engine._add(conv)
            engine._rearm(conv)
        engine.dropped = {(t, c) for t, c in state["dropped"]}
        engine.status_ids = {t: set(ids) for t, ids in state["status_ids"].items()}
        engine.presence = {(t, a): (s, team) for t, a, s, team in state["presence"]}
        return engine

    def _rearm(self, conv: Conversation) -> None:
        key = conv.key
        gap_us = round(self.config.tenant(conv.tenant).session_gap_seconds * 1_000_000)
        session = conv.session
        conv.session_timer_armed = session is not None and session.provisional is None
        if session is not None and session.provisional is None:
            self._timers.schedule(session.last_us + gap_us, key, TIMER_SESSION, None)
        for clock in conv.clocks:
            if clock.breach is None:
                # as `sla.start_clock`: the at-risk timer arms the breach timer
                ref = (clock.kind, clock.turn)
                if clock.at_risk_sent:
                    self._timers.schedule(clock.deadline_us, key, TIMER_SLA_BREACH, ref)
                else:
                    self._timers.schedule(clock.at_risk_us, key, TIMER_SLA_RISK, ref)
        if conv.status == CLOSED and conv.closed_us is not None:
            self._timers.schedule(conv.closed_us + self._retention_us, key, TIMER_RETENTION, None)
