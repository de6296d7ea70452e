"""The oracle against numbers worked out by hand from the SPEC, one tricky rule each.

Each case is a few events; the expected numbers are in the test, computed from
SPEC §2-§7 and docs/spec-decisions.md (the rule is cited in the docstring).
They validate the oracle, so the conformance tests can trust it, and they are
ready to become golden data. Times are 2026-11-23 (a Monday), UTC, unless
said otherwise.
"""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest

from livemetrics import metrics
from livemetrics.aggregate.query import ReportQuery
from livemetrics.config import Config, parse_config
from livemetrics.events import parse_ts
from tests.support.oracle import Observation, oracle_run

DAY = "2026-11-23"

SPEC_CONFIG = """\
[tenants.acme]
timezone = "Europe/Madrid"
holidays = ["2026-12-25"]
session_gap_seconds = 900

[tenants.acme.service_hours]
mon = ["07:00-17:00"]
tue = ["07:00-17:00"]
wed = ["07:00-17:00"]
thu = ["07:00-17:00"]
fri = ["07:00-13:00", "14:00-17:00"]
"""

SLA_CONFIG = """\
[tenants.t]
timezone = "UTC"
session_gap_seconds = 900

[[tenants.t.sla]]
kind = "first_response"
target_seconds = 60
business_hours = false

[[tenants.t.sla]]
kind = "next_response"
target_seconds = 60
business_hours = false

[[tenants.t.sla]]
kind = "resolution"
target_seconds = 3600
business_hours = false

[tenants.b]
timezone = "UTC"

[tenants.b.service_hours]
mon = ["09:00-17:00"]
tue = ["09:00-17:00"]

[[tenants.b.sla]]
kind = "first_response"
target_seconds = 3600
business_hours = true
"""

_ids = itertools.count(1)


def ts(at: str) -> str:
    """`"10:00:05"` on DAY, or a full RFC 3339 string as is."""
    return at if "T" in at else f"{DAY}T{at}Z"


def us(at: str) -> int:
    return parse_ts(ts(at))


class Conversation:
    """Writes one conversation's JSONL lines; event ids are unique across a test run."""

    def __init__(self, cid: str = "c1", tenant: str = "t") -> None:
        self.cid = cid
        self.tenant = tenant

    def __call__(self, event_type: str, at: str, **fields: Any) -> bytes:
        body = {
            "event_id": f"{self.cid}-{next(_ids)}",
            "type": event_type,
            "ts": ts(at),
            "tenant": self.tenant,
            "conversation_id": self.cid,
            **fields,
        }
        return orjson.dumps(body)

    def started(self, at: str, **fields: Any) -> bytes:
        defaults = {"channel": "chat", "direction": "inbound", "customer_id": "cu1"}
        return self("conversation.started", at, **{**defaults, **fields})

    def customer(self, at: str, **fields: Any) -> bytes:
        return self("message.sent", at, sender="customer", **fields)

    def agent(self, at: str, agent: str, **fields: Any) -> bytes:
        return self("message.sent", at, sender="agent", agent_id=agent, **fields)

    def assigned(self, at: str, via: str = "routing", **fields: Any) -> bytes:
        return self("conversation.assigned", at, via=via, **fields)


def status(at: str, tenant: str = "t") -> bytes:
    """A presence event: moves replay's "now" (D50) without touching a conversation."""
    return orjson.dumps(
        {
            "event_id": f"st-{next(_ids)}",
            "type": "agent.status",
            "ts": ts(at),
            "tenant": tenant,
            "agent_id": "ag-presence",
            "status": "online",
        }
    )


def observe(lines: list[bytes], config_text: str | None = None) -> list[Observation]:
    config = parse_config(config_text) if config_text else Config()
    return oracle_run(lines, config).observations


def values(observations: list[Observation], metric: str) -> list[float]:
    return [o.value for o in observations if o.metric == metric]


def count(observations: list[Observation], metric: str) -> int:
    return sum(1 for o in observations if o.metric == metric)


def credited(observations: list[Observation], metric: str) -> list[tuple[float, list[str], Any]]:
    """(value, agents, team) of each observation of `metric`."""
    return [(o.value, sorted(o.agents), o.team) for o in observations if o.metric == metric]


# --- handling and waiting ------------------------------------------------------


def test_waiting_starts_at_the_bot_handoff_when_the_customer_wrote_first() -> None:
    """SPEC §2 Waiting, D10/D11, [22]: a handoff to a group, then routing to an agent."""
    c = Conversation()
    obs = observe(
        [
            c.started("10:00:00", handled_by="bot"),
            c.customer("10:00:05"),
            c("message.sent", "10:00:06", sender="bot"),
            c.assigned("10:00:30", via="bot", group_id="g1", team_id="tA"),
            c.customer("10:01:00"),
            c.assigned("10:02:00", agent_id="a1"),
            c.agent("10:02:30", "a1"),
        ]
    )
    assert credited(obs, "bot_handoffs") == [(1.0, [], "tA")]
    assert credited(obs, "first_response_seconds") == [(120.0, ["a1"], None)]
    assert credited(obs, "queue_wait_seconds") == [(90.0, ["a1"], None)]
    assert values(obs, "response_seconds") == [120.0]  # max(10:00:05, handoff 10:00:30)
    assert values(obs, "agent_first_response_seconds") == [30.0]
    assert values(obs, "follow_on_response_seconds") == []
    assert count(obs, "customer_responses") == 1
    assert count(obs, "customer_messages") == 2
    assert count(obs, "bot_messages") == 1


def test_agent_message_ending_bot_handling_answers_at_once() -> None:
    """D12: end bot handling -> start waiting -> the message itself: first response 0."""
    c = Conversation()
    obs = observe(
        [
            c.started("10:00:00", handled_by="bot"),
            c.customer("10:00:05"),
            c.agent("10:01:00", "a1"),
            c.assigned("10:01:10", agent_id="a1"),
        ]
    )
    assert values(obs, "first_response_seconds") == [0.0]
    assert values(obs, "response_seconds") == [0.0]
    assert count(obs, "bot_handoffs") == 0
    assert values(obs, "queue_wait_seconds") == []  # after the first response (D23)
    assert count(obs, "agent_contacts") == 1
    assert values(obs, "agent_first_response_seconds") == []


def test_implicit_start_has_unknown_channel_no_customer_and_human_handling() -> None:
    """SPEC §1, [7]: a later conversation.started is ignored."""
    c = Conversation()
    lines = [
        c.customer("10:00:00", text="hi"),
        c.agent("10:00:20", "a1"),
        c.started("10:00:30", channel="email", handled_by="bot"),
    ]
    run = oracle_run(lines, Config())
    started = [o for o in run.observations if o.metric == "conversations_started"]
    assert len(started) == 1
    assert (started[0].channel, started[0].direction, started[0].customer) == (
        "unknown",
        "inbound",
        None,
    )
    assert started[0].ts_us == us("10:00:00")
    assert values(run.observations, "first_response_seconds") == [20.0]
    assert {o.channel for o in run.observations} == {"unknown"}
    attributes = run.conversations[("t", "c1")]
    assert (attributes.channel, attributes.customer_id) == ("unknown", None)
    assert attributes.started_at == "2026-11-23T10:00:00.000000Z"


def test_no_queue_wait_when_an_agent_was_assigned_before_waiting() -> None:
    """[22], D23: the first human assignment came before the customer wrote."""
    c = Conversation()
    obs = observe(
        [
            c.started("10:00:00"),
            c.assigned("10:00:10", agent_id="a1"),
            c.customer("10:01:00"),
            c.assigned("10:02:00", via="transfer", agent_id="a2"),
            c.agent("10:03:00", "a2"),
        ]
    )
    assert values(obs, "queue_wait_seconds") == []
    assert credited(obs, "first_response_seconds") == [(120.0, ["a2"], None)]
    assert credited(obs, "agent_first_response_seconds") == [(60.0, ["a2"], None)]
    assert count(obs, "agent_contacts") == 2
    assert credited(obs, "transfers_to_agent") == [(1.0, ["a2"], None)]
    contacts = [o for o in obs if o.metric == "agent_contacts_with_response"]
    assert [(sorted(o.agents), o.ts_us) for o in contacts] == [(["a2"], us("10:02:00"))]


def test_queue_wait_is_the_first_agent_assignment_while_waiting() -> None:
    """[22]: a group assignment does not count; a later transfer does not either."""
    c = Conversation()
    obs = observe(
        [
            c.started("10:00:00"),
            c.customer("10:00:10"),
            c.assigned("10:01:00", group_id="g1"),
            c.assigned("10:03:10", agent_id="a1"),
            c.assigned("10:04:00", via="transfer", agent_id="a2"),
            c.agent("10:05:10", "a2"),
        ]
    )
    assert credited(obs, "queue_wait_seconds") == [(180.0, ["a1"], None)]
    assert credited(obs, "first_response_seconds") == [(300.0, ["a2"], None)]


def test_agent_first_response_restarts_on_reassignment_and_survives_transfer() -> None:
    """[21], D22: re-assigning the same agent restarts; a transferred-away agent still closes."""
    c = Conversation()
    obs = observe(
        [
            c.started("10:00:00"),
            c.assigned("10:01:00", agent_id="a1", team_id="tX"),
            c.assigned("10:05:00", agent_id="a1", team_id="tY"),
            c.agent("10:06:00", "a1"),
            c.assigned("10:10:00", via="transfer", agent_id="a2"),
            c.assigned("10:11:00", via="transfer", agent_id="a3"),
            c.agent("10:15:00", "a2"),
        ]
    )
    assert credited(obs, "agent_first_response_seconds") == [
        (60.0, ["a1"], "tY"),
        (300.0, ["a2"], None),
    ]
    assert count(obs, "agent_contacts") == 4
    contacts = [o for o in obs if o.metric == "agent_contacts_with_response"]
    assert [(sorted(o.agents), o.ts_us, o.team) for o in contacts] == [
        (["a1"], us("10:05:00"), "tY"),
        (["a2"], us("10:10:00"), None),
    ]


# --- responses and turns ---------------------------------------------------------


def test_offline_first_and_later_responses() -> None:
    """[23], D20/D21: only all-offline turns; the latest customer message is the start."""
    c = Conversation()
    obs = observe(
        [
            c.started("2026-11-23T22:00:00Z"),
            c.customer("2026-11-23T22:00:05Z", mode="offline"),
            c.assigned("2026-11-24T07:55:00Z", agent_id="a1"),
            c.agent("2026-11-24T08:00:05Z", "a1"),
            c.customer("2026-11-24T09:00:00Z", mode="offline"),
            c.customer("2026-11-24T09:01:00Z", mode="live"),
            c.agent("2026-11-24T09:05:00Z", "a1"),
            c.customer("2026-11-24T10:00:00Z", mode="offline"),
            c.customer("2026-11-24T10:10:00Z", mode="offline"),
            c.agent("2026-11-24T10:30:00Z", "a1"),
        ]
    )
    assert values(obs, "first_offline_response_seconds") == [36000.0]
    assert values(obs, "offline_response_seconds") == [1200.0]
    assert values(obs, "response_seconds") == [36000.0, 300.0, 1800.0]
    assert values(obs, "follow_on_response_seconds") == [300.0, 1800.0]


def test_outbound_offline_first_response_counts_as_both_offline_metrics() -> None:
    """[11], D21: the agent wrote first, so the first response is also an offline response."""
    c = Conversation()
    obs = observe(
        [
            c.started("10:00:00", direction="outbound"),
            c.assigned("10:00:01", agent_id="a1"),
            c.agent("10:00:10", "a1"),
            c.customer("11:00:00", mode="offline"),
            c.agent("12:00:00", "a1"),
        ]
    )
    assert values(obs, "first_response_seconds") == [3600.0]
    assert values(obs, "first_offline_response_seconds") == [3600.0]
    assert values(obs, "offline_response_seconds") == [3600.0]
    assert values(obs, "follow_on_response_seconds") == []
    assert count(obs, "agent_responses") == 2
    assert count(obs, "customer_responses") == 1


def test_resolve_ends_the_turn() -> None:
    """[12], D13: a "thanks" before the resolve is not answered by the next agent message."""
    c = Conversation()
    obs = observe(
        [
            c.started("10:00:00"),
            c.customer("10:00:10"),
            c.agent("10:01:10", "a1"),
            c.customer("10:02:00", text="thanks"),
            c("conversation.resolved", "10:03:00", agent_id="a1"),
            c.agent("10:10:00", "a1"),
            c.customer("10:20:00"),
            c.agent("10:21:00", "a1"),
        ]
    )
    assert values(obs, "response_seconds") == [60.0, 60.0]
    assert values(obs, "follow_on_response_seconds") == [60.0]
    assert count(obs, "agent_responses") == 3
    assert count(obs, "customer_responses") == 3


# --- cycles --------------------------------------------------------------------------


def test_reopen_cycles_for_resolution_and_handle() -> None:
    """[8], [24], D14, D24: per cycle; a cycle without an assignment has no handle time."""
    c = Conversation()
    lines = [
        c.started("10:00:00"),
        c.assigned("10:01:00", agent_id="a1"),
        c.customer("10:02:00"),
        c.agent("10:03:00", "a1"),
        c("conversation.reopened", "10:05:00"),  # open: ignored
        c("conversation.resolved", "10:10:00", agent_id="a1"),
        c("conversation.resolved", "10:11:00", agent_id="a1"),  # second resolve: ignored
        c("conversation.reopened", "11:00:00"),
        c("conversation.resolved", "11:30:00"),
        c("conversation.reopened", "12:00:00"),
        c.assigned("12:05:00", agent_id="a2"),
        c("conversation.closed", "12:20:00"),
        c("conversation.reopened", "13:00:00"),
        c("conversation.closed", "13:30:00"),
    ]
    run = oracle_run(lines, Config())
    obs = run.observations
    assert credited(obs, "resolution_seconds") == [(600.0, ["a1"], None), (1800.0, ["a1"], None)]
    assert credited(obs, "handle_seconds") == [(540.0, ["a1"], None), (900.0, ["a2"], None)]
    assert count(obs, "conversations_resolved") == 2
    assert count(obs, "conversations_reopened") == 3
    assert count(obs, "conversations_closed") == 2
    assert count(obs, "conversations_unrated") == 2
    assert count(obs, "automated_conversations") == 0  # an agent wrote
    assert run.conversations[("t", "c1")].status == "closed"


def test_automated_unanswered_and_unrated() -> None:
    """[25], D25/D26: a rating after the close removes the unrated observation."""
    waiting = Conversation("c-wait")
    bot = Conversation("c-bot")
    obs = observe(
        [
            waiting.started("10:00:00"),
            waiting.customer("10:00:05"),
            waiting("conversation.closed", "10:30:00"),
            bot.started("10:00:00", handled_by="bot"),
            bot.customer("10:00:05"),
            bot("message.sent", "10:00:06", sender="bot"),
            bot("conversation.resolved", "10:01:00"),
            bot("conversation.closed", "10:02:00"),
            bot("conversation.rated", "10:30:00", survey="csat", score=5),
        ]
    )
    assert [o.conversation_id for o in obs if o.metric == "unanswered_conversations"] == ["c-wait"]
    assert [o.conversation_id for o in obs if o.metric == "conversations_unrated"] == ["c-wait"]
    assert [o.conversation_id for o in obs if o.metric == "automated_conversations"] == ["c-bot"]
    assert credited(obs, "csat_score") == [(5.0, [], None)]


# --- ratings ----------------------------------------------------------------------------


def test_rerating_replaces_the_earlier_one_and_credits_the_transferring_agent() -> None:
    """SPEC §2 Attribution, [16], D27: writers before the rating; the latest one counts."""
    c = Conversation()
    lines = [
        c.started("10:00:00"),
        c.assigned("10:00:30", agent_id="a1", team_id="t1"),
        c.customer("10:01:00"),
        c("conversation.rated", "10:01:30", survey="nps", score=9),
        c.agent("10:02:00", "a1"),
        c.assigned("10:03:00", via="transfer", agent_id="a2", team_id="t2"),
        c.agent("10:04:00", "a2"),
        c("conversation.resolved", "10:05:00", agent_id="a2"),
        c("conversation.closed", "10:06:00"),
        c("conversation.rated", "11:00:00", survey="csat", score=2),
        c("conversation.rated", "2026-11-24T09:00:00Z", survey="csat", score=5),
    ]
    run = oracle_run(lines, Config())
    obs = run.observations
    assert credited(obs, "csat_score") == [(5.0, ["a1", "a2"], "t2")]
    assert [o.ts_us for o in obs if o.metric == "csat_score"] == [us("2026-11-24T09:00:00Z")]
    assert count(obs, "csat_satisfied") == 1
    assert count(obs, "csat_unsatisfied") == 0
    assert count(obs, "conversations_unrated") == 0
    assert credited(obs, "nps_score") == [(9.0, [], "t1")]  # nobody had written yet
    assert count(obs, "nps_promoters") == 1
    by_agent = {r["agent"]: r for r in run.report(ReportQuery.parse(by="agent"))["rows"]}
    assert by_agent["a1"]["csat_satisfied"] == by_agent["a2"]["csat_satisfied"] == 1
    assert by_agent[None]["nps_promoters"] == 1
    by_day = {r["day"]: r for r in run.report(ReportQuery.parse(by="day"))["rows"]}
    assert by_day["2026-11-24"]["csat_score"]["count"] == 1
    assert by_day["2026-11-23"]["csat_score"]["count"] == 0
    assert run.conversations[("t", "c1")].csat_score == 5


# --- sessions -----------------------------------------------------------------------------


GAP_900 = '[tenants.t]\ntimezone = "UTC"\nsession_gap_seconds = 900\n'


@pytest.mark.parametrize(
    ("now", "one_sided"),
    [("10:45:00.000001", 0), ("10:45:00.000002", 1)],
    ids=["inside-gap-at-now", "ended-by-clock"],
)
def test_session_gap_exactly_equal_is_one_session(now: str, one_sided: int) -> None:
    """[13], D50: a gap of exactly session_gap is one session; timers fire when now > due."""
    c = Conversation()
    obs = observe(
        [
            c.started("10:00:00"),
            c.customer("10:00:00"),
            c.agent("10:15:00", "a1"),
            c.customer("10:30:00.000001"),
            status(now),
        ],
        GAP_900,
    )
    assert credited(obs, "live_session_seconds") == [(900.0, ["a1"], None)]
    assert count(obs, "live_sessions") == 1
    assert count(obs, "one_sided_sessions") == one_sided
    if one_sided:
        session = next(o for o in obs if o.metric == "one_sided_sessions")
        assert (session.ts_us, session.agents) == (us("10:30:00.000001"), frozenset())


def test_close_ends_the_session_and_a_bot_only_session_counts_for_nobody() -> None:
    """SPEC §2 Sessions, D29: close ends it for good; bot messages belong to no party."""
    c = Conversation()
    obs = observe(
        [
            c.started("10:00:00", handled_by="bot"),
            c("message.sent", "10:00:01", sender="bot"),
            c("message.sent", "10:00:02", sender="bot"),
            c.customer("11:00:00"),
            c.agent("11:00:30", "a1"),
            c("conversation.closed", "11:01:00"),
            c.customer("11:02:00", text="thanks!"),
            status("11:40:00"),
        ],
        GAP_900,
    )
    assert credited(obs, "live_session_seconds") == [(30.0, ["a1"], None)]
    assert count(obs, "one_sided_sessions") == 1  # the "thanks!" after the close


# --- business hours ---------------------------------------------------------------------


def test_business_first_response_of_the_spec_examples() -> None:
    """SPEC §2 Service hours: Madrid 07:00-17:00 (UTC+1 in November)."""
    early = Conversation("c-early", "acme")
    night = Conversation("c-night", "acme")
    obs = observe(
        [
            early.started("05:59:50", channel="email"),
            early.customer("05:59:55"),  # 06:59:55 local
            early.agent("06:00:05", "a1"),  # 07:00:05 local
            night.started("20:59:00", channel="email"),
            night.customer("21:00:00"),  # 22:00 local
            night.agent("2026-11-24T07:00:00Z", "a1"),  # 08:00 local
        ],
        SPEC_CONFIG,
    )
    assert values(obs, "first_response_seconds") == [10.0, 36000.0]
    assert values(obs, "first_response_business_seconds") == [5.0, 3600.0]
    assert values(obs, "response_business_seconds") == [5.0, 3600.0]


def test_business_metrics_only_for_tenants_with_hours() -> None:
    """SPEC §6: a tenant absent from the config has no business durations."""
    c = Conversation()
    obs = observe([c.started("10:00:00"), c.customer("10:00:05"), c.agent("10:00:15", "a1")])
    assert values(obs, "first_response_seconds") == [10.0]
    assert values(obs, "first_response_business_seconds") == []
    assert values(obs, "response_business_seconds") == []


# --- SLA -------------------------------------------------------------------------------------


def _breaches(obs: list[Observation]) -> list[tuple[str, int | None, list[str], Any]]:
    """(kind, deadline, agents, team) of each breach, by deadline."""
    found = [
        (o.metric.removeprefix("sla_breaches_"), o.ts_us, sorted(o.agents), o.team)
        for o in obs
        if o.metric.startswith("sla_breaches_")
    ]
    return sorted(found, key=lambda b: b[1] or 0)


@pytest.mark.parametrize(
    ("now", "breached"), [("10:01:20", False), ("10:01:20.000001", True)], ids=["at", "past"]
)
def test_first_response_breach_fires_by_the_clock(now: str, breached: bool) -> None:
    """SPEC §4, D41, D50: no answer and now > deadline."""
    c = Conversation()
    obs = observe(
        [
            c.started("10:00:00"),
            c.assigned("10:00:10", agent_id="a1", team_id="tA"),
            c.customer("10:00:20"),
            status(now),
        ],
        SLA_CONFIG,
    )
    expected = [("first_response", us("10:01:20"), ["a1"], "tA")] if breached else []
    assert _breaches(obs) == expected


def test_resolution_breach_fires_by_the_clock_for_an_open_conversation() -> None:
    c = Conversation()
    obs = observe(
        [c.started("10:00:00"), c.customer("10:00:20"), status("11:00:00.000001")], SLA_CONFIG
    )
    assert _breaches(obs) == [
        ("first_response", us("10:01:20"), [], None),
        ("resolution", us("11:00:00"), [], None),
    ]


@pytest.mark.parametrize(
    ("answer", "breached"),
    [("10:01:00", False), ("10:01:00.001", True), ("10:00:59.999999", False)],
    ids=["on-deadline", "1ms-late", "just-before"],
)
def test_first_response_breach_by_a_late_answer(answer: str, breached: bool) -> None:
    """[41]: breached when elapsed > target."""
    c = Conversation()
    obs = observe(
        [c.started("10:00:00"), c.customer("10:00:00"), c.agent(answer, "a1")], SLA_CONFIG
    )
    assert _breaches(obs) == ([("first_response", us("10:01:00"), [], None)] if breached else [])


def test_a_late_answer_within_the_target_means_no_breach() -> None:
    """SPEC §4, D41: a later event showed the target passed, then the answer arrived late."""
    c = Conversation()
    obs = observe(
        [
            c.started("10:00:00"),
            c.customer("10:00:00"),
            c("conversation.tagged", "10:05:00", tag="vip"),
            c.agent("10:00:30", "a1"),
        ],
        SLA_CONFIG,
    )
    assert _breaches(obs) == []
    assert count(obs, "late_events") == 1


def test_breach_takes_team_and_agent_from_before_the_first_event_past_the_deadline() -> None:
    """D42: the breach's bucket is its deadline; the reassignment after it does not count."""
    c = Conversation()
    obs = observe(
        [
            c.started("10:00:00"),
            c.customer("10:00:00"),
            c.assigned("10:00:30", agent_id="a1", team_id="tA"),
            c.assigned("10:01:30", via="transfer", agent_id="a2", team_id="tB"),
            c.agent("10:02:00", "a2"),
        ],
        SLA_CONFIG,
    )
    assert _breaches(obs) == [("first_response", us("10:01:00"), ["a1"], "tA")]


def test_next_response_breaches_per_turn() -> None:
    """[41]: next_response starts at each customer turn after the first response."""
    c = Conversation()
    obs = observe(
        [
            c.started("10:00:00"),
            c.customer("10:00:00"),
            c.agent("10:00:30", "a1"),
            c.customer("10:10:00"),
            c.agent("10:11:00.5", "a1"),
            c.customer("10:20:00"),
            c.agent("10:20:59", "a1"),
            c("conversation.resolved", "10:30:00", agent_id="a1"),
        ],
        SLA_CONFIG,
    )
    assert _breaches(obs) == [("next_response", us("10:11:00"), [], None)]


@pytest.mark.parametrize(
    ("answer", "breached"),
    [("20:00:00", False), ("2026-11-24T09:00:00.000001Z", True)],
    ids=["evening", "after-next-opening"],
)
def test_business_deadline_on_a_window_end_moves_to_the_next_opening(
    answer: str, breached: bool
) -> None:
    """[41], D40: 1 business hour from Monday 16:00 ends at 17:00 = Tuesday 09:00."""
    c = Conversation(tenant="b")
    obs = observe(
        [c.started("16:00:00"), c.customer("16:00:00"), c.agent(answer, "a1")], SLA_CONFIG
    )
    tuesday_nine = us("2026-11-24T09:00:00Z")
    assert _breaches(obs) == ([("first_response", tuesday_nine, [], None)] if breached else [])


# --- input rules ---------------------------------------------------------------------------------


def test_a_late_event_is_counted_and_durations_clamp_at_zero() -> None:
    """SPEC §1 Edge rules, [5]: the agent's ts is before the customer's."""
    c = Conversation()
    obs = observe([c.started("10:00:00"), c.customer("10:00:10"), c.agent("10:00:05", "a1")])
    assert count(obs, "late_events") == 1
    assert values(obs, "first_response_seconds") == [0.0]
    assert values(obs, "response_seconds") == [0.0]


def test_late_compares_with_the_immediately_preceding_event() -> None:
    """D2: 10:07 after 10:05 is not late, although 10:10 came before both."""
    c = Conversation()
    obs = observe(
        [
            c.started("10:00:00"),
            c("conversation.tagged", "10:10:00", tag="a"),
            c("conversation.tagged", "10:05:00", tag="b"),
            c("conversation.tagged", "10:07:00", tag="c"),
        ]
    )
    assert [o.ts_us for o in obs if o.metric == "late_events"] == [us("10:05:00")]


def test_late_assignment_counts_under_its_new_team() -> None:
    """D2 + D15 (oracle's reading): observations made by an assignment use the new team."""
    c = Conversation()
    obs = observe(
        [
            c.started("10:00:00"),
            c.customer("10:05:00"),
            c.assigned("10:04:00", agent_id="a1", team_id="tA"),
        ]
    )
    assert credited(obs, "late_events") == [(1.0, [], "tA")]


def test_a_duplicate_is_counted_under_tenant_and_bucket_only() -> None:
    """D1, [5]: an exact copy changes nothing but duplicate_events."""
    c = Conversation()
    message = c.customer("10:00:10")
    obs = observe([c.started("10:00:00"), message, c.agent("10:00:20", "a1"), message])
    assert count(obs, "customer_messages") == 1
    duplicates = [o for o in obs if o.metric == "duplicate_events"]
    assert duplicates == [Observation("duplicate_events", 1.0, us("10:00:10"), "t")]
    assert count(obs, "late_events") == 0


def test_validation_comes_before_dedupe() -> None:
    """[2]: an invalid event's id is not kept, so the valid copy that follows is accepted."""
    c = Conversation()
    valid = c.customer("10:00:10")
    broken = orjson.loads(valid)
    del broken["ts"]
    obs = observe([c.started("10:00:00"), orjson.dumps(broken), valid, valid])
    assert count(obs, "customer_messages") == 1
    assert [(o.tenant, o.ts_us) for o in obs if o.metric == "invalid_events"] == [("t", None)]
    assert count(obs, "duplicate_events") == 1


def test_invalid_events_keep_tenant_and_bucket_when_readable() -> None:
    """D3: rows with a null tenant/day; no day means only reports without a range."""
    lines = [
        b'{"event_id": "x1", "type": "message.sent", "ts": "2026-11-23T10:0',  # broken JSON
        orjson.dumps(
            {
                "event_id": "x2",
                "type": "conversation.snoozed",
                "ts": ts("10:00:00"),
                "tenant": "t",
                "conversation_id": "c1",
            }
        ),
        orjson.dumps(
            {
                "event_id": "x3",
                "type": "conversation.closed",
                "ts": "yesterday",
                "tenant": "t",
                "conversation_id": "c1",
            }
        ),
        b"   ",  # blank: skipped, not invalid
        status("10:30:00"),
    ]
    run = oracle_run(lines, Config())
    assert sorted(((o.tenant or "-", o.ts_us or 0) for o in run.observations), key=str) == sorted(
        [("-", 0), ("t", us("10:00:00")), ("t", 0)], key=str
    )
    all_rows = run.report(ReportQuery.parse(by="tenant,day"))["rows"]
    assert [(r["tenant"], r["day"], r["invalid_events"]) for r in all_rows] == [
        (None, None, 1),
        ("t", None, 1),
        ("t", "2026-11-23", 1),
    ]
    today = run.report(ReportQuery.parse(by="tenant,day", range_name="today"))["rows"]
    assert [(r["tenant"], r["day"], r["invalid_events"]) for r in today] == [("t", DAY, 1)]


def test_focus_windows() -> None:
    """SPEC §1 Edge rules: double start, end without start, windows open at close."""
    c = Conversation()
    obs = observe(
        [
            c.started("10:00:00"),
            c.assigned("10:00:00", agent_id="a1"),
            c("agent.focus.started", "10:01:00", agent_id="a1"),
            c("agent.focus.started", "10:02:00", agent_id="a1"),
            c("agent.focus.ended", "10:06:00", agent_id="a1"),
            c("agent.focus.ended", "10:07:00", agent_id="a1"),
            c("agent.focus.ended", "10:07:30", agent_id="a2"),
            c("agent.focus.started", "10:10:00", agent_id="a1"),
            c("agent.focus.started", "10:12:00", agent_id="a2"),
            c("conversation.closed", "10:20:00"),
        ]
    )
    assert sorted(credited(obs, "focus_seconds")) == [
        (300.0, ["a1"], None),
        (480.0, ["a2"], None),
        (600.0, ["a1"], None),
    ]
    assert count(obs, "focus_count") == 3


# --- reports ------------------------------------------------------------------------------------


def _small_report_input() -> list[bytes]:
    c = Conversation()
    return [
        c.started("10:00:00", customer_id="cu1"),
        c.assigned("10:00:10", agent_id="a1", team_id="tA"),
        c.customer("10:00:20"),
        c.agent("10:00:50", "a1"),
        c("conversation.tagged", "10:01:00", tag="vip"),
        c(
            "conversation.transaction",
            "10:02:00",
            transaction_id="tx1",
            amount=12.5,
            currency="EUR",
        ),
        c.assigned("10:03:00", via="transfer", group_id="g1"),
        c("conversation.closed", "10:04:00"),
    ]


def test_tag_is_a_dimension_of_tag_count_only() -> None:
    """[29]: with --by tag every other observation sits in the null-tag row."""
    rows = oracle_run(_small_report_input(), Config()).report(ReportQuery.parse(by="tag"))["rows"]
    assert [r["tag"] for r in rows] == [None, "vip"]
    null_row, vip = rows
    assert (vip["tag_count"], vip["conversations_started"], vip["distinct_customers"]) == (1, 0, 1)
    assert (null_row["tag_count"], null_row["conversations_started"]) == (0, 1)


def test_report_rows_have_every_counter_distribution_and_currency() -> None:
    """SPEC §5, [50], [28], D62: zeros and empty distributions are shown."""
    run = oracle_run(_small_report_input(), Config())
    rows = run.report(ReportQuery.parse(by="agent"))["rows"]
    assert [r["agent"] for r in rows] == [None, "a1"]
    for row in rows:
        for counter in metrics.COUNTERS:
            assert isinstance(row[counter], int)
        for metric in (*metrics.DISTRIBUTIONS, "transaction_amount_EUR"):
            assert set(row[metric]) == {"count", "sum", "min", "max", "p50", "p90", "p99"}
    none_row, a1 = rows
    assert none_row["transaction_amount_EUR"] == {
        "count": 0,
        "sum": 0,
        "min": None,
        "max": None,
        "p50": None,
        "p90": None,
        "p99": None,
    }
    assert a1["transaction_amount_EUR"]["sum"] == 12.5
    assert (a1["tag_count"], a1["converted_conversations"], a1["distinct_agents"]) == (1, 1, 1)
    assert none_row["conversations_closed"] == 1  # last assigned was a group
    assert none_row["distinct_agents"] == 0


def test_where_filters() -> None:
    """[52]: agent=X keeps observations credited to X; DIM= matches no value."""
    run = oracle_run(_small_report_input(), Config())
    only_a1 = run.report(ReportQuery.parse(by="tenant", where=["agent=a1"]))["rows"]
    assert [(r["agent_messages"], r["conversations_started"]) for r in only_a1] == [(1, 0)]
    no_team = run.report(ReportQuery.parse(by="tenant", where=["team="]))["rows"]
    assert [
        (r["conversations_started"], r["agent_messages"], r["customer_messages"]) for r in no_team
    ] == [(1, 0, 0)]
    nothing = run.report(ReportQuery.parse(by="tenant", where=["channel=email"]))["rows"]
    assert nothing == []


def test_conversation_rows_carry_the_attributes() -> None:
    """SPEC §3, D30: subject only with store_text; agents in order of first message."""
    c = Conversation()
    lines = [
        c.started("10:00:00", customer_name="Zoë"),
        c.customer("10:00:05", text="x" * 130),
        c.agent("10:00:10", "a2"),
        c.agent("10:00:20", "a1"),
        c("conversation.rated", "10:05:00", survey="csat", score=3),
    ]
    query = ReportQuery.parse(by="conversation")
    with_text = oracle_run(lines, parse_config("[defaults]\nstore_text = true\n"))
    row = with_text.report(query)["rows"][0]
    assert {k: row[k] for k in metrics.CONVERSATION_ATTRIBUTES} == {
        "customer_id": "cu1",
        "customer_name": "Zoë",
        "subject": "x" * 120,
        "agents": ["a2", "a1"],
        "channel": "chat",
        "status": "open",
        "started_at": "2026-11-23T10:00:00.000000Z",
        "csat_score": 3,
    }
    assert oracle_run(lines, Config()).report(query)["rows"][0]["subject"] is None
