"""Realistic contact-centre traffic, written to a JSONL file or published live to Kafka.

`streams.py` aims at the SPEC's corners (historical dates, invalid lines); this
module is the opposite: what three real contact centres look like hour by
hour, for demos, load tests and eyeballing reports. It is a discrete-event
simulation, deterministic for a seed:

- **Tenants** (`SIM_CONFIG`): ``acme`` (shop, Europe/Madrid, Friday split
  shift, public holidays), ``globex`` (telecom, America/New_York, holidays)
  and ``initech`` (SaaS, Asia/Singapore, open 24/7). Their time zones spread
  the traffic over the whole UTC day, so a live demo always has some.
- **Demand**: Poisson arrivals per tenant whose rate follows a daily curve
  (`HOURLY_DEMAND`: quiet nights, a 10-11 morning peak, a lunch dip, a 15-16
  afternoon peak) and the day (`WEEKDAY_DEMAND`; closed days are quiet).
- **Agents** in teams, staffed from the rate, with shifts cut to the service
  hours (split on acme's Fridays, none on holidays), logging in and out
  (`agent.status` online/offline) and pausing routing for breaks (away). Live
  channels take capacity; a full or empty team queues the conversation on its
  group; agents ending a shift hand their chats over (transfers).
- **Conversations**: bots first on some channels (self-service, abandon or
  handoff via=bot), routing, lognormal reply times per channel (chat fast,
  email slow) that grow with the agent's load, customers who give up waiting,
  offline messages when nobody is on duty, multi-turn exchanges with long
  pauses (several sessions), focus windows (one focused conversation per
  agent), transfers between teams, resolve / reopen / auto-close, CSAT, CES
  and NPS whose scores drop after long waits, transfers and reopens,
  transactions in a few currencies, tags, and rare late or duplicate events.

`rate_per_s` is the conversation-start rate, all tenants together, if every
tenant were at its peak hour (10:00-11:00 local, Monday to Thursday) at once:
a tenant gets its `share` of it at its own peak and less at other hours. As
the tenants live in three time zones, a whole weekday averages about 0.45 x
`rate_per_s` starts per second (`average_demand` computes it).

    counts = simulate_to_file(Path("day.jsonl"), seed=1, duration_s=86_400,
                              rate_per_s=0.5, start=dt.datetime(2026, 11, 2, tzinfo=dt.UTC))
    counts = await simulate_to_kafka("127.0.0.1:9092", seed=1, duration_s=300, rate_per_s=2)
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import math
import random
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from livemetrics.config import Config, parse_config
from livemetrics.produce import AGENT_STATUS_TOPIC, EVENTS_TOPIC

__all__ = [
    "CLOSED_DAY_DEMAND",
    "HOURLY_DEMAND",
    "SIM_CONFIG",
    "WEEKDAY_DEMAND",
    "Emission",
    "SimulationCounts",
    "TrafficSimulator",
    "average_demand",
    "simulate_to_file",
    "simulate_to_kafka",
]

US = 1_000_000
HOUR_S = 3600
DEFAULT_LATE_RATE = 0.002  # of customer messages: delivered 1-20 s after their ts
DEFAULT_DUPLICATE_RATE = 0.001  # of all events: delivered twice (at-least-once webhooks)

SIM_CONFIG = """\
# The contact centres of `livemetrics simulate` (src/livemetrics/simulate/traffic.py).
[defaults]
session_gap_seconds = 1800
store_text = true
retention_days = 7

# acme: online shop in Spain; Friday split shift, Saturday mornings, public holidays.
[tenants.acme]
timezone = "Europe/Madrid"
holidays = [
    "2025-12-08", "2025-12-25", "2026-01-01", "2026-01-06", "2026-04-03", "2026-05-01",
    "2026-10-12", "2026-12-08", "2026-12-25", "2027-01-01", "2027-01-06", "2027-03-26",
]
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
target_seconds = 300
business_hours = false
channel = "whatsapp"

[[tenants.acme.sla]]
kind = "first_response"
target_seconds = 14400
business_hours = true

[[tenants.acme.sla]]
kind = "next_response"
target_seconds = 120
business_hours = false
channel = "chat"

[[tenants.acme.sla]]
kind = "next_response"
target_seconds = 28800
business_hours = true
channel = "email"

[[tenants.acme.sla]]
kind = "resolution"
target_seconds = 28800
business_hours = true

# globex: telecom in the US; weekdays and Saturday mornings, US holidays.
[tenants.globex]
timezone = "America/New_York"
holidays = [
    "2025-11-27", "2025-12-25", "2026-01-01", "2026-05-25", "2026-07-03",
    "2026-09-07", "2026-11-26", "2026-12-25", "2027-01-01",
]

[tenants.globex.service_hours]
mon = ["09:00-18:00"]
tue = ["09:00-18:00"]
wed = ["09:00-18:00"]
thu = ["09:00-18:00"]
fri = ["09:00-18:00"]
sat = ["10:00-15:00"]

[[tenants.globex.sla]]
kind = "first_response"
target_seconds = 90
business_hours = false
channel = "chat"

[[tenants.globex.sla]]
kind = "first_response"
target_seconds = 900
business_hours = true

[[tenants.globex.sla]]
kind = "first_response"
target_seconds = 14400
business_hours = true
channel = "email"

[[tenants.globex.sla]]
kind = "next_response"
target_seconds = 180
business_hours = false
channel = "chat"

[[tenants.globex.sla]]
kind = "resolution"
target_seconds = 172800
business_hours = false
channel = "email"

[[tenants.globex.sla]]
kind = "resolution"
target_seconds = 14400
business_hours = true

# initech: software company in Singapore; follow-the-sun support, open 24/7.
[tenants.initech]
timezone = "Asia/Singapore"

[tenants.initech.service_hours]
mon = ["00:00-24:00"]
tue = ["00:00-24:00"]
wed = ["00:00-24:00"]
thu = ["00:00-24:00"]
fri = ["00:00-24:00"]
sat = ["00:00-24:00"]
sun = ["00:00-24:00"]

[[tenants.initech.sla]]
kind = "first_response"
target_seconds = 120
business_hours = false

[[tenants.initech.sla]]
kind = "first_response"
target_seconds = 7200
business_hours = false
channel = "email"

[[tenants.initech.sla]]
kind = "next_response"
target_seconds = 300
business_hours = false
channel = "chat"

[[tenants.initech.sla]]
kind = "resolution"
target_seconds = 3600
business_hours = false
channel = "chat"
"""

# --- demand ---------------------------------------------------------------------

#: Share of a tenant's peak conversation-start rate per local hour (00..23) of a
#: busy weekday: quiet nights, a morning peak at 10-11, a lunch dip, an
#: afternoon peak at 15-16, a long evening tail.
HOURLY_DEMAND: tuple[float, ...] = (
    *(0.06, 0.04, 0.03, 0.03, 0.04, 0.07),
    *(0.15, 0.35, 0.62, 0.88, 1.00, 0.96),
    *(0.78, 0.70, 0.82, 0.92, 0.86, 0.72),
    *(0.56, 0.46, 0.38, 0.28, 0.17, 0.10),
)
#: Monday .. Sunday factor on `HOURLY_DEMAND`.
WEEKDAY_DEMAND: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0, 0.9, 0.5, 0.35)
#: Factor for a day the tenant is closed (a holiday, a Sunday): people still write.
CLOSED_DAY_DEMAND = 0.3


# --- static description of the simulated centres ----------------------------------


@dataclass(frozen=True, slots=True)
class _Channel:
    """How a channel behaves; times are (median seconds, lognormal sigma)."""

    name: str
    units: int  # capacity units a conversation holds (an agent has CAPACITY_UNITS); 0 = email
    first_reply: tuple[float, float]  # agent's first message after an assignment
    reply: tuple[float, float]  # agent's later replies
    customer: tuple[float, float]  # customer's answer to an agent
    idle: float  # chance the customer pauses for long (often past the session gap)
    patience: tuple[float, float] | None  # before a waiting customer gives up (live chat only)
    turns: float  # mean exchanges after the first answer
    wrap_up: tuple[float, float]  # agent resolves this long after the last message (uniform)
    close_after: tuple[float, float]  # resolved -> closed by the system (uniform seconds)
    csat: float  # share of resolves the customer rates
    reopen: float  # share of resolves the customer reopens
    hold_s: float  # mean seconds a conversation holds its units (staffing estimate)


CAPACITY_UNITS = 6  # an agent holds 3 chats, or 6 messaging conversations
EMAIL_CAPACITY = 20  # open emails per agent before routing skips them
PENDING_AFTER_S = 600  # a customer slower than this to answer frees the agent's capacity

# fmt: off
CHANNELS: dict[str, _Channel] = {
    channel.name: channel
    for channel in (
        _Channel("chat", units=2, first_reply=(22, 0.7), reply=(30, 0.8), customer=(40, 0.9),
                 idle=0.05, patience=(240, 0.7), turns=3.0, wrap_up=(20, 150),
                 close_after=(300, 1200), csat=0.35, reopen=0.04, hold_s=250),
        _Channel("whatsapp", units=1, first_reply=(55, 0.9), reply=(70, 1.0),
                 customer=(150, 1.3), idle=0.15, patience=None, turns=3.0, wrap_up=(60, 600),
                 close_after=(3600, 86400), csat=0.25, reopen=0.06, hold_s=900),
        _Channel("messenger", units=1, first_reply=(60, 0.9), reply=(75, 1.0),
                 customer=(180, 1.3), idle=0.15, patience=None, turns=2.5, wrap_up=(60, 600),
                 close_after=(3600, 43200), csat=0.2, reopen=0.05, hold_s=900),
        _Channel("sms", units=1, first_reply=(80, 0.9), reply=(100, 1.0), customer=(240, 1.3),
                 idle=0.2, patience=None, turns=2.0, wrap_up=(60, 900),
                 close_after=(3600, 43200), csat=0.15, reopen=0.04, hold_s=1000),
        _Channel("email", units=0, first_reply=(2400, 1.0), reply=(3000, 1.0),
                 customer=(14400, 1.1), idle=0.0, patience=None, turns=1.2, wrap_up=(0, 120),
                 close_after=(172800, 345600), csat=0.2, reopen=0.08, hold_s=0),
    )
}
# fmt: on


@dataclass(frozen=True, slots=True)
class _TeamProfile:
    team_id: str
    themes: tuple[str, ...]  # inbound themes routed here; the sales team takes purchases


@dataclass(frozen=True, slots=True)
class _TenantProfile:
    name: str
    share: float  # of `rate_per_s`
    spanish: bool
    channels: tuple[tuple[str, float], ...]
    bot_channels: tuple[str, ...]
    bot_share: float  # conversations on a bot channel that the bot takes first
    outbound_share: float  # campaign conversations an agent starts (when sales is on duty)
    teams: tuple[_TeamProfile, ...]  # the last one is sales
    themes: tuple[tuple[str, float], ...]
    shifts: tuple[tuple[tuple[tuple[int, int], ...], float], ...]  # local spans, staff weight
    seven_days: bool  # agents rotate two days off; else Monday-Friday plus a Saturday crew
    currencies: tuple[tuple[str, float], ...]
    basket: float  # median transaction amount
    campaigns: tuple[str, ...]
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]


def _h(hours: float) -> int:
    return round(hours * HOUR_S)


# fmt: off
TENANTS: tuple[_TenantProfile, ...] = (
    _TenantProfile(
        name="acme",
        share=0.45,
        spanish=True,
        channels=(("chat", 0.5), ("whatsapp", 0.25), ("email", 0.25)),
        bot_channels=("chat", "whatsapp"),
        bot_share=0.6,
        outbound_share=0.04,
        teams=(
            _TeamProfile("acme-support", ("orders", "returns", "product")),
            _TeamProfile("acme-billing", ("billing", "account")),
            _TeamProfile("acme-sales", ()),
        ),
        themes=(("orders", 0.35), ("returns", 0.17), ("product", 0.12), ("billing", 0.23),
                ("account", 0.13)),
        shifts=((((_h(8), _h(16)),), 0.8), (((_h(12), _h(20)),), 0.45),
                (((_h(10), _h(14)), (_h(16), _h(20))), 0.3)),
        seven_days=False,
        currencies=(("EUR", 0.88), ("GBP", 0.12)),
        basket=45.0,
        campaigns=("rebajas-invierno", "renovacion-premium"),
        first_names=("Lucía", "Hugo", "Martina", "Mateo", "Carmen", "Pablo", "Núria", "Jordi",
                     "Sofía", "Álvaro", "Elena", "Iker"),
        last_names=("García", "Martínez", "López", "Sánchez", "Pérez", "Puig", "Fernández",
                    "Ruiz", "Etxeberria", "Castro"),
    ),
    _TenantProfile(
        name="globex",
        share=0.35,
        spanish=False,
        channels=(("chat", 0.4), ("sms", 0.25), ("email", 0.35)),
        bot_channels=("chat",),
        bot_share=0.5,
        outbound_share=0.06,
        teams=(
            _TeamProfile("globex-care", ("orders", "account", "product")),
            _TeamProfile("globex-billing", ("billing", "returns")),
            _TeamProfile("globex-sales", ()),
        ),
        themes=(("orders", 0.15), ("account", 0.3), ("product", 0.15), ("billing", 0.3),
                ("returns", 0.1)),
        shifts=((((_h(9), _h(17)),), 0.75), (((_h(10), _h(18)),), 0.5)),
        seven_days=False,
        currencies=(("USD", 0.9), ("CAD", 0.1)),
        basket=80.0,
        campaigns=("fiber-upgrade", "win-back-q4"),
        first_names=("James", "Mary", "Robert", "Patricia", "Aisha", "Wei", "Carlos", "Emily",
                     "Dmitri", "Grace", "Tyrone", "Priya"),
        last_names=("Smith", "Johnson", "Williams", "Brown", "Nguyen", "Garcia", "Miller",
                    "Davis", "Okafor", "Kim"),
    ),
    _TenantProfile(
        name="initech",
        share=0.2,
        spanish=False,
        channels=(("chat", 0.5), ("messenger", 0.2), ("email", 0.3)),
        bot_channels=("chat", "messenger"),
        bot_share=0.7,
        outbound_share=0.03,
        teams=(
            _TeamProfile("initech-support", ("orders", "account", "product", "returns")),
            _TeamProfile("initech-billing", ("billing",)),
            _TeamProfile("initech-sales", ()),
        ),
        themes=(("account", 0.35), ("product", 0.35), ("billing", 0.2), ("orders", 0.05),
                ("returns", 0.05)),
        shifts=((((0, _h(8)),), 0.25), (((_h(8), _h(16)),), 1.0),
                (((_h(16), _h(24)),), 0.6)),
        seven_days=True,
        currencies=(("SGD", 0.6), ("USD", 0.4)),
        basket=120.0,
        campaigns=("annual-plan", "seats-upsell"),
        first_names=("Wei Ling", "Arjun", "Siti", "Kenji", "Mei", "Ravi", "Nur", "Daniel",
                     "Hui Min", "Farah"),
        last_names=("Tan", "Lim", "Lee", "Ng", "Kumar", "Wong", "Rahman", "Chua", "Goh"),
    ),
)
# fmt: on

CONTACT_TYPES: tuple[tuple[str, float], ...] = (
    ("question", 0.62),
    ("complaint", 0.18),
    ("purchase", 0.2),
)
BOT_OUTCOMES: tuple[tuple[str, float], ...] = (
    ("resolve", 0.28),
    ("abandon", 0.1),
    ("handoff", 0.62),
)
TRANSFER_RATE = 0.07  # of conversations, once, to another team
RE_RATE = 0.03  # of CSAT ratings, changed by the customer minutes later
NPS_RATE = 0.12  # of closed conversations answer the NPS survey
CES_RATE = 0.1  # of resolves also get a CES question

_TAGS: dict[str, tuple[str, ...]] = {
    "orders": ("delivery-delay", "tracking", "wrong-item", "address-change"),
    "returns": ("return-label", "exchange", "refund-request"),
    "product": ("sizing", "availability", "compatibility"),
    "billing": ("double-charge", "invoice", "refund", "payment-failed"),
    "account": ("password-reset", "login", "gdpr-request", "plan-change"),
}
# fmt: off
_OPENINGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # theme: (English, Spanish)
    "orders": (
        ("Hi, where is my order #{n}?", "My parcel still hasn't arrived", "Can I change the "
         "delivery address of #{n}?"),
        ("Hola, ¿dónde está mi pedido #{n}?", "Mi paquete todavía no ha llegado",
         "¿Puedo cambiar la dirección de entrega del pedido #{n}?"),
    ),
    "returns": (
        ("I'd like to return an item from #{n}", "How do I get a return label?"),
        ("Quiero devolver un artículo del pedido #{n}", "¿Cómo consigo la etiqueta de devolución?"),
    ),
    "product": (
        ("Is this available in size M?", "Does the premium plan include support?"),
        ("¿Tenéis esta chaqueta en la talla M?", "¿El plan premium incluye soporte?"),
    ),
    "billing": (
        ("I was charged twice this month", "Can you send me invoice #{n}?",
         "My refund hasn't arrived yet"),
        ("Me habéis cobrado dos veces este mes", "¿Me podéis enviar la factura #{n}?",
         "Todavía no me ha llegado el reembolso"),
    ),
    "account": (
        ("I can't log in to my account", "The password reset email never arrives"),
        ("No puedo entrar en mi cuenta", "No me llega el correo para cambiar la contraseña"),
    ),
}
_CUSTOMER_LINES = (
    ("ok, one moment", "Yes, that's right", "It's order #{n}", "Still nothing on my side",
     "Could you check again please?", "Why does it take so long?"),
    ("vale, un momento", "Sí, eso es", "Es el pedido #{n}", "Sigo sin verlo",
     "¿Lo podéis revisar otra vez?", "¿Por qué tarda tanto?"),
)
_THANKS = (
    ("thanks!", "Great, thank you", "perfect 🙂"),
    ("¡gracias!", "Genial, gracias", "perfecto 🙂"),
)
_AGENT_FIRST = (
    ("Hi! I'm checking that for you now.", "Hello, thanks for reaching out. Let me look "
     "into it.", "Hi, sorry for the wait! Looking at your account now."),
    ("¡Hola! Lo reviso ahora mismo.", "Hola, gracias por escribirnos. Déjame comprobarlo.",
     "¡Hola! Perdona la espera, ya estoy mirando tu cuenta."),
)
_AGENT_LINES = (
    ("Thanks for waiting.", "Could you confirm your order number?", "I can see it now, one "
     "moment please.", "I've escalated it to the warehouse."),
    ("Gracias por esperar.", "¿Me confirmas el número de pedido?", "Ya lo veo, un momento "
     "por favor.", "Lo he escalado al almacén."),
)
_AGENT_CLOSING = (
    ("Done, you'll get an email in a few minutes. Anything else?", "All sorted! Is there "
     "anything else I can help with?"),
    ("Hecho, te llegará un correo en unos minutos. ¿Algo más?", "¡Solucionado! ¿Puedo "
     "ayudarte en algo más?"),
)
_BOT_LINES = (
    ("Hi! I'm the virtual assistant. How can I help?", "Here is what I found: {url}",
     "Did that answer your question?"),
    ("¡Hola! Soy el asistente virtual. ¿En qué te ayudo?", "Esto es lo que he encontrado: {url}",
     "¿Te ha servido la respuesta?"),
)
_BOT_CLOSED = (
    ("We're closed right now; an agent will answer as soon as we open.",),
    ("Ahora estamos cerrados; un agente te responderá en cuanto abramos.",),
)
_BOT_HANDOFF = (("Let me connect you with an agent.",), ("Te paso con un agente.",))
# fmt: on


def average_demand(weekday: int = 0) -> float:
    """Mean share of `rate_per_s` over one UTC day when it is `weekday` (0 = Monday) everywhere.

    Ignores holidays and the few hours of the neighbouring days that another
    time zone's local day brings; it documents what `rate_per_s` yields.
    """
    return (
        sum(tenant.share * sum(HOURLY_DEMAND) / 24 for tenant in TENANTS) * WEEKDAY_DEMAND[weekday]
    )


# --- what the simulation produces -------------------------------------------------


@dataclass(slots=True)
class Emission:
    """One event as the chat platform publishes it.

    `ts_us` is the event time, `arrival_us` when it is published (later for a
    late or duplicate copy). `body` lacks its `ts` until serialised, so the
    Kafka mode can stamp wall-clock time; a duplicate re-sends its
    `original`'s exact bytes.
    """

    ts_us: int
    arrival_us: int
    topic: str
    key: str
    body: dict[str, Any]
    original: Emission | None = None
    line: bytes = b""

    def serialise(self, ts_us: int) -> bytes:
        """The JSON line (no newline) with `ts` = `ts_us`; a duplicate gives its original's."""
        if self.original is not None:
            return self.original.line
        self.body["ts"] = _format_ts(ts_us)
        self.line = orjson.dumps(self.body)
        return self.line


@dataclass(slots=True)
class SimulationCounts:
    """What a run wrote or published: lines per topic (duplicates and late ones included).

    Counted as each line is handed over (`add`), so a cancelled run's counts
    are exactly what reached the file or the producer.
    """

    events: int = 0  # lines for chat.events
    status: int = 0  # lines for chat.agent-status
    conversations: int = 0  # conversation.started among them (not counting duplicates)
    duplicates: int = 0  # repeated lines (same event_id, same bytes)
    late: int = 0  # customer messages delivered after their ts

    @property
    def total(self) -> int:
        return self.events + self.status

    def add(self, emission: Emission) -> None:
        if emission.topic == EVENTS_TOPIC:
            self.events += 1
        else:
            self.status += 1
        if emission.original is not None:
            self.duplicates += 1
        elif emission.arrival_us > emission.ts_us:
            self.late += 1
        elif emission.body["type"] == "conversation.started":
            self.conversations += 1


# --- the simulated world, at run time -----------------------------------------


class _Agent:
    __slots__ = (
        "agent_id",
        "convs",
        "days",
        "deferred",
        "emails",
        "focused",
        "index",
        "load",
        "pattern",
        "status",
        "team",
    )

    def __init__(
        self, agent_id: str, team: _Team, pattern: tuple[tuple[int, int], ...], days: frozenset[int]
    ) -> None:
        self.agent_id = agent_id
        self.team = team
        self.pattern = pattern
        self.days = days
        self.status = "offline"
        self.load = 0  # capacity units held by live conversations
        self.emails = 0
        self.convs: list[_Conversation] = []
        self.deferred: list[Callable[[], None]] = []  # email work waiting for the next login
        self.focused: _Conversation | None = None
        self.index = -1  # position in team.online, -1 when not routable


class _Team:
    __slots__ = ("agents", "email_queue", "group_id", "live_queue", "online", "team_id", "tenant")

    def __init__(self, team_id: str, tenant: _Tenant) -> None:
        self.team_id = team_id
        self.group_id = "grp-" + team_id
        self.tenant = tenant
        self.agents: list[_Agent] = []
        self.online: list[_Agent] = []  # routable agents (status online)
        self.live_queue: deque[_Conversation] = deque()
        self.email_queue: deque[_Conversation] = deque()


class _Tenant:
    __slots__ = ("available", "customers", "demand", "profile", "sales", "teams", "themes", "zone")

    def __init__(self, profile: _TenantProfile, config: Config) -> None:
        self.profile = profile
        self.zone = ZoneInfo(config.tenant(profile.name).calendar.timezone)
        self.teams = [_Team(team.team_id, self) for team in profile.teams]
        self.sales = self.teams[-1]
        self.themes = {
            theme: team
            for spec, team in zip(profile.teams, self.teams, strict=True)
            for theme in spec.themes
        }
        self.available = 0  # agents online (not away, not offline) in the tenant
        self.customers: list[tuple[str, str]] = []  # (id, name) of recent customers
        self.demand: dict[int, float] = {}  # 15-minute slot -> demand factor


class _Conversation:
    __slots__ = (
        "agent",
        "bot",
        "bot_outcome",
        "bot_steps",
        "channel",
        "cid",
        "converts",
        "customer",
        "direction",
        "epoch",
        "first_wait_s",
        "holds",
        "offline",
        "queued",
        "reopened",
        "side",
        "status",
        "team",
        "tenant",
        "theme",
        "transferred",
        "turns",
        "waiting_since",
    )

    def __init__(self, cid: str, team: _Team, channel: _Channel, theme: str) -> None:
        self.cid = cid
        self.tenant = team.tenant
        self.team = team
        self.channel = channel
        self.theme = theme
        self.direction = "inbound"
        self.customer = ""
        self.bot = False
        self.bot_outcome = "handoff"
        self.bot_steps = 0
        self.agent: _Agent | None = None
        self.holds = False  # the agent's capacity is taken by this conversation
        self.status = "open"
        self.epoch = 0  # bumped when scheduled steps become stale (transfer, resolve, close)
        self.side = ""  # who wrote last: customer / agent
        self.waiting_since: int | None = None
        self.first_wait_s: float | None = None
        self.offline = False  # the customer wrote while nobody was on duty
        self.queued = False
        self.transferred = False
        self.reopened = False
        self.converts = False
        self.turns = 0


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    """A name from (name, weight) pairs whose weights sum to about 1."""
    roll = rng.random()
    for name, weight in weighted:
        roll -= weight
        if roll < 0:
            return name
    return weighted[-1][0]


def _ms(seconds: float) -> int:
    """Seconds to whole milliseconds in microseconds: event times carry ms, as platforms send."""
    return max(0, int(seconds * 1000)) * 1000


class TrafficSimulator:
    """The simulated centres; `emissions(until_us)` runs them forward in event time.

    Deterministic for (`seed`, `start_us`, `rate_per_s`, rates, namespace).
    Events come out in arrival order; event times never go back within a
    conversation except for the injected late customer messages and duplicates.

        sim = TrafficSimulator(seed=1, start_us=start, rate_per_s=0.5)
        lines = [e.serialise(e.ts_us) for e in sim.emissions(start + 3600 * 10**6)]
    """

    def __init__(
        self,
        *,
        seed: int,
        start_us: int,
        rate_per_s: float,
        late_rate: float = DEFAULT_LATE_RATE,
        duplicate_rate: float = DEFAULT_DUPLICATE_RATE,
        namespace: str | None = None,
    ) -> None:
        if not rate_per_s > 0 or not math.isfinite(rate_per_s):
            raise ValueError(f"rate_per_s must be a positive number, got {rate_per_s!r}")
        for name, rate in (("late_rate", late_rate), ("duplicate_rate", duplicate_rate)):
            if not 0 <= rate <= 1:
                raise ValueError(f"{name} must be between 0 and 1, got {rate!r}")
        self.rng = random.Random(seed)
        self.rate_per_s = rate_per_s
        self.late_rate = late_rate
        self.duplicate_rate = duplicate_rate
        self.namespace = namespace if namespace is not None else f"s{seed}"
        self.config = parse_config(SIM_CONFIG)
        self.now = start_us // 1000 * 1000
        self._heap: list[tuple[int, int, Callable[[], None]]] = []
        self._seq = 0
        self._out: list[Emission] = []
        self._event_no = 0
        self._id_prefix = f"ev-{self.namespace}-"
        self._conversation_no = 0
        self._transaction_no = 0
        self.tenants = [_Tenant(profile, self.config) for profile in TENANTS]
        for tenant in self.tenants:
            self._hire(tenant)
            self._plan_day(tenant, self._local_date(tenant, self.now))
            self._next_arrival(tenant)

    # -- scheduler ------------------------------------------------------------

    def emissions(self, until_us: int) -> Iterator[Emission]:
        """Run until event time `until_us` (exclusive), yielding events in arrival order.

        May be called again with a later `until_us` to continue.
        """
        heap, out = self._heap, self._out
        while heap and heap[0][0] < until_us:
            self.now, _, action = heapq.heappop(heap)
            action()
            if out:
                yield from out
                out.clear()

    def _at(self, t_us: int, action: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (max(t_us, self.now), self._seq, action))

    def _after(self, seconds: float, action: Callable[[], None]) -> None:
        self._at(self.now + _ms(seconds), action)

    def _lognormal(self, median_sigma: tuple[float, float], factor: float = 1.0) -> float:
        median, sigma = median_sigma
        return self.rng.lognormvariate(math.log(median * factor), sigma)

    # -- publishing -----------------------------------------------------------

    def _publish(self, topic: str, key: str, body: dict[str, Any], may_be_late: bool) -> None:
        rng = self.rng
        emission = Emission(self.now, self.now, topic, key, body)
        if may_be_late and rng.random() < self.late_rate:
            emission.arrival_us = self.now + _ms(rng.uniform(1, 20))
            self._at(emission.arrival_us, lambda: self._out.append(emission))
        else:
            self._out.append(emission)
        if rng.random() < self.duplicate_rate:
            copy = Emission(
                emission.ts_us,
                emission.arrival_us + _ms(rng.expovariate(0.5)),
                topic,
                key,
                body,
                original=emission,
            )
            self._at(copy.arrival_us, lambda: self._out.append(copy))

    def _event_id(self) -> str:
        self._event_no += 1
        return f"{self._id_prefix}{self._event_no:09d}"

    def _event(
        self, conv: _Conversation, event_type: str, may_be_late: bool = False, **fields: Any
    ) -> None:
        body: dict[str, Any] = {
            "event_id": self._event_id(),
            "type": event_type,
            "ts": None,
            "tenant": conv.tenant.profile.name,
            "conversation_id": conv.cid,
        }
        body.update(fields)
        self._publish(EVENTS_TOPIC, conv.cid, body, may_be_late)

    def _status(self, agent: _Agent, status: str) -> None:
        body = {
            "event_id": self._event_id(),
            "type": "agent.status",
            "ts": None,
            "tenant": agent.team.tenant.profile.name,
            "agent_id": agent.agent_id,
            "status": status,
            "team_id": agent.team.team_id,
        }
        self._publish(AGENT_STATUS_TOPIC, agent.agent_id, body, False)

    def _text(self, conv: _Conversation, lines: tuple[tuple[str, ...], tuple[str, ...]]) -> str:
        options = lines[1] if conv.tenant.profile.spanish else lines[0]
        text = self.rng.choice(options)
        if "{" in text:
            text = text.format(
                n=self.rng.randint(100_000, 999_999),
                url="https://help.example/a/" + str(self.rng.randint(100, 999)),
            )
        return text

    # -- demand and arrivals --------------------------------------------------

    def _local_date(self, tenant: _Tenant, ts_us: int) -> dt.date:
        return dt.datetime.fromtimestamp(ts_us // US, tenant.zone).date()

    def _demand(self, tenant: _Tenant, ts_us: int) -> float:
        """`HOURLY_DEMAND` x the day's factor at `ts_us`, cached per 15-minute slot."""
        slot = ts_us // (900 * US)
        factor = tenant.demand.get(slot)
        if factor is None:
            local = dt.datetime.fromtimestamp(slot * 900, tenant.zone)
            calendar = self.config.tenant(tenant.profile.name).calendar
            day = WEEKDAY_DEMAND[local.weekday()]
            if calendar.has_hours and not calendar.day_intervals(local.date()):
                day = min(day, CLOSED_DAY_DEMAND)
            factor = tenant.demand[slot] = HOURLY_DEMAND[local.hour] * day
        return factor

    def _next_arrival(self, tenant: _Tenant) -> None:
        """Poisson arrivals at the peak rate, thinned by the demand curve (Lewis-Shedler)."""
        rate = self.rate_per_s * tenant.profile.share

        def arrive() -> None:
            if self.rng.random() < self._demand(tenant, self.now):
                self._start(tenant)
            self._next_arrival(tenant)

        self._after(self.rng.expovariate(rate), arrive)

    def _customer_of(self, tenant: _Tenant) -> tuple[str, str]:
        """A returning customer a quarter of the time, else a new one."""
        rng, pool = self.rng, tenant.customers
        if pool and rng.random() < 0.25:
            return rng.choice(pool)
        profile = tenant.profile
        number = self._conversation_no
        customer = (
            f"cu-{profile.name}-{self.namespace}-{number:07d}",
            f"{rng.choice(profile.first_names)} {rng.choice(profile.last_names)}",
        )
        if len(pool) < 20_000:
            pool.append(customer)
        else:
            pool[rng.randrange(len(pool))] = customer
        return customer

    # -- conversations: start and bot -----------------------------------------

    def _start(self, tenant: _Tenant) -> None:
        rng, profile = self.rng, tenant.profile
        channel = CHANNELS[_pick(rng, profile.channels)]
        theme = _pick(rng, profile.themes)
        contact_type = _pick(rng, CONTACT_TYPES)
        outbound = channel.units > 0 and rng.random() < profile.outbound_share
        purchase = outbound or contact_type == "purchase"
        team = tenant.sales if purchase else tenant.themes[theme]
        agent = self._pick_agent(team, channel) if outbound else None
        outbound = agent is not None
        self._conversation_no += 1
        conv = _Conversation(
            f"{profile.name}-{self.namespace}-{self._conversation_no:07d}", team, channel, theme
        )
        conv.direction = "outbound" if outbound else "inbound"
        conv.converts = rng.random() < (0.22 if outbound else 0.35 if purchase else 0.03)
        conv.turns = int(rng.expovariate(1 / channel.turns))
        conv.bot = (
            not outbound
            and channel.name in profile.bot_channels
            and rng.random() < profile.bot_share
        )
        self._started(conv, contact_type, outbound)
        if agent is not None:
            conv.side = "customer"  # the agent writes first: treat as an owed message
            self._assign(conv, agent, "routing")
            return
        if conv.bot:
            conv.bot_outcome = _pick(rng, BOT_OUTCOMES)
            conv.bot_steps = rng.randint(1, 3)
        epoch = conv.epoch
        self._after(rng.uniform(0.5, 8), lambda: self._customer_turn(conv, epoch, opening=True))

    def _started(self, conv: _Conversation, contact_type: str, outbound: bool) -> None:
        rng, profile = self.rng, conv.tenant.profile
        customer_id, name = self._customer_of(conv.tenant)
        conv.customer = customer_id
        fields: dict[str, Any] = {
            "channel": conv.channel.name,
            "direction": conv.direction,
            "customer_id": customer_id,
        }
        if rng.random() < 0.85:
            fields["customer_name"] = name
        fields["contact_type"] = contact_type
        fields["skill"] = conv.team.team_id.split("-", 1)[1]
        fields["theme"] = conv.theme
        if outbound or rng.random() < 0.04:
            fields["campaign"] = rng.choice(profile.campaigns)
        if conv.bot:
            fields["handled_by"] = "bot"
        self._event(conv, "conversation.started", **fields)

    def _customer_turn(self, conv: _Conversation, epoch: int, opening: bool = False) -> None:
        """The customer writes (sometimes a burst); the bot, routing or the agent reacts."""
        if conv.epoch != epoch or conv.status != "open":
            return
        rng = self.rng
        self._customer_message(conv, _OPENINGS[conv.theme] if opening else _CUSTOMER_LINES)
        if conv.channel.units and rng.random() < 0.25:
            for _ in range(rng.randint(1, 2)):
                self._after(rng.uniform(3, 15), lambda: self._customer_extra(conv, epoch))
        if conv.bot:
            self._after(rng.uniform(1, 4), lambda: self._bot_reply(conv, epoch))
        elif conv.agent is None:
            if not conv.queued:
                self._route(conv, "routing")
        elif not conv.holds and conv.agent.status == "offline" and conv.channel.units:
            self._route(conv, "routing")  # the owner's shift is over: someone else takes it
        else:
            self._hold(conv, conv.agent)
            self._schedule_reply(conv, first=False)

    def _customer_extra(self, conv: _Conversation, epoch: int) -> None:
        if conv.epoch == epoch and conv.status == "open":
            self._customer_message(conv, _CUSTOMER_LINES)

    def _customer_message(
        self, conv: _Conversation, lines: tuple[tuple[str, ...], tuple[str, ...]]
    ) -> None:
        fields: dict[str, Any] = {"sender": "customer", "text": self._text(conv, lines)}
        if conv.tenant.available == 0:
            fields["mode"] = "offline"
            if conv.side == "":
                conv.offline = True
        self._event(conv, "message.sent", may_be_late=True, **fields)
        conv.side = "customer"
        if conv.bot or conv.waiting_since is not None or conv.first_wait_s is not None:
            return
        if conv.direction == "outbound":
            return
        self._start_waiting(conv)

    def _start_waiting(self, conv: _Conversation) -> None:
        """Waiting for a first human answer; a chat customer who sees a queue may give up."""
        conv.waiting_since = self.now
        patience = conv.channel.patience
        if patience is None or conv.tenant.available == 0:
            return

        def give_up() -> None:
            if conv.status == "open" and conv.first_wait_s is None:
                self._close(conv, conv.epoch)

        self._after(self._lognormal(patience), give_up)

    def _bot_reply(self, conv: _Conversation, epoch: int) -> None:
        if conv.epoch != epoch or conv.status != "open" or not conv.bot:
            return
        rng = self.rng
        if conv.tenant.available == 0 and conv.bot_outcome != "resolve":
            self._event(conv, "message.sent", sender="bot", text=self._text(conv, _BOT_CLOSED))
            self._after(rng.uniform(1, 3), lambda: self._handoff(conv, epoch))
            return
        conv.bot_steps -= 1
        if conv.bot_steps > 0:
            self._event(conv, "message.sent", sender="bot", text=self._text(conv, _BOT_LINES))
            self._after(rng.uniform(5, 40), lambda: self._customer_turn(conv, epoch))
        elif conv.bot_outcome == "resolve":
            self._event(conv, "message.sent", sender="bot", text=self._text(conv, _BOT_LINES))
            self._after(rng.uniform(20, 180), lambda: self._bot_resolve(conv, epoch))
        elif conv.bot_outcome == "abandon":
            self._event(conv, "message.sent", sender="bot", text=self._text(conv, _BOT_LINES))
            self._after(rng.uniform(600, 1800), lambda: self._close(conv, epoch))
        else:
            self._event(conv, "message.sent", sender="bot", text=self._text(conv, _BOT_HANDOFF))
            self._after(rng.uniform(1, 5), lambda: self._handoff(conv, epoch))

    def _bot_resolve(self, conv: _Conversation, epoch: int) -> None:
        if conv.epoch != epoch or conv.status != "open":
            return
        if self.rng.random() < 0.5:
            self._customer_message(conv, _THANKS)
        self._event(conv, "conversation.tagged", tag="self-service")
        self._resolved(conv, None)

    def _handoff(self, conv: _Conversation, epoch: int) -> None:
        """Bot to human: straight to a free agent, else to the team's group queue."""
        if conv.epoch != epoch or conv.status != "open":
            return
        conv.bot = False
        conv.side = "customer"
        self._start_waiting(conv)
        self._route(conv, "bot")

    # -- routing --------------------------------------------------------------

    def _pick_agent(self, team: _Team, channel: _Channel) -> _Agent | None:
        """The least loaded of a few online agents with room (all of them in a small team)."""
        online = team.online
        count = len(online)
        if count == 0:
            return None
        candidates = online if count <= 6 else [online[self.rng.randrange(count)] for _ in range(6)]
        best: _Agent | None = None
        if channel.units == 0:
            for agent in candidates:
                if agent.emails < EMAIL_CAPACITY and (best is None or agent.emails < best.emails):
                    best = agent
            return best
        room = CAPACITY_UNITS - channel.units
        for agent in candidates:
            if agent.load <= room and (best is None or agent.load < best.load):
                best = agent
        return best

    def _route(self, conv: _Conversation, via: str) -> None:
        agent = self._pick_agent(conv.team, conv.channel)
        if agent is not None:
            self._assign(conv, agent, via)
            return
        self._event(
            conv,
            "conversation.assigned",
            group_id=conv.team.group_id,
            via=via,
            team_id=conv.team.team_id,
        )
        conv.agent = None
        conv.queued = True
        queue = conv.team.email_queue if conv.channel.units == 0 else conv.team.live_queue
        queue.append(conv)

    def _dispatch(self, team: _Team) -> None:
        """Give queued conversations (oldest first) to agents with room."""
        for queue in (team.live_queue, team.email_queue):
            while queue:
                conv = queue[0]
                if conv.status == "closed" or not conv.queued or conv.team is not team:
                    queue.popleft()
                    continue
                agent = self._pick_agent(team, conv.channel)
                if agent is None:
                    break
                queue.popleft()
                self._assign(conv, agent, "routing")

    def _assign(self, conv: _Conversation, agent: _Agent, via: str) -> None:
        conv.queued = False
        self._event(
            conv,
            "conversation.assigned",
            agent_id=agent.agent_id,
            via=via,
            team_id=conv.team.team_id,
        )
        self._hold(conv, agent)
        conv.epoch += 1
        epoch = conv.epoch
        self._after(self.rng.uniform(1, 6), lambda: self._focus(agent, conv, epoch))
        self._schedule_reply(conv, first=True)

    def _hold(self, conv: _Conversation, agent: _Agent) -> None:
        conv.agent = agent
        if conv.holds:
            return
        conv.holds = True
        agent.convs.append(conv)
        if conv.channel.units:
            agent.load += conv.channel.units
        else:
            agent.emails += 1

    def _release(self, conv: _Conversation) -> None:
        agent = conv.agent
        if agent is None or not conv.holds:
            return
        conv.holds = False
        agent.convs.remove(conv)
        if conv.channel.units:
            agent.load -= conv.channel.units
        else:
            agent.emails -= 1
        if agent.focused is conv:
            self._unfocus(agent)
        self._dispatch(agent.team)

    # -- focus ----------------------------------------------------------------

    def _focus(self, agent: _Agent, conv: _Conversation, epoch: int) -> None:
        """The agent's window moves to `conv` (one focused conversation per agent)."""
        if conv.epoch != epoch or conv.status == "closed" or conv.agent is not agent:
            return
        if agent.status == "offline" or agent.focused is conv:
            return
        if agent.focused is not None:
            self._unfocus(agent)
        self._event(conv, "agent.focus.started", agent_id=agent.agent_id)
        agent.focused = conv

    def _unfocus(self, agent: _Agent) -> None:
        conv = agent.focused
        if conv is not None:
            agent.focused = None
            self._event(conv, "agent.focus.ended", agent_id=agent.agent_id)

    # -- the human part of a conversation -------------------------------------

    def _schedule_reply(self, conv: _Conversation, first: bool) -> None:
        """The agent answers after a lognormal delay that grows with the agent's load."""
        agent = conv.agent
        assert agent is not None
        channel = conv.channel
        busy = agent.load / CAPACITY_UNITS
        delay = self._lognormal(channel.first_reply if first else channel.reply, 1 + 0.6 * busy**2)
        epoch = conv.epoch
        self._after(delay, lambda: self._agent_reply(conv, epoch))
        typing = min(delay, self.rng.uniform(3, 40))
        self._after(delay - typing, lambda: self._focus(agent, conv, epoch))

    def _agent_reply(self, conv: _Conversation, epoch: int) -> None:
        if conv.epoch != epoch or conv.status == "closed":
            return
        agent = conv.agent
        assert agent is not None
        if agent.status == "offline":
            agent.deferred.append(lambda: self._agent_reply(conv, epoch))
            return
        rng = self.rng
        self._focus(agent, conv, epoch)
        if conv.first_wait_s is None:
            self._agent_message(conv, agent, _AGENT_FIRST)
        else:
            self._agent_message(conv, agent, _AGENT_CLOSING if conv.turns == 0 else _AGENT_LINES)
        if rng.random() < 0.2:
            self._after(rng.uniform(3, 20), lambda: self._agent_extra(conv, epoch))
        if not conv.transferred and rng.random() < TRANSFER_RATE:
            self._after(rng.uniform(10, 60), lambda: self._transfer(conv, epoch))
        elif conv.turns > 0:
            conv.turns -= 1
            delay = self._customer_delay(conv)
            if delay > PENDING_AFTER_S:
                self._release(conv)  # pending on the customer: the agent takes other work
            self._after(delay, lambda: self._customer_turn(conv, epoch))
        else:
            self._conclude(conv, epoch)
        if agent.focused is conv and rng.random() < 0.4:
            self._after(rng.uniform(2, 25), lambda: self._leave_focus(agent, conv))

    def _agent_extra(self, conv: _Conversation, epoch: int) -> None:
        agent = conv.agent
        if conv.epoch == epoch and conv.status == "open" and agent and agent.status != "offline":
            self._agent_message(conv, agent)

    def _leave_focus(self, agent: _Agent, conv: _Conversation) -> None:
        if agent.focused is conv:
            self._unfocus(agent)

    def _agent_message(
        self,
        conv: _Conversation,
        agent: _Agent,
        lines: tuple[tuple[str, ...], tuple[str, ...]] = _AGENT_LINES,
    ) -> None:
        self._event(
            conv,
            "message.sent",
            sender="agent",
            agent_id=agent.agent_id,
            text=self._text(conv, lines),
        )
        conv.side = "agent"
        if conv.first_wait_s is None:
            since = conv.waiting_since
            conv.first_wait_s = 0.0 if since is None else (self.now - since) / US
            self._first_answer(conv)

    def _first_answer(self, conv: _Conversation) -> None:
        """Tags and sales follow the first answer."""
        rng = self.rng
        if rng.random() < 0.7:
            tags = [rng.choice(_TAGS[conv.theme])]
            if rng.random() < 0.15:
                tags.append("vip")
            for tag in tags:
                self._after(rng.uniform(5, 180), partial(self._tag, conv, tag))
        if conv.converts:
            for _ in range(2 if rng.random() < 0.06 else 1):
                self._after(rng.uniform(60, 2400), lambda: self._transaction(conv))

    def _tag(self, conv: _Conversation, tag: str) -> None:
        if conv.status != "closed":
            self._event(conv, "conversation.tagged", tag=tag)

    def _transaction(self, conv: _Conversation) -> None:
        rng, profile = self.rng, conv.tenant.profile
        amount = round(rng.lognormvariate(math.log(profile.basket), 0.8), 2)
        self._event(
            conv,
            "conversation.transaction",
            transaction_id=f"tx-{self.namespace}-{self._next_transaction()}",
            amount=max(amount, 1.0),
            currency=_pick(rng, profile.currencies),
        )

    def _next_transaction(self) -> int:
        self._transaction_no += 1
        return self._transaction_no

    def _customer_delay(self, conv: _Conversation) -> float:
        """How long the customer takes to answer; sometimes a long pause (a new session)."""
        rng = self.rng
        if conv.offline:
            return rng.lognormvariate(math.log(1800), 1.2)
        if rng.random() < conv.channel.idle:
            return rng.lognormvariate(math.log(3000), 0.6)
        return self._lognormal(conv.channel.customer)

    def _conclude(self, conv: _Conversation, epoch: int) -> None:
        """The exchange is over: the customer may thank, then the agent resolves."""
        rng = self.rng
        wrap = rng.uniform(*conv.channel.wrap_up)
        if conv.offline and rng.random() < 0.4:
            self._after(rng.uniform(300, 1200), lambda: self._resolve(conv, epoch))
        elif conv.channel.units and rng.random() < 0.45:
            thanks_at = self._lognormal(conv.channel.customer, 0.5)

            def thanks() -> None:
                if conv.epoch == epoch and conv.status == "open":
                    self._customer_message(conv, _THANKS)
                    self._after(rng.uniform(5, 60), lambda: self._resolve(conv, epoch))

            self._after(thanks_at, thanks)
        else:
            self._after(wrap, lambda: self._resolve(conv, epoch))

    def _resolve(self, conv: _Conversation, epoch: int) -> None:
        if conv.epoch != epoch or conv.status != "open":
            return
        agent = conv.agent
        if agent is not None and agent.status == "offline":
            agent.deferred.append(lambda: self._resolve(conv, epoch))
            return
        self._resolved(conv, agent)

    def _resolved(self, conv: _Conversation, agent: _Agent | None) -> None:
        """Resolve, free the agent, then survey and auto-close (or the customer reopens)."""
        if agent is not None and agent.focused is conv:
            self._unfocus(agent)
        fields: dict[str, Any] = {} if agent is None else {"agent_id": agent.agent_id}
        self._event(conv, "conversation.resolved", **fields)
        conv.status = "resolved"
        conv.epoch += 1
        epoch = conv.epoch
        self._release(conv)
        rng, channel = self.rng, conv.channel
        if rng.random() < (channel.csat if agent is not None else 0.2):
            self._after(
                rng.lognormvariate(math.log(90 if channel.units else 7200), 1.0),
                lambda: self._rate(conv, "csat"),
            )
        if rng.random() < CES_RATE:
            self._after(rng.uniform(30, 600), lambda: self._rate(conv, "ces"))
        close_after = rng.uniform(*channel.close_after)
        if rng.random() < channel.reopen:
            self._after(rng.uniform(60, close_after * 0.8), lambda: self._reopen(conv, epoch))
        else:
            self._after(close_after, lambda: self._close(conv, epoch))

    def _reopen(self, conv: _Conversation, epoch: int) -> None:
        """The customer comes back before the auto-close: the owner, or routing, picks it up."""
        if conv.epoch != epoch or conv.status != "resolved":
            return
        self._event(conv, "conversation.reopened")
        conv.status = "open"
        conv.reopened = True
        conv.epoch += 1
        conv.turns = self.rng.randint(0, 1)
        conv.bot = False
        agent = conv.agent
        self._customer_message(conv, _CUSTOMER_LINES)
        if agent is not None and agent.status == "online":
            self._hold(conv, agent)
            self._schedule_reply(conv, first=False)
        else:
            self._route(conv, "routing")

    def _close(self, conv: _Conversation, epoch: int) -> None:
        if conv.epoch != epoch or conv.status == "closed":
            return
        agent = conv.agent
        if agent is not None and agent.focused is conv:
            agent.focused = None  # closing ends the window (SPEC §1), no event needed
        self._event(conv, "conversation.closed")
        conv.status = "closed"
        conv.epoch += 1
        conv.queued = False
        self._release(conv)
        if conv.first_wait_s is not None and self.rng.random() < NPS_RATE:
            self._after(self.rng.uniform(3600, 36 * 3600), lambda: self._rate(conv, "nps"))

    # -- ratings ----------------------------------------------------------------

    def _experience(self, conv: _Conversation) -> float:
        """0 (great) .. 1 (awful): long first waits, transfers and reopens hurt."""
        target = 60.0 if conv.channel.units else 4 * 3600.0
        wait = conv.first_wait_s or 0.0
        badness = min(1.0, wait / (5 * target)) * 0.6
        badness += 0.2 if conv.transferred else 0.0
        badness += 0.3 if conv.reopened else 0.0
        return min(1.0, badness + 0.05)

    def _rate(self, conv: _Conversation, survey: str) -> None:
        rng = self.rng
        bad = rng.random() < self._experience(conv)
        score = _score(rng, survey, bad)
        self._event(conv, "conversation.rated", survey=survey, score=score)
        if survey == "csat" and rng.random() < RE_RATE:
            changed = min(5, max(1, score + rng.choice((-1, 1))))
            self._after(
                rng.uniform(30, 600),
                lambda: self._event(conv, "conversation.rated", survey="csat", score=changed),
            )

    # -- transfers and hand-overs ----------------------------------------------

    def _transfer(self, conv: _Conversation, epoch: int) -> None:
        """Wrong team: the agent sends the conversation to another team (agent or group)."""
        if conv.epoch != epoch or conv.status != "open":
            return
        others = [team for team in conv.tenant.teams if team is not conv.team]
        target = self.rng.choice(others)
        self._event(conv, "message.sent", sender="system", text=f"Transferred to {target.team_id}")
        conv.transferred = True
        self._move(conv, target)

    def _move(self, conv: _Conversation, team: _Team) -> None:
        self._release(conv)
        conv.team = team
        conv.epoch += 1
        conv.side = "customer"  # the new owner introduces themself
        agent = self._pick_agent(team, conv.channel)
        if agent is not None:
            self._assign(conv, agent, "transfer")
            return
        self._event(
            conv,
            "conversation.assigned",
            group_id=team.group_id,
            via="transfer",
            team_id=team.team_id,
        )
        conv.agent = None
        conv.queued = True
        (team.email_queue if conv.channel.units == 0 else team.live_queue).append(conv)

    def _hand_over(self, agent: _Agent) -> None:
        """End of shift: chats waiting on the customer are resolved, the others transferred."""
        for conv in list(agent.convs):
            if conv.channel.units == 0 or conv.status != "open":
                continue
            if conv.side == "agent":
                self._resolved(conv, agent)
            else:
                self._move(conv, conv.team)

    # -- agents: hiring, shifts, presence --------------------------------------

    def _hire(self, tenant: _Tenant) -> None:
        """Staff each team and shift pattern for about 75 % occupancy at the peak hour.

        A team's share of the work follows routing: purchases go to sales, the
        rest by theme. 75 % leaves room for breaks and the randomness of arrivals.
        """
        profile = tenant.profile
        units_per_s = (
            self.rate_per_s
            * profile.share
            * sum(
                weight * CHANNELS[name].units * CHANNELS[name].hold_s
                for name, weight in profile.channels
            )
        )
        peak = units_per_s / CAPACITY_UNITS / 0.75 * (7 / 5 if profile.seven_days else 1)
        purchases = dict(CONTACT_TYPES)["purchase"]
        themes = dict(profile.themes)
        number = 0
        for team_spec, team in zip(profile.teams, tenant.teams, strict=True):
            share = (1 - purchases) * sum(themes[theme] for theme in team_spec.themes)
            if team is tenant.sales:
                share = purchases + profile.outbound_share
            for pattern, weight in profile.shifts:
                for _ in range(max(1, math.ceil(peak * weight * share))):
                    number += 1
                    agent_id = f"ag-{profile.name}-{number:04d}"
                    days = self._workdays(profile, number)
                    team.agents.append(_Agent(agent_id, team, pattern, days))

    def _workdays(self, profile: _TenantProfile, number: int) -> frozenset[int]:
        """Five days a week: a rota of two days off (7-day tenants), else Monday-Friday."""
        rng = self.rng
        if profile.seven_days:
            first_off = number % 7
            return frozenset(range(7)) - {first_off, (first_off + 1) % 7}
        if rng.random() < 0.35:  # the Saturday crew takes a midweek day off
            return frozenset((0, 1, 2, 3, 4, 5)) - {rng.choice((1, 2, 3))}
        return frozenset((0, 1, 2, 3, 4))

    def _shift(self, tenant: _Tenant, agent: _Agent, day: dt.date) -> list[tuple[int, int]]:
        """The agent's working intervals on a local date: its pattern cut to the open hours."""
        if day.weekday() not in agent.days:
            return []
        open_intervals = self.config.tenant(tenant.profile.name).calendar.day_intervals(day)
        midnight = dt.datetime(day.year, day.month, day.day, tzinfo=tenant.zone)
        pieces: list[tuple[int, int]] = []
        for span_start, span_end in agent.pattern:
            start = _local_us(midnight, span_start)
            end = _local_us(midnight, span_end)
            for open_start, open_end in open_intervals:
                piece = (max(start, open_start), min(end, open_end))
                if piece[1] - piece[0] >= 1800 * US:
                    pieces.append(piece)
        return pieces

    def _plan_day(self, tenant: _Tenant, day: dt.date) -> None:
        """Schedule the agents' logins, breaks and logouts of `day`; plan the next day at 23:00."""
        for team in tenant.teams:
            for agent in team.agents:
                for start, end in self._shift(tenant, agent, day):
                    self._plan_shift(agent, start, end)
        following = day + dt.timedelta(days=1)
        next_midnight = _local_us(
            dt.datetime(following.year, following.month, following.day, tzinfo=tenant.zone), 0
        )
        self._at(next_midnight - HOUR_S * US, lambda: self._plan_day(tenant, following))

    def _plan_shift(self, agent: _Agent, start: int, end: int) -> None:
        rng = self.rng
        login = start - _ms(rng.uniform(0, 240))
        if rng.random() < 0.1:
            login = start + _ms(rng.uniform(60, 600))  # late today
        logout = end + _ms(rng.uniform(0, 360))
        if logout <= self.now:
            return
        self._at(login, lambda: self._login(agent))
        length_s = (end - start) / US
        # (earliest, latest share of the shift, pause): staggered so a team never empties
        breaks = [(0.3, 0.6, rng.uniform(600, 900))] if length_s >= 3.5 * HOUR_S else []
        if length_s >= 6.5 * HOUR_S:
            breaks = [
                (0.12, 0.3, rng.uniform(600, 900)),
                (0.38, 0.62, rng.uniform(1800, 2700)),
                (0.7, 0.88, rng.uniform(600, 900)),
            ]
        for earliest, latest, pause_s in breaks:
            away_at = start + _ms(length_s * rng.uniform(earliest, latest))
            if away_at > self.now:
                self._at(away_at, lambda: self._away(agent))
                self._at(away_at + _ms(pause_s), lambda: self._back(agent))
        self._at(logout, lambda: self._logout(agent))

    def _login(self, agent: _Agent) -> None:
        if agent.status != "offline":
            return
        self._status(agent, "online")
        self._routable(agent)
        deferred, agent.deferred = agent.deferred, []
        for action in deferred:
            self._after(self.rng.uniform(30, 900), action)

    def _away(self, agent: _Agent) -> None:
        """A break: no new conversations (current ones are still answered)."""
        if agent.status != "online":
            return
        self._status(agent, "away")
        self._unroutable(agent, "away")

    def _back(self, agent: _Agent) -> None:
        if agent.status == "away":
            self._status(agent, "online")
            self._routable(agent)

    def _logout(self, agent: _Agent) -> None:
        if agent.status == "offline":
            return
        self._unroutable(agent, "offline")
        self._hand_over(agent)
        self._unfocus(agent)
        self._status(agent, "offline")

    def _routable(self, agent: _Agent) -> None:
        team = agent.team
        agent.status = "online"
        agent.index = len(team.online)
        team.online.append(agent)
        team.tenant.available += 1
        self._dispatch(team)

    def _unroutable(self, agent: _Agent, status: str) -> None:
        """Swap-remove the agent from its team's routable list."""
        team = agent.team
        if agent.status == "online":
            last = team.online.pop()
            if last is not agent:
                team.online[agent.index] = last
                last.index = agent.index
            agent.index = -1
            team.tenant.available -= 1
        agent.status = status


def _local_us(midnight: dt.datetime, second_of_day: int) -> int:
    """UTC microseconds of a local wall-clock time (second 86400 = next midnight)."""
    local = midnight + dt.timedelta(seconds=second_of_day)
    return int(local.timestamp()) * US


# Score shapes: (satisfied, unhappy) weights per score, low to high.
# fmt: off
_SCORES: dict[str, tuple[int, tuple[float, ...], tuple[float, ...]]] = {
    "csat": (1, (0.03, 0.03, 0.07, 0.25, 0.62), (0.32, 0.2, 0.2, 0.16, 0.12)),
    "ces": (1, (0.01, 0.02, 0.04, 0.08, 0.15, 0.3, 0.4), (0.15, 0.18, 0.2, 0.17, 0.13, 0.1, 0.07)),
    "nps": (0, (0.01, 0.01, 0.01, 0.02, 0.02, 0.03, 0.05, 0.1, 0.15, 0.25, 0.35),
            (0.12, 0.08, 0.1, 0.1, 0.1, 0.12, 0.12, 0.1, 0.08, 0.05, 0.03)),
}
# fmt: on


def _score(rng: random.Random, survey: str, unhappy: bool) -> int:
    """A J-shaped score (most customers rate high); an unhappy one skews low."""
    low, happy_weights, unhappy_weights = _SCORES[survey]
    weights = unhappy_weights if unhappy else happy_weights
    roll = rng.random() * sum(weights)
    for offset, weight in enumerate(weights):
        roll -= weight
        if roll < 0:
            return low + offset
    return low + len(weights) - 1


# --- serialisation ---------------------------------------------------------------

_EPOCH = dt.datetime(1970, 1, 1)
_MINUTE_TEXT: dict[int, str] = {}


def _format_ts(ts_us: int) -> str:
    """RFC 3339 UTC with milliseconds, e.g. `2026-11-02T10:00:03.250Z`; cached per minute."""
    minute, micro = divmod(ts_us, 60 * US)
    head = _MINUTE_TEXT.get(minute)
    if head is None:
        if len(_MINUTE_TEXT) >= 1 << 14:
            _MINUTE_TEXT.clear()
        head = (_EPOCH + dt.timedelta(minutes=minute)).isoformat(timespec="minutes")
        _MINUTE_TEXT[minute] = head
    second, micro = divmod(micro, US)
    return f"{head}:{second:02d}.{micro // 1000:03d}Z"


def _epoch_us(moment: dt.datetime) -> int:
    """A datetime to epoch microseconds; a naive one is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    delta = moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * US + delta.microseconds


def _check_run(duration_s: float, rate_per_s: float) -> None:
    if not duration_s > 0 or not math.isfinite(duration_s):
        raise ValueError(f"duration_s must be a positive number of seconds, got {duration_s!r}")
    if not rate_per_s > 0 or not math.isfinite(rate_per_s):
        raise ValueError(f"rate_per_s must be a positive number, got {rate_per_s!r}")


# --- the two modes ------------------------------------------------------------------


def simulate_to_file(
    path: Path | str,
    *,
    seed: int,
    duration_s: float,
    rate_per_s: float,
    start: dt.datetime,
    late_rate: float = DEFAULT_LATE_RATE,
    duplicate_rate: float = DEFAULT_DUPLICATE_RATE,
) -> SimulationCounts:
    """Write `duration_s` simulated seconds from `start` to `path` as JSONL, in arrival order.

    As fast as it can (no sleeping); the same seed, start and rates give the
    same bytes. A naive `start` is UTC. Raises ValueError for a non-positive
    duration or rate.
    """
    _check_run(duration_s, rate_per_s)
    start_us = _epoch_us(start)
    simulator = TrafficSimulator(
        seed=seed,
        start_us=start_us,
        rate_per_s=rate_per_s,
        late_rate=late_rate,
        duplicate_rate=duplicate_rate,
    )
    end_us = start_us + round(duration_s * US)
    counts = SimulationCounts()
    buffer: list[bytes] = []
    with open(path, "wb") as out:
        for emission in simulator.emissions(end_us):
            buffer.append(emission.serialise(emission.ts_us))
            counts.add(emission)
            if len(buffer) >= 4096:
                buffer.append(b"")
                out.write(b"\n".join(buffer))
                buffer.clear()
        if buffer:
            buffer.append(b"")
            out.write(b"\n".join(buffer))
    return counts


async def simulate_to_kafka(
    bootstrap: str,
    *,
    seed: int,
    duration_s: float,
    rate_per_s: float,
    speed: float = 1.0,
    on_progress: Callable[[SimulationCounts], None] | None = None,
    late_rate: float = DEFAULT_LATE_RATE,
    duplicate_rate: float = DEFAULT_DUPLICATE_RATE,
) -> SimulationCounts:
    """Publish traffic in real time for `duration_s` wall seconds, starting now.

    The simulation starts at the current UTC time and its clock runs `speed`
    times as fast as the wall clock; each event is published when its moment
    comes, with `ts` = that moment on the wall clock (so at `speed` 60 an
    agent's 30 s reply shows as 0.5 s, and `ts` always stays near now).
    Topics and keys are produce.py's: `chat.events` by conversation_id,
    `chat.agent-status` by agent_id. Ids carry the seed and the start second,
    so runs never collide on one broker.

    Stops after `duration_s`, or when cancelled (Ctrl-C): the producer is
    flushed and stopped either way, and a cancellation is re-raised.
    `on_progress` gets the running counts about once a second and at the end.
    Raises BrokerUnavailable when the broker cannot be reached.
    """
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    from livemetrics.clients import kafka_options
    from livemetrics.kafka_admin import broker_unavailable, ensure_topics

    _check_run(duration_s, rate_per_s)
    if not speed > 0 or not math.isfinite(speed):
        raise ValueError(f"speed must be a positive number, got {speed!r}")
    await ensure_topics(bootstrap)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        linger_ms=20,
        **kafka_options(),
    )
    try:
        async with asyncio.timeout(15):
            await producer.start()
    except (TimeoutError, KafkaError) as exc:
        await producer.stop()
        raise broker_unavailable(bootstrap, exc, 15) from exc
    start_us = time.time_ns() // 1000 // 1000 * 1000
    simulator = TrafficSimulator(
        seed=seed,
        start_us=start_us,
        rate_per_s=rate_per_s,
        late_rate=late_rate,
        duplicate_rate=duplicate_rate,
        namespace=f"s{seed}t{start_us // US:x}",
    )
    counts = SimulationCounts()
    try:
        await _publish_live(producer, simulator, counts, start_us, duration_s, speed, on_progress)
    finally:
        await producer.stop()  # flushes what is still buffered, also on cancellation
        if on_progress is not None:
            on_progress(counts)
    return counts


async def _publish_live(
    producer: Any,
    simulator: TrafficSimulator,
    counts: SimulationCounts,
    start_us: int,
    duration_s: float,
    speed: float,
    on_progress: Callable[[SimulationCounts], None] | None,
) -> None:
    """Sleep until each event's moment, stamp it, send it; surface failed sends at once."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    next_progress = began + 1.0
    sent: deque[asyncio.Future[Any]] = deque()
    horizon = start_us + round(duration_s * speed * US)
    unyielded = 0
    for emission in simulator.emissions(horizon):
        offset_s = (emission.arrival_us - start_us) / US / speed
        delay = began + offset_s - loop.time()
        if delay > 0.001 or unyielded >= 256:
            await asyncio.sleep(max(delay, 0))  # also lets the producer send when behind
            unyielded = 0
        unyielded += 1
        wall_ts = start_us + round((emission.ts_us - start_us) / speed) // 1000 * 1000
        value = emission.serialise(wall_ts)
        sent.append(await producer.send(emission.topic, value, key=emission.key.encode()))
        counts.add(emission)
        while sent and sent[0].done():
            sent.popleft().result()
        if on_progress is not None and loop.time() >= next_progress:
            next_progress = loop.time() + 1.0
            on_progress(counts)
    remaining = began + duration_s - loop.time()
    if remaining > 0:
        await asyncio.sleep(remaining)
    await producer.flush()
    for future in sent:
        future.result()
