"""The wall board's data: reports and live gauges shaped into one JSON document.

Pure functions, no I/O: the HTTP layer (`livemetrics.web.api`) reads Redis and
the worker's state, this module decides what a board row shows. A row joins
the live gauges (now) with report metrics over the board's range (SPEC §3):

    >>> reports = [live_report(..., q) for q in board_queries("today")]   # doctest: +SKIP
    >>> board = build_board(*reports, tenant_gauges, breakdown, clock_us=..., range_name="today")

Per tenant the board has a ``total`` row, then ``teams`` and ``channels``
rows. Team and channel gauges can only come from the worker's own engine
state, because Redis keeps gauges per tenant: ``breakdown_gauges`` says
whether they cover every partition (``complete``), only this worker's
(``partial``), or none. Tenant totals come from the engine too when it is
complete (fresher than Redis' snapshots, and then the rows add up to the
total); otherwise from Redis, which holds every worker's partitions
(``gauges_source`` says which).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from livemetrics.aggregate.query import RANGES, QueryError, ReportQuery
from livemetrics.engine.gauges import GaugeKey
from livemetrics.events import format_ts

BOARD_VERSION = 1
DEFAULT_RANGE = "today"

GAUGE_FIELDS: tuple[str, ...] = (
    "open_conversations",
    "waiting_first_response",
    "oldest_waiting_seconds",
    "unassigned_conversations",
    "sla_at_risk",
    "agents_online",
)
"""Live gauges (SPEC §3) a board row shows, by their SPEC names."""

REPORT_FIELDS: tuple[str, ...] = (
    "conversations_started",
    "conversations_resolved",
    "first_response_p50",
    "first_response_p90",
    "csat_percent",
    "csat_responses",
    "sla_breaches",
)
"""Report metrics a board row shows over the board's range."""

LabelledGauges = dict[tuple[str, str | None], dict[str, float]]
"""(tenant, team or channel) -> gauge -> value."""

_MAX_GAUGES = frozenset({"oldest_waiting_seconds"})
"""Gauges that combine by max, not sum, across teams, channels and partitions."""


def board_range(value: str | None) -> str:
    """The board's named range (SPEC §5 ``--range``); ``today`` unless told otherwise."""
    if value is None or value == "":
        return DEFAULT_RANGE
    if value not in RANGES:
        raise QueryError(f"unknown range {value!r} (choose {', '.join(RANGES)})")
    return value


def board_queries(range_name: str) -> tuple[ReportQuery, ReportQuery, ReportQuery]:
    """The three reports a board needs: by tenant, by tenant and team, by tenant and channel.

    Percentiles do not add up, so each level is its own report, not a sum of rows.
    """
    return (
        ReportQuery.parse(by="tenant", range_name=range_name),
        ReportQuery.parse(by="tenant,team", range_name=range_name),
        ReportQuery.parse(by="tenant,channel", range_name=range_name),
    )


def csat_percent(row: Mapping[str, Any]) -> float | None:
    """CSAT % = satisfied / csat responses × 100 (SPEC §3 ratios); None without responses."""
    responses = csat_responses(row)
    if not responses:
        return None
    return round(row.get("csat_satisfied", 0) * 100.0 / responses, 1)


def csat_responses(row: Mapping[str, Any]) -> int:
    """Every csat rating counts in exactly one of the three categories (SPEC §3)."""
    return int(
        row.get("csat_satisfied", 0) + row.get("csat_neutral", 0) + row.get("csat_unsatisfied", 0)
    )


def report_fields(row: Mapping[str, Any] | None) -> dict[str, Any]:
    """A report row's board fields; a missing row means nothing happened in the range."""
    if row is None:
        row = {}
    frt = row.get("first_response_seconds")
    frt = frt if isinstance(frt, Mapping) else {}
    return {
        "conversations_started": row.get("conversations_started", 0),
        "conversations_resolved": row.get("conversations_resolved", 0),
        "first_response_p50": frt.get("p50"),
        "first_response_p90": frt.get("p90"),
        "csat_percent": csat_percent(row),
        "csat_responses": csat_responses(row),
        "sla_breaches": row.get("sla_breaches", 0),
    }


def gauge_fields(gauges: Mapping[str, float] | None) -> dict[str, float | int | None]:
    """The board's gauges; all None when unknown (not 0: the board must not claim calm)."""
    if gauges is None:
        return dict.fromkeys(GAUGE_FIELDS)
    out: dict[str, float | int | None] = {}
    for name in GAUGE_FIELDS:
        value = float(gauges.get(name, 0.0))
        out[name] = round(value, 1) if name in _MAX_GAUGES else int(value)
    return out


def split_gauges(values: Mapping[GaugeKey, float]) -> tuple[LabelledGauges, LabelledGauges]:
    """Engine gauges (tenant, team, channel labels) summed per (tenant, team) and per
    (tenant, channel); per-agent gauges are left out, the oldest wait is a max."""
    teams: LabelledGauges = {}
    channels: LabelledGauges = {}
    for key, value in values.items():
        if key.agent is not None or key.name not in GAUGE_FIELDS:
            continue
        _combine(teams.setdefault((key.tenant, key.team), {}), key.name, value)
        if key.name != "agents_online":  # presence has a team, never a channel
            _combine(channels.setdefault((key.tenant, key.channel), {}), key.name, value)
    return teams, channels


def _combine(gauges: dict[str, float], name: str, value: float) -> None:
    if name in _MAX_GAUGES:
        gauges[name] = max(gauges.get(name, 0.0), value)
    else:
        gauges[name] = gauges.get(name, 0.0) + value


def build_board(
    tenant_report: Mapping[str, Any],
    team_report: Mapping[str, Any],
    channel_report: Mapping[str, Any],
    tenant_gauges: Mapping[str, Mapping[str, float]],
    breakdown: Mapping[GaugeKey, float] | None,
    *,
    clock_us: int,
    range_name: str,
    breakdown_complete: bool = True,
) -> dict[str, Any]:
    """The board document: one entry per tenant with its total, team and channel rows.

    ``tenant_gauges`` is `RedisStore.read_gauges()` (may hold ``ts_us``);
    ``breakdown`` the engine's labelled gauges (`live_gauges`) or None when the
    caller has no engine state; ``breakdown_complete`` whether that state
    covers every input partition. Tenants, teams and channels are the union of
    what the reports and the gauges know, so a team with open conversations
    but no observation in the range still shows. Rows without a tenant
    (unreadable input, SPEC D3) belong to no board.
    """
    by_tenant = _rows(tenant_report, ("tenant",))
    by_team = _rows(team_report, ("tenant", "team"))
    by_channel = _rows(channel_report, ("tenant", "channel"))
    team_gauges, channel_gauges = split_gauges(breakdown or {})
    from_engine = breakdown is not None and breakdown_complete
    tenants: set[str] = set(tenant_gauges)
    for key in (*by_tenant, *by_team, *by_channel, *team_gauges, *channel_gauges):
        if key[0] is not None:
            tenants.add(key[0])
    entries = []
    for tenant in sorted(tenants):
        if from_engine:
            gauges: Mapping[str, float] | None = _tenant_total(tenant, team_gauges)
            ts_us: float | None = clock_us
        else:
            gauges = tenant_gauges.get(tenant)
            ts_us = gauges.get("ts_us") if gauges else None
        entries.append(
            {
                "tenant": tenant,
                "gauges_at": format_ts(int(ts_us)) if ts_us else None,
                "total": {**gauge_fields(gauges), **report_fields(by_tenant.get((tenant,)))},
                "teams": _breakdown_rows(
                    "team", tenant, by_team, team_gauges, known=breakdown is not None
                ),
                "channels": _breakdown_rows(
                    "channel", tenant, by_channel, channel_gauges, known=breakdown is not None
                ),
            }
        )
    scope = "complete" if breakdown_complete else "partial"
    return {
        "version": BOARD_VERSION,
        "range": range_name,
        "clock_us": clock_us,
        "clock": format_ts(clock_us) if clock_us else None,
        "breakdown_gauges": "none" if breakdown is None else scope,
        "gauges_source": "worker" if from_engine else "store",
        "tenants": entries,
    }


def _tenant_total(tenant: str, team_gauges: LabelledGauges) -> dict[str, float]:
    """A tenant's gauges as the sum of its teams' (every conversation has one team row)."""
    total: dict[str, float] = {}
    for (owner, _), gauges in team_gauges.items():
        if owner == tenant:
            for name, value in gauges.items():
                _combine(total, name, value)
    return total


def _rows(
    report: Mapping[str, Any], dims: tuple[str, ...]
) -> dict[tuple[str | None, ...], Mapping[str, Any]]:
    rows: Iterable[Mapping[str, Any]] = report.get("rows") or ()
    return {tuple(row.get(d) for d in dims): row for row in rows if row.get("tenant") is not None}


def _breakdown_rows(
    dimension: str,
    tenant: str,
    report_rows: Mapping[tuple[str | None, ...], Mapping[str, Any]],
    gauges: LabelledGauges,
    *,
    known: bool,
) -> list[dict[str, Any]]:
    """Rows of one tenant by team or channel, named values first, none (null) last."""
    names = {key[1] for key in report_rows if key[0] == tenant}
    names |= {key[1] for key in gauges if key[0] == tenant}
    rows = []
    for name in sorted(names, key=lambda n: (n is None, n or "")):
        found = gauges.get((tenant, name))
        if found is None and known:
            found = {}  # the engine knows this tenant: no open conversation here is a 0
        row = {
            dimension: name,
            **gauge_fields(found if known else None),
            **report_fields(report_rows.get((tenant, name))),
        }
        if dimension == "channel":
            row["agents_online"] = None  # presence has a team, never a channel
        rows.append(row)
    return rows


def live_document(gauges: Mapping[str, Mapping[str, float]], clock_us: int) -> dict[str, Any]:
    """``/api/v1/live``: `RedisStore.read_gauges()` per tenant with its snapshot time
    split out, and the event clock (D50) the gauges were computed against."""
    tenants: dict[str, Any] = {}
    for tenant, values in sorted(gauges.items()):
        ts_us = values.get("ts_us")
        tenants[tenant] = {
            "gauges_at": format_ts(int(ts_us)) if ts_us else None,
            "gauges": {name: value for name, value in sorted(values.items()) if name != "ts_us"},
        }
    return {
        "clock_us": clock_us,
        "clock": format_ts(clock_us) if clock_us else None,
        "tenants": tenants,
    }
