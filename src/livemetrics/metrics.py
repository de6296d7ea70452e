"""The catalogue of SPEC §3 metric names, in report order.

One place for the names keeps the engine, the report, Prometheus and the docs
in step: a metric added here shows up in every report row (SPEC §7 [50]).
"""

from __future__ import annotations

from typing import Final

SLA_KINDS: Final[tuple[str, ...]] = ("first_response", "next_response", "resolution")

COUNTERS: Final[tuple[str, ...]] = (
    "conversations_started",
    "conversations_resolved",
    "conversations_reopened",
    "conversations_closed",
    "customer_messages",
    "agent_messages",
    "bot_messages",
    "customer_responses",
    "agent_responses",
    "follow_on_responses",
    "agent_contacts",
    "agent_contacts_with_response",
    "conversations_attended",
    "transfers_to_agent",
    "transfers_to_group",
    "bot_handoffs",
    "live_sessions",
    "one_sided_sessions",
    "focus_count",
    "tag_count",
    "csat_satisfied",
    "csat_neutral",
    "csat_unsatisfied",
    "conversations_unrated",
    "nps_promoters",
    "nps_passives",
    "nps_detractors",
    "converted_conversations",
    "automated_conversations",
    "unanswered_conversations",
    "sla_breaches",
    "sla_breaches_first_response",
    "sla_breaches_next_response",
    "sla_breaches_resolution",
    "late_events",
    "duplicate_events",
    "invalid_events",
)

#: Counters the engine emits under their own name; `sla_breaches` is their sum.
SLA_BREACH_COUNTERS: Final[tuple[str, ...]] = tuple(f"sla_breaches_{kind}" for kind in SLA_KINDS)

DISTINCT_COUNTS: Final[tuple[str, ...]] = ("distinct_customers", "distinct_agents")

DISTRIBUTIONS: Final[tuple[str, ...]] = (
    "first_response_seconds",
    "first_response_business_seconds",
    "agent_first_response_seconds",
    "response_seconds",
    "response_business_seconds",
    "follow_on_response_seconds",
    "first_offline_response_seconds",
    "offline_response_seconds",
    "queue_wait_seconds",
    "resolution_seconds",
    "handle_seconds",
    "focus_seconds",
    "live_session_seconds",
    "csat_score",
    "nps_score",
    "ces_score",
)

#: Per-currency distributions are named `transaction_amount_<CURRENCY>` (SPEC §7 [28]).
TRANSACTION_PREFIX: Final = "transaction_amount_"

CONVERSATION_ATTRIBUTES: Final[tuple[str, ...]] = (
    "customer_id",
    "customer_name",
    "subject",
    "agents",
    "channel",
    "status",
    "started_at",
    "csat_score",
)

LIVE_GAUGES: Final[tuple[str, ...]] = (
    "open_conversations",
    "waiting_first_response",
    "awaiting_agent_reply",
    "unassigned_conversations",
    "oldest_waiting_seconds",
    "agents_online",
    "agent_active_conversations",
    "sla_at_risk",
)


def is_distribution(metric: str) -> bool:
    """True for a distribution name, including per-currency transaction amounts."""
    return metric in _DISTRIBUTION_SET or metric.startswith(TRANSACTION_PREFIX)


_DISTRIBUTION_SET: Final = frozenset(DISTRIBUTIONS)
