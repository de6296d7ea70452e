"""Realistic, adversarial chat-event streams for conformance and property tests.

`generate_stream(seed)` gives JSONL lines (bytes, no newline) that look like a
few days of three companies' contact centres, deterministic for a seed:

- ``acme`` (Europe/Madrid): split shift on Friday, Monday 2026-10-26 a
  holiday, the DST change of Sunday 2026-10-25 inside the stream;
- ``globex`` (America/New_York): weekday hours and a short Saturday;
- ``initech``: absent from `STREAM_CONFIG`, so UTC, no hours, no SLA.

Conversations start over ~4 days (2026-10-22 .. 2026-10-26) and mix bots and
handoffs, routing and transfers, focus windows, offline messages, multi-turn
chats with delays from seconds to hours, resolve/reopen/close cycles, ratings,
transactions, tags, presence events, and the adversarial cases of SPEC §1 and
§7: implicit starts, late events, exact duplicates, invalid and blank lines,
answers right at an SLA deadline, conversations left open. A few conversations
(`chaotic_rate`) are random walks over every event type, for the state-machine
corners no script reaches.

    >>> lines = generate_stream(7, conversations=50)
    >>> config = parse_config(STREAM_CONFIG)

The streams never span more than `RETENTION_DAYS`, so no conversation state is
ever dropped (D4); `generate_stream` asserts it.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

US = 1_000_000
MINUTE = 60 * US
HOUR = 3600 * US
DAY = 24 * HOUR
RETENTION_DAYS = 7
STREAM_START_US = int(dt.datetime(2026, 10, 22, 6, 0, tzinfo=dt.UTC).timestamp()) * US
START_SPAN_US = int(4.25 * DAY)

STREAM_CONFIG = """\
[defaults]
session_gap_seconds = 1800
store_text = true

[tenants.acme]
timezone = "Europe/Madrid"
holidays = ["2026-10-26", "2026-12-25"]
session_gap_seconds = 900

[tenants.acme.service_hours]
mon = ["08:00-20:00"]
tue = ["08:00-20:00"]
wed = ["08:00-20:00"]
thu = ["08:00-20:00"]
fri = ["08:00-14:00", "16:00-20:00"]
sat = ["10:00-14:00"]

[[tenants.acme.sla]]
kind = "first_response"
target_seconds = 60
business_hours = false
channel = "chat"

[[tenants.acme.sla]]
kind = "first_response"
target_seconds = 240
business_hours = true

[[tenants.acme.sla]]
kind = "first_response"
target_seconds = 900
business_hours = false

[[tenants.acme.sla]]
kind = "next_response"
target_seconds = 120
business_hours = false

[[tenants.acme.sla]]
kind = "next_response"
target_seconds = 3600
business_hours = true
channel = "email"

[[tenants.acme.sla]]
kind = "resolution"
target_seconds = 7200
business_hours = true

[[tenants.acme.sla]]
kind = "resolution"
target_seconds = 172800
business_hours = false
channel = "email"

[tenants.globex]
timezone = "America/New_York"

[tenants.globex.service_hours]
mon = ["09:00-17:00"]
tue = ["09:00-17:00"]
wed = ["09:00-17:00"]
thu = ["09:00-17:00"]
fri = ["09:00-17:00"]
sat = ["10:00-15:00"]

[[tenants.globex.sla]]
kind = "first_response"
target_seconds = 120
business_hours = false

[[tenants.globex.sla]]
kind = "first_response"
target_seconds = 90
business_hours = true
channel = "whatsapp"

[[tenants.globex.sla]]
kind = "next_response"
target_seconds = 300
business_hours = true

[[tenants.globex.sla]]
kind = "resolution"
target_seconds = 3600
business_hours = false
channel = "chat"

[[tenants.globex.sla]]
kind = "resolution"
target_seconds = 28800
business_hours = true
"""

# Wall-clock SLA targets of STREAM_CONFIG, so the generator can answer right at a deadline.
_WALL_TARGETS: dict[tuple[str, str, str], float] = {
    ("acme", "first_response", "chat"): 60,
    ("acme", "next_response", "chat"): 120,
    ("acme", "next_response", "whatsapp"): 120,
    ("globex", "first_response", "chat"): 120,
    ("globex", "first_response", "email"): 120,
}

# Offsets from a wall deadline: exactly on it (met), 1 µs / 1 ms after (breached), just before.
_DEADLINE_OFFSETS_US = (0, 0, 1, 1_000, -1_000, -1, 2 * US)


@dataclass(frozen=True, slots=True)
class _Tenant:
    name: str
    zone: ZoneInfo
    agents: tuple[str, ...]
    teams: tuple[str, ...]
    groups: tuple[str, ...]
    channels: tuple[tuple[str, float], ...]
    currencies: tuple[str, ...]
    customer_prefix: str
    session_gap_s: float


TENANTS: tuple[_Tenant, ...] = (
    _Tenant(
        name="acme",
        zone=ZoneInfo("Europe/Madrid"),
        agents=("ag-luis", "ag-ana", "ag-marta", "ag-jordi", "ag-sofia"),
        teams=("team-es", "team-billing"),
        groups=("grp-es", "grp-vip"),
        channels=(("chat", 0.5), ("whatsapp", 0.3), ("email", 0.2)),
        currencies=("EUR", "USD"),
        customer_prefix="cust-es",
        session_gap_s=900,
    ),
    _Tenant(
        name="globex",
        zone=ZoneInfo("America/New_York"),
        agents=("ag-john", "ag-mary", "ag-kim", "ag-raj"),
        teams=("team-us", "team-sales"),
        groups=("grp-us",),
        channels=(("chat", 0.45), ("whatsapp", 0.25), ("email", 0.3)),
        currencies=("USD", "EUR"),
        customer_prefix="cust-us",
        session_gap_s=1800,
    ),
    _Tenant(
        name="initech",
        zone=ZoneInfo("UTC"),
        agents=("ag-olga", "ag-pete", "ag-luis"),  # ag-luis works for two tenants
        teams=("team-int",),
        groups=("grp-int",),
        channels=(("chat", 0.6), ("email", 0.4)),
        currencies=("USD",),
        customer_prefix="cust-int",
        session_gap_s=1800,
    ),
)
_TENANT_WEIGHTS = (0.45, 0.35, 0.2)

_TEXTS = (
    "hola, ¿dónde está mi pedido?",
    "where is my order?",
    "I was charged twice for the same invoice",
    "necesito cambiar la dirección de envío",
    "can I return a pair of shoes? 👟",
    "ok",
    "thanks!",
    "gracias 🙂",
    "the app keeps crashing when I open the payment page and I already reinstalled it twice, "
    "this is really frustrating because I need to pay today 😤 — please help ASAP!!!",
    'quote "inside" and a back\\slash',
    "línea uno\nlínea dos",
)


@dataclass(slots=True)
class _Draft:
    """One conversation event before serialisation; `ts_us` may still be moved."""

    ts_us: int
    body: dict[str, Any]


@dataclass(slots=True)
class _Queued:
    arrival_us: int
    order: float
    line: bytes


class _Ids:
    """Deterministic ids from the stream's random generator, unique across seeds too.

    The sequential spelling carries the seed: streams of two seeds joined in
    one input must not share an `event_id` (SPEC §7 [2]: a repeated id is a
    duplicate, and which copy comes first can depend on arrival order).
    """

    def __init__(self, rng: random.Random, seed: int) -> None:
        self.rng = rng
        self.seed = seed
        self.count = 0

    def event_id(self) -> str:
        self.count += 1
        if self.rng.random() < 0.7:
            return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        return f"evt-{self.seed}-{self.count:07d}"


class _Script:
    """Writes one conversation in time order, tracking just enough to aim at SLA deadlines."""

    def __init__(
        self, rng: random.Random, ids: _Ids, tenant: _Tenant, cid: str, start_us: int
    ) -> None:
        self.rng = rng
        self.ids = ids
        self.tenant = tenant
        self.cid = cid
        self.t = start_us
        self.drafts: list[_Draft] = []
        self.channel = "unknown"
        self.bot = False
        self.customer_in_bot = False
        self.waiting_from: int | None = None
        self.answered = False
        self.side: str | None = None
        self.turn_first: int | None = None
        self.agent: str | None = None
        self.writers: list[str] = []
        self.focus_open: set[str] = set()
        self.status = "open"

    # -- primitives -----------------------------------------------------------

    def emit(self, event_type: str, delay_s: float = 0.0, **fields: Any) -> int:
        self.t += max(0, round(delay_s * US))
        body: dict[str, Any] = {
            "event_id": self.ids.event_id(),
            "type": event_type,
            "ts": None,  # formatted at serialisation
            "tenant": self.tenant.name,
            "conversation_id": self.cid,
        }
        body.update(fields)
        if self.rng.random() < 0.03:
            body["x_trace"] = {"hop": self.rng.randint(1, 9), "src": "gateway"}  # ignored extra
        self.drafts.append(_Draft(self.t, body))
        return self.t

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def optional(self, value: Any, p_null: float = 0.05) -> Any:
        """An optional field value, sometimes sent as an explicit null."""
        return None if self.chance(p_null) else value

    def seconds(self, low: float, high: float) -> float:
        """A log-uniform delay: realistic spread from `low` to `high` seconds."""
        return low * (high / low) ** self.rng.random()

    # -- conversation moves ---------------------------------------------------

    def start(self, channel: str, direction: str, bot: bool, customer: str) -> None:
        self.channel = channel
        self.bot = bot
        fields: dict[str, Any] = {
            "channel": channel,
            "direction": direction,
            "customer_id": customer,
        }
        if self.chance(0.8):
            fields["customer_name"] = self.optional(
                self.rng.choice(("Paola M.", "John D.", "Zoë K.", "Ana Pérez", "Raj P."))
            )
        for name, choices in (
            ("contact_type", ("support", "sales", "complaint")),
            ("skill", ("billing", "tech", "returns")),
            ("theme", ("orders", "billing", "returns", "account")),
        ):
            if self.chance(0.7):
                fields[name] = self.optional(self.rng.choice(choices))
        if direction == "outbound" or self.chance(0.05):
            fields["campaign"] = self.rng.choice(("autumn-promo", "renewals"))
        if bot:
            fields["handled_by"] = "bot"
        elif self.chance(0.3):
            fields["handled_by"] = self.optional("human", 0.3)
        self.emit("conversation.started", 0, **fields)

    def customer(self, delay_s: float, count: int = 1, offline: bool = False) -> None:
        for i in range(count):
            fields: dict[str, Any] = {"sender": "customer"}
            if offline:
                fields["mode"] = "offline"
            elif self.chance(0.1):
                fields["mode"] = self.optional("live", 0.3)
            if self.chance(0.85):
                fields["text"] = self.rng.choice(_TEXTS)
            ts = self.emit("message.sent", delay_s if i == 0 else self.seconds(1, 40), **fields)
            if self.bot:
                self.customer_in_bot = True
            elif self.waiting_from is None:
                self.waiting_from = ts
            if self.side != "customer":
                self.turn_first = ts
            self.side = "customer"

    def bot_says(self, delay_s: float) -> None:
        self.emit("message.sent", delay_s, sender="bot", text="🤖 " + self.rng.choice(_TEXTS))

    def system_says(self, delay_s: float) -> None:
        self.emit("message.sent", delay_s, sender="system", text="conversation transferred")

    def agent_says(self, agent: str, delay_s: float) -> None:
        fields: dict[str, Any] = {"sender": "agent", "agent_id": agent}
        if self.chance(0.7):
            fields["text"] = self.rng.choice(_TEXTS)
        ts = self.emit("message.sent", delay_s, **fields)
        if self.bot:
            self.bot = False
            if self.customer_in_bot and self.waiting_from is None:
                self.waiting_from = ts
        if self.waiting_from is not None:
            self.answered = True
        if agent not in self.writers:
            self.writers.append(agent)
        self.side = "agent"
        if agent in self.focus_open and self.chance(0.25):
            self.focus_end(agent, self.seconds(1, 30))

    def assign(
        self, delay_s: float, via: str, agent: str | None = None, group: str | None = None
    ) -> None:
        fields: dict[str, Any] = {"via": via}
        if agent is not None:
            fields["agent_id"] = agent
        else:
            fields["group_id"] = group
        if self.chance(0.75):
            fields["team_id"] = self.optional(self.rng.choice(self.tenant.teams), 0.1)
        ts = self.emit("conversation.assigned", delay_s, **fields)
        if self.bot and (via == "bot" or agent is not None):
            self.bot = False
            if self.customer_in_bot and self.waiting_from is None:
                self.waiting_from = ts
        self.agent = agent
        if agent is not None and self.chance(0.7):
            self.focus_start(agent, self.seconds(0.5, 10))

    def started_again(self, delay_s: float) -> None:
        """A second (or first, late) conversation.started: ignored unless it comes first."""
        self.emit(
            "conversation.started",
            delay_s,
            channel=self.rng.choice(("sms", "chat")),
            direction="inbound",
            customer_id="cust-late-start",
            handled_by="bot",
        )

    def focus_start(self, agent: str, delay_s: float) -> None:
        self.emit("agent.focus.started", delay_s, agent_id=agent)
        self.focus_open.add(agent)
        if self.chance(0.05):
            self.emit("agent.focus.started", self.seconds(1, 20), agent_id=agent)  # no effect

    def focus_end(self, agent: str, delay_s: float) -> None:
        self.emit("agent.focus.ended", delay_s, agent_id=agent)
        self.focus_open.discard(agent)

    def resolve(self, delay_s: float, agent: str | None) -> None:
        fields = {} if agent is None else {"agent_id": agent}
        self.emit("conversation.resolved", delay_s, **fields)
        if self.status == "open":
            self.status = "resolved"
            self.side = None

    def close(self, delay_s: float) -> None:
        self.emit("conversation.closed", delay_s)
        if self.status != "closed":
            self.status = "closed"
            self.side = None
            self.focus_open.clear()

    def reopen(self, delay_s: float) -> None:
        self.emit("conversation.reopened", delay_s)
        if self.status != "open":
            self.status = "open"

    def rate(self, delay_s: float, survey: str) -> None:
        high = {"csat": 5, "nps": 10, "ces": 7}[survey]
        low = 0 if survey == "nps" else 1
        score = self.rng.choice((high, high, high - 1, high - 2, low, (low + high) // 2))
        self.emit("conversation.rated", delay_s, survey=survey, score=score)

    # -- timing -------------------------------------------------------------

    def reply_delay(self, first: bool) -> float:
        """How long the next agent reply takes: mostly quick, sometimes at the SLA deadline."""
        kind = "first_response" if first else "next_response"
        target = _WALL_TARGETS.get((self.tenant.name, kind, self.channel))
        anchor = self.waiting_from if first else self.turn_first
        if target is not None and anchor is not None and self.chance(0.25):
            aimed = anchor + round(target * US) + self.rng.choice(_DEADLINE_OFFSETS_US)
            if aimed >= self.t:
                return (aimed - self.t) / US
        if self.channel == "email":
            return self.seconds(120, 6 * 3600)
        if self.channel == "whatsapp":
            return self.seconds(10, 1800)
        return self.seconds(3, 240) if self.chance(0.85) else self.seconds(240, 3 * 3600)

    def customer_delay(self) -> float:
        gap = self.tenant.session_gap_s
        roll = self.rng.random()
        if roll < 0.7:
            return self.seconds(5, 300)
        if roll < 0.85:
            return self.seconds(300, gap)
        return self.seconds(gap * 0.9, gap * 4)  # around and beyond the session gap


class _Generator:
    def __init__(
        self,
        seed: int,
        conversations: int,
        invalid_rate: float,
        duplicate_rate: float,
        late_rate: float,
        interleave: bool,
        chaotic_rate: float,
    ) -> None:
        self.rng = random.Random(seed)
        self.chaotic_rate = chaotic_rate
        self.ids = _Ids(self.rng, seed)
        self.conversations = conversations
        self.invalid_rate = invalid_rate
        self.duplicate_rate = duplicate_rate
        self.late_rate = late_rate
        self.interleave = interleave
        self.queue: list[_Queued] = []
        self.order = 0
        self.real_events: list[tuple[_Queued, dict[str, Any]]] = []
        self.first_ts_us: int | None = None

    # -- whole stream -------------------------------------------------------

    def build(self) -> list[bytes]:
        for number in range(self.conversations):
            tenant = self.rng.choices(TENANTS, _TENANT_WEIGHTS)[0]
            cid = f"c-{tenant.name[:2]}-{number:05d}-{self.rng.getrandbits(16):04x}"
            start = self._start_time(tenant)
            script = _Script(self.rng, self.ids, tenant, cid, start)
            if self.rng.random() < self.chaotic_rate:
                self._write_chaos(script)
            else:
                self._write_conversation(script)
            self._queue_conversation(script.drafts, tenant)
        self._queue_presence()
        self._queue_invalid_and_blank()
        if self.interleave:
            ordered = sorted(self.queue, key=lambda q: (q.arrival_us, q.order))
        else:
            ordered = sorted(self.queue, key=lambda q: q.order)
        return [q.line for q in ordered]

    def _start_time(self, tenant: _Tenant) -> int:
        """Busier in local daytime, with some night traffic (offline, outside hours)."""
        while True:
            ts = STREAM_START_US + self.rng.randrange(START_SPAN_US)
            local = dt.datetime.fromtimestamp(ts / US, tenant.zone)
            if 8 <= local.hour < 20 or self.rng.random() < 0.25:
                return ts

    def _next_order(self) -> float:
        self.order += 1
        return float(self.order)

    def _queue_line(self, arrival_us: int, line: bytes, order: float | None = None) -> _Queued:
        queued = _Queued(arrival_us, self._next_order() if order is None else order, line)
        self.queue.append(queued)
        return queued

    # -- one conversation ---------------------------------------------------

    def _write_conversation(self, s: _Script) -> None:
        rng = self.rng
        tenant = s.tenant
        channel = rng.choices([c for c, _ in tenant.channels], [w for _, w in tenant.channels])[0]
        direction = "outbound" if rng.random() < 0.12 else "inbound"
        bot = direction == "inbound" and channel != "email" and rng.random() < 0.35
        customer = self._customer(tenant)
        if rng.random() < 0.04:
            s.channel = "unknown"  # implicit start: no conversation.started at all
        else:
            s.start(channel, direction, bot, customer)
        offline = (channel == "email" and rng.random() < 0.4) or rng.random() < 0.06

        if direction == "outbound" and s.channel != "unknown":
            agent = rng.choice(tenant.agents)
            s.assign(s.seconds(1, 30), "routing", agent=agent)
            s.agent_says(agent, s.seconds(2, 60))
            if rng.random() < 0.3:
                self._ending(s)
                return
            s.customer(s.seconds(60, 5 * 3600), rng.randint(1, 2), offline=offline)
        elif s.bot:
            if not self._bot_phase(s, offline):
                return
        else:
            if not self._human_opening(s, offline):
                return
        self._human_loop(s, offline)
        self._ending(s)

    def _write_chaos(self, s: _Script) -> None:
        """A random walk over every event type: order, agents and clock all adversarial."""
        rng = self.rng
        agents = (*rng.sample(s.tenant.agents, 2), "ag-luis")
        if rng.random() < 0.8:
            s.start(
                rng.choice(("chat", "email", "whatsapp")),
                rng.choice(("inbound", "outbound")),
                rng.random() < 0.5,
                self._customer(s.tenant),
            )
        moves: list[tuple[float, Callable[[float], object]]] = [
            (6, lambda d: s.customer(d, offline=rng.random() < 0.3)),
            (5, lambda d: s.agent_says(rng.choice(agents), d)),
            (2, lambda d: s.bot_says(d)),
            (0.5, lambda d: s.system_says(d)),
            (2, lambda d: s.assign(d, rng.choice(_VIAS), agent=rng.choice(agents))),
            (1, lambda d: s.assign(d, rng.choice(_VIAS), group=rng.choice(s.tenant.groups))),
            (1.5, lambda d: s.focus_start(rng.choice(agents), d)),
            (1.5, lambda d: s.focus_end(rng.choice(agents), d)),
            (1.5, lambda d: s.resolve(d, rng.choice((*agents, None)))),
            (1, lambda d: s.reopen(d)),
            (1.2, lambda d: s.close(d)),
            (1, lambda d: s.rate(d, rng.choice(("csat", "nps", "ces")))),
            (0.5, lambda d: s.emit("conversation.tagged", d, tag=rng.choice(_TAGS))),
            (0.5, lambda d: s.started_again(d)),
        ]
        weights = [w for w, _ in moves]
        for _ in range(rng.randint(3, 35)):
            move = rng.choices(moves, weights)[0][1]
            delay = rng.choice(
                (0.0, rng.uniform(0, 5), s.seconds(1, 600), s.seconds(600, 4 * 3600))
            )
            move(delay)
            if rng.random() < 0.08:
                s.t -= rng.randint(1, 900) * US  # the producer's clock jumps back

    def _customer(self, tenant: _Tenant) -> str:
        if self.rng.random() < 0.05:
            return f"cust-shared-{self.rng.randint(1, 8)}"  # customer ids are global
        return f"{tenant.customer_prefix}-{self.rng.randint(1, 160)}"

    def _bot_phase(self, s: _Script, offline: bool) -> bool:
        """Bot handling; False when the bot finished the conversation on its own."""
        rng = self.rng
        for _ in range(rng.randint(1, 3)):
            s.customer(s.seconds(1, 60), rng.randint(1, 2), offline=offline)
            s.bot_says(s.seconds(1, 8))
        roll = rng.random()
        agent = rng.choice(s.tenant.agents)
        if roll < 0.22:
            s.resolve(s.seconds(20, 300), None)  # automated
            if rng.random() < 0.7:
                s.close(s.seconds(30, 3600))
            if rng.random() < 0.35:
                s.rate(s.seconds(10, 7200), rng.choice(("csat", "csat", "ces")))
            if rng.random() < 0.15:  # the customer comes back: reopen and a human takes over
                s.reopen(s.seconds(600, 4 * 3600))
                s.customer(s.seconds(1, 10))
                s.assign(s.seconds(5, 600), "routing", agent=agent)
                return True
            return False
        if roll < 0.62:
            s.assign(s.seconds(3, 60), "bot", agent=agent)  # handoff straight to an agent
        elif roll < 0.80:
            s.assign(s.seconds(3, 60), "bot", group=rng.choice(s.tenant.groups))
            if rng.random() < 0.3:
                s.customer(s.seconds(20, 300))
            s.assign(s.seconds(10, 1500), "routing", agent=agent)
        elif roll < 0.88:
            s.agent_says(agent, s.seconds(5, 120))  # an agent writing ends bot handling
            s.assign(s.seconds(1, 30), "routing", agent=agent)
        else:
            s.assign(s.seconds(5, 120), "routing", agent=agent)  # ends bot handling, no handoff
        return True

    def _human_opening(self, s: _Script, offline: bool) -> bool:
        """Human handling from the start; False for a conversation nobody answers."""
        rng = self.rng
        agent = rng.choice(s.tenant.agents)
        if rng.random() < 0.15:
            s.assign(s.seconds(1, 20), "routing", agent=agent)  # assigned before waiting
            s.customer(s.seconds(2, 60), rng.randint(1, 3), offline=offline)
            return True
        s.customer(s.seconds(1, 5), rng.randint(1, 3), offline=offline)
        roll = rng.random()
        if roll < 0.05:  # unanswered: closed by the system while waiting
            if rng.random() < 0.5:
                s.assign(s.seconds(5, 120), "routing", group=rng.choice(s.tenant.groups))
            if rng.random() < 0.8:
                s.close(s.seconds(600, 3 * 3600))
            return False
        if roll < 0.25:
            s.assign(s.seconds(1, 60), "routing", group=rng.choice(s.tenant.groups))
            s.assign(s.seconds(10, 1800), "routing", agent=agent)
        elif roll < 0.3:
            s.agent_says(agent, s.reply_delay(first=True))  # writes before any assignment
        else:
            s.assign(s.seconds(1, 400), "routing", agent=agent)
            if rng.random() < 0.05:
                s.assign(s.seconds(5, 60), "routing", agent=agent)  # re-assigned before writing
        return True

    def _human_loop(self, s: _Script, offline: bool) -> None:
        rng = self.rng
        turns = rng.choice((0, 1, 1, 2, 2, 3, 4, 6))
        agent = s.agent or (s.writers[-1] if s.writers else rng.choice(s.tenant.agents))
        for turn in range(turns + 1):
            if rng.random() < 0.04:
                s.system_says(s.seconds(1, 30))
            s.agent_says(agent, s.reply_delay(first=not s.answered))
            if rng.random() < 0.3:
                s.agent_says(agent, s.seconds(2, 40))  # two messages in one agent turn
            if rng.random() < 0.12:
                s.emit("conversation.tagged", s.seconds(1, 60), tag=rng.choice(_TAGS))
            if rng.random() < 0.12:
                agent = self._transfer(s, agent)
            if turn == turns:
                break
            if rng.random() < 0.03:
                s.bot_says(s.seconds(1, 30))
            s.customer(s.customer_delay(), rng.choice((1, 1, 1, 2, 3)), offline=offline)
        if rng.random() < 0.25:
            s.customer(s.customer_delay())  # the customer has the last word for now

    def _transfer(self, s: _Script, previous: str) -> str:
        rng = self.rng
        others = [a for a in s.tenant.agents if a != previous]
        target = rng.choice(others)
        if rng.random() < 0.3:
            s.assign(s.seconds(5, 120), "transfer", group=rng.choice(s.tenant.groups))
            s.assign(s.seconds(10, 900), "routing", agent=target)
        else:
            s.assign(s.seconds(5, 120), "transfer", agent=target)
        if previous in s.focus_open and rng.random() < 0.6:
            s.focus_end(previous, s.seconds(1, 20))
        if rng.random() < 0.08:
            s.agent_says(previous, s.seconds(5, 60))  # the transferred-away agent still writes
        return target

    def _ending(self, s: _Script) -> None:
        rng = self.rng
        agent = s.agent or (s.writers[-1] if s.writers else None)
        if rng.random() < 0.03:
            stranger = rng.choice([a for a in s.tenant.agents if a not in s.focus_open])
            s.focus_end(stranger, s.seconds(1, 60))  # no open window: ignored
        if rng.random() < 0.15:
            self._extras(s)
            return  # stays open: SLA clocks and the session run on the clock
        if rng.random() < 0.3 and s.side == "agent":
            s.customer(s.seconds(3, 60))  # "thanks" right before the resolve
        if rng.random() < 0.85:
            resolver = agent if rng.random() < 0.85 else None
            s.resolve(s.seconds(5, 1800), resolver)
            if rng.random() < 0.04:
                s.resolve(s.seconds(1, 60), resolver)  # second resolve: ignored
            if rng.random() < 0.15:
                s.customer(s.seconds(5, 300))  # after the resolve: starts a new turn
            if rng.random() < 0.05 and agent is not None:
                s.agent_says(agent, s.seconds(5, 300))
        self._extras(s)
        if rng.random() < 0.75:
            s.close(s.seconds(60, 4 * 3600))
            if rng.random() < 0.04:
                s.close(s.seconds(1, 60))  # second close: ignored
        if rng.random() < 0.08:
            s.reopen(s.seconds(300, 6 * 3600))
            s.customer(s.seconds(1, 30))
            next_agent = agent or rng.choice(s.tenant.agents)
            if rng.random() < 0.5:
                s.assign(s.seconds(5, 300), "routing", agent=next_agent)
            s.agent_says(next_agent, s.reply_delay(first=not s.answered))
            s.resolve(s.seconds(30, 1800), next_agent)
            if rng.random() < 0.6:
                s.close(s.seconds(60, 3600))
        elif rng.random() < 0.02:
            s.reopen(s.seconds(1, 60))  # on an open or closed conversation
        if rng.random() < 0.04 and s.status == "closed":
            s.customer(s.seconds(60, 3600))  # a message after close
        self._ratings(s)

    def _extras(self, s: _Script) -> None:
        rng = self.rng
        if rng.random() < 0.15:
            s.emit("conversation.tagged", s.seconds(1, 120), tag=rng.choice(_TAGS))
        if rng.random() < 0.15:
            for _ in range(rng.choice((1, 1, 2))):
                amount: float = rng.choice(
                    (round(rng.uniform(5, 500), 2), rng.randint(10, 900), 0.1 + 0.2)
                )
                s.emit(
                    "conversation.transaction",
                    s.seconds(5, 600),
                    transaction_id=f"tx-{self.ids.event_id()[:8]}",
                    amount=amount,
                    currency=rng.choice(s.tenant.currencies),
                )

    def _ratings(self, s: _Script) -> None:
        rng = self.rng
        if rng.random() >= 0.45:
            return
        survey = rng.choices(("csat", "nps", "ces"), (0.7, 0.2, 0.1))[0]
        s.rate(s.seconds(30, 20 * 3600), survey)
        if rng.random() < 0.12:
            s.rate(s.seconds(60, 3 * 3600), survey)  # re-rating replaces the first
        if rng.random() < 0.15:
            s.rate(s.seconds(5, 600), rng.choice(("csat", "nps", "ces")))

    # -- serialisation, late events and duplicates --------------------------

    def _queue_conversation(self, drafts: list[_Draft], tenant: _Tenant) -> None:
        rng = self.rng
        if not drafts:
            return
        # late events: the later one of two neighbours arrives first, or a skewed clock
        for i in range(len(drafts) - 1):
            if rng.random() < self.late_rate / 2 and (i > 0 or rng.random() < 0.25):
                drafts[i], drafts[i + 1] = drafts[i + 1], drafts[i]
        for i in range(1, len(drafts)):
            if rng.random() < self.late_rate / 2:
                drafts[i].ts_us = drafts[i - 1].ts_us - rng.randint(1_000, 30 * US)
        arrival = 0
        for draft in drafts:
            arrival = max(arrival, draft.ts_us)
            if self.first_ts_us is None or draft.ts_us < self.first_ts_us:
                self.first_ts_us = draft.ts_us
            draft.body["ts"] = self._format_ts(draft.ts_us, tenant)
            line = self._dump(draft.body)
            queued = self._queue_line(arrival, line)
            self.real_events.append((queued, draft.body))
            if rng.random() < self.duplicate_rate:
                delay = rng.choice((0, rng.randint(1, 600) * US, rng.randint(1, 7200) * US))
                self._queue_line(arrival + delay, line, order=self._next_order() + 0.5)

    def _format_ts(self, ts_us: int, tenant: _Tenant) -> str:
        """RFC 3339 in several valid spellings; always exactly `ts_us`."""
        rng = self.rng
        zone = tenant.zone if rng.random() < 0.2 else ZoneInfo("UTC")
        moment = dt.datetime.fromtimestamp(ts_us // US, zone).replace(microsecond=ts_us % US)
        micros = ts_us % US
        if micros == 0 and rng.random() < 0.5:
            fraction = ""
        elif micros % 1000 == 0 and rng.random() < 0.8:
            fraction = f".{micros // 1000:03d}"
        else:
            fraction = f".{micros:06d}"
        offset = moment.utcoffset() or dt.timedelta(0)
        if offset == dt.timedelta(0) and rng.random() < 0.85:
            suffix = "Z" if rng.random() < 0.95 else "z"
        else:
            minutes = int(offset.total_seconds() // 60)
            sign = "+" if minutes >= 0 else "-"
            suffix = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        sep = "T" if rng.random() < 0.97 else "t"
        return moment.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + fraction + suffix

    def _dump(self, body: dict[str, Any]) -> bytes:
        ascii_only = self.rng.random() < 0.5
        if self.rng.random() < 0.1:
            return json.dumps(body, ensure_ascii=ascii_only).encode()
        return json.dumps(body, ensure_ascii=ascii_only, separators=(",", ":")).encode()

    def _queue_presence(self) -> None:
        """agent.status: shifts per agent and local day, some duplicated."""
        rng = self.rng
        last = max((q.arrival_us for q in self.queue), default=STREAM_START_US)
        for tenant in TENANTS:
            for agent in tenant.agents:
                team = tenant.teams[len(agent) % len(tenant.teams)] if rng.random() < 0.8 else None
                day = dt.datetime.fromtimestamp(STREAM_START_US / US, tenant.zone).date()
                for offset in range(6):
                    date = day + dt.timedelta(days=offset)
                    for hour, status in (
                        (8, "online"),
                        (13, "away"),
                        (14, "online"),
                        (19, "offline"),
                    ):
                        local = dt.datetime(
                            date.year, date.month, date.day, hour, tzinfo=tenant.zone
                        )
                        ts = int(local.timestamp()) * US + rng.randint(0, 20 * MINUTE)
                        if ts > last:
                            continue
                        self._presence(tenant, agent, status, team, ts)
        # one last heartbeat moves "now" past the final conversation event
        tenant = TENANTS[0]
        self._presence(tenant, tenant.agents[0], "offline", None, last + rng.randint(0, 2 * HOUR))

    def _presence(
        self, tenant: _Tenant, agent: str, status: str, team: str | None, ts: int
    ) -> None:
        body: dict[str, Any] = {
            "event_id": self.ids.event_id(),
            "type": "agent.status",
            "ts": self._format_ts(ts, tenant),
            "tenant": tenant.name,
            "agent_id": agent,
            "status": status,
        }
        if team is not None:
            body["team_id"] = team
        line = self._dump(body)
        self._queue_line(ts, line)
        if self.rng.random() < self.duplicate_rate * 2:
            self._queue_line(ts + self.rng.randint(0, HOUR), line)

    def _queue_invalid_and_blank(self) -> None:
        rng = self.rng
        total = len(self.queue)
        if self.invalid_rate <= 0 or not self.real_events:
            return
        arrivals = [q.arrival_us for q in self.queue]
        low, high = min(arrivals), max(arrivals)
        for _ in range(max(1, round(total * self.invalid_rate))):
            maker = rng.choice(_INVALID_MAKERS)
            queued, body = rng.choice(self.real_events)
            line = maker(self, dict(body))
            if maker is _invalid_precursor:
                self._queue_line(queued.arrival_us, line, order=queued.order - 0.5)
            else:
                self._queue_line(rng.randint(low, high), line)
        for _ in range(max(1, round(total * self.invalid_rate / 3))):
            self._queue_line(rng.randint(low, high), rng.choice((b"", b"   ", b"\t")))
        if rng.random() < 0.5:
            body = dict(rng.choice(self.real_events)[1])
            body["event_id"] = "oversized-" + self.ids.event_id()
            body["text"] = "x" * (1 << 20)
            self._queue_line(rng.randint(low, high), self._dump(body))


_TAGS = ("billing", "refund", "vip", "bug", "delivery", "feedback")
_VIAS = ("routing", "transfer", "bot")


# --- invalid lines: each takes a real event's body and breaks it -------------


def _invalid_broken_json(gen: _Generator, body: dict[str, Any]) -> bytes:
    text = json.dumps(body)
    return text[: gen.rng.randint(1, len(text) - 2)].encode()


def _invalid_not_object(gen: _Generator, body: dict[str, Any]) -> bytes:
    return gen.rng.choice((b"[1, 2, 3]", b'"hello"', b"42", b"null", b"true"))


def _invalid_missing_field(gen: _Generator, body: dict[str, Any]) -> bytes:
    name = gen.rng.choice(("event_id", "type", "ts", "tenant", "conversation_id"))
    body.pop(name, None)
    if gen.rng.random() < 0.3:
        body[name] = None  # null on a required field = missing
    return gen._dump(body)


def _invalid_bad_enum(gen: _Generator, body: dict[str, Any]) -> bytes:
    field_name, value = gen.rng.choice(
        (
            ("direction", "sideways"),
            ("sender", "robot"),
            ("via", "email"),
            ("handled_by", "ai"),
            ("mode", "async"),
        )
    )
    body["type"] = {
        "direction": "conversation.started",
        "handled_by": "conversation.started",
        "sender": "message.sent",
        "mode": "message.sent",
        "via": "conversation.assigned",
    }[field_name]
    body.update(
        {"channel": "chat", "direction": "inbound", "customer_id": "cust-x", "sender": "customer"}
    )
    body.update({"via": "routing", "agent_id": "ag-x"})
    body[field_name] = value
    return gen._dump(body)


def _invalid_score(gen: _Generator, body: dict[str, Any]) -> bytes:
    survey, score = gen.rng.choice(
        (
            ("csat", 6),
            ("csat", 0),
            ("nps", 11),
            ("nps", -1),
            ("ces", 8),
            ("csat", 4.5),
            ("nps", "9"),
        )
    )
    body.update({"type": "conversation.rated", "survey": survey, "score": score})
    return gen._dump(body)


def _invalid_ts(gen: _Generator, body: dict[str, Any]) -> bytes:
    body["ts"] = gen.rng.choice(
        (
            "2026-10-23 10:00:00Z",
            "2026-10-23T25:00:00Z",
            "2026-02-30T10:00:00Z",
            "2026-10-23T10:00:60Z",
            "2026-10-23T10:00:00",
            "yesterday",
            1761213600,
        )
    )
    return gen._dump(body)


def _invalid_type(gen: _Generator, body: dict[str, Any]) -> bytes:
    body["type"] = gen.rng.choice(("conversation.snoozed", "message.deleted", "", 7))
    return gen._dump(body)


def _invalid_assignment(gen: _Generator, body: dict[str, Any]) -> bytes:
    body["type"] = "conversation.assigned"
    body["via"] = "transfer"
    if gen.rng.random() < 0.5:
        body.update({"agent_id": "ag-x", "group_id": "grp-x"})
    else:
        body.pop("agent_id", None)
        body.pop("group_id", None)
    return gen._dump(body)


def _invalid_agent_message(gen: _Generator, body: dict[str, Any]) -> bytes:
    body.update({"type": "message.sent", "sender": "agent"})
    body.pop("agent_id", None)
    return gen._dump(body)


def _invalid_transaction(gen: _Generator, body: dict[str, Any]) -> bytes:
    body.update({"type": "conversation.transaction", "transaction_id": "tx-bad", "currency": "EUR"})
    body["amount"] = gen.rng.choice(("12.50", True, None, [1]))
    return gen._dump(body)


def _invalid_tenant(gen: _Generator, body: dict[str, Any]) -> bytes:
    body["tenant"] = gen.rng.choice((42, "", ["acme"]))
    return gen._dump(body)


def _invalid_presence(gen: _Generator, body: dict[str, Any]) -> bytes:
    body = {
        "event_id": gen.ids.event_id(),
        "type": "agent.status",
        "ts": body["ts"],
        "tenant": body["tenant"],
        "agent_id": "ag-x",
        "status": gen.rng.choice(("busy", "ONLINE", None)),
    }
    return gen._dump(body)


def _invalid_precursor(gen: _Generator, body: dict[str, Any]) -> bytes:
    """A broken copy of a real event, with its event_id, arriving just before it (SPEC [2])."""
    body.pop("tenant" if gen.rng.random() < 0.2 else "ts")
    return gen._dump(body)


_INVALID_MAKERS: tuple[Callable[[_Generator, dict[str, Any]], bytes], ...] = (
    _invalid_broken_json,
    _invalid_not_object,
    _invalid_missing_field,
    _invalid_bad_enum,
    _invalid_score,
    _invalid_ts,
    _invalid_type,
    _invalid_assignment,
    _invalid_agent_message,
    _invalid_transaction,
    _invalid_tenant,
    _invalid_presence,
    _invalid_precursor,
)


# --- public API ----------------------------------------------------------------


def generate_stream(
    seed: int,
    conversations: int = 300,
    *,
    invalid_rate: float = 0.01,
    duplicate_rate: float = 0.02,
    late_rate: float = 0.02,
    interleave: bool = True,
    chaotic_rate: float = 0.05,
) -> list[bytes]:
    """A deterministic stream of JSONL lines (no newline) for `seed`; see the module doc.

    `chaotic_rate` of the conversations are random walks over every event type
    (any order, any agent, clock jumps both ways): they reach state-machine
    corners the realistic scripts rarely do.
    """
    generator = _Generator(
        seed, conversations, invalid_rate, duplicate_rate, late_rate, interleave, chaotic_rate
    )
    lines = generator.build()
    _assert_within_retention(generator)
    return lines


def _assert_within_retention(generator: _Generator) -> None:
    """D4 is out of the oracle's scope: no conversation may outlive `RETENTION_DAYS`.

    Arrival times bound every `ts` from above, so this is conservative.
    """
    if generator.first_ts_us is None:
        return
    span = max(q.arrival_us for q in generator.queue) - generator.first_ts_us
    assert span < RETENTION_DAYS * DAY, f"stream spans {span / DAY:.1f} days"


def line_key(line: bytes) -> tuple[str, str] | None:
    """(tenant, conversation_id) of a line, or None (presence, invalid, blank lines)."""
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(obj, dict) or obj.get("type") == "agent.status":
        return None
    tenant, cid = obj.get("tenant"), obj.get("conversation_id")
    if isinstance(tenant, str) and isinstance(cid, str):
        return tenant, cid
    return None


def reorder_conversations(lines: Sequence[bytes], seed: int) -> list[bytes]:
    """Interleave whole conversations differently, keeping each one's own order.

    Lines without a conversation (presence, invalid, blank) keep their order
    among themselves and are mixed in too. Every report must be unchanged: a
    conversation's rules only look at its own events, and "now" is the maximum.
    """
    rng = random.Random(seed)
    queues: dict[tuple[str, str] | None, list[bytes]] = {}
    for line in lines:
        queues.setdefault(line_key(line), []).append(line)
    pending = [list(reversed(q)) for q in queues.values()]
    out: list[bytes] = []
    while pending:
        weights = [len(q) for q in pending]
        index = rng.choices(range(len(pending)), weights)[0]
        out.append(pending[index].pop())
        if not pending[index]:
            pending.pop(index)
    return out
