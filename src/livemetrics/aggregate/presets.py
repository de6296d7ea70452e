"""Ready-made reports, as the seed products ship them (agents, customers, ...).

A preset never computes a metric. It picks a ``--by`` for the SPEC §5 report
(`preset_query`) and derives its columns from that report's rows
(`apply_preset`): an average is a distribution's sum / count, a ratio is the
SPEC §3 formula over the row's counters (ratios are never stored, D61a). So a
preset shows exactly the numbers of the report it came from, in `replay` and
in the live `report` alike.

    >>> report = result.report(config, preset_query("agents", query))  # doctest: +SKIP
    >>> apply_preset("agents", report)["rows"][0]["avg_first_response_seconds"]  # doctest: +SKIP

The result has ``by`` and flat ``rows`` like a report, so `formats.render`
writes it as json, csv, xlsx or a table. Derived numbers are rounded to
`DECIMALS`; an average or a ratio with nothing to divide by is ``None``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from livemetrics.aggregate.query import QueryError, ReportQuery

DECIMALS = 2
"""Derived numbers (averages, percentiles, ratios) are rounded to this many decimals."""

Derive = Callable[[Mapping[str, Any]], Any]
"""Computes one preset cell from one SPEC §5 report row."""

# Units, as shown in a column's definition.
TEXT = "text"
COUNT = "count"
SECONDS = "seconds"
PERCENT = "percent 0..100"
SCORE = "score -100..100"
FRACTION = "fraction 0..1"
TIMESTAMP = "RFC 3339 UTC"


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a preset: its row key, header, unit, and how it is derived.

    ``key`` is the SPEC name when the column passes a report value through
    (``conversations_resolved``), a derived name otherwise
    (``avg_first_response_seconds``, ``csat_percent``).
    """

    key: str
    label: str
    unit: str
    definition: str
    derive: Derive = field(compare=False, repr=False)

    def describe(self) -> dict[str, str]:
        """The column as the preset result lists it (``columns``)."""
        return {
            "key": self.key,
            "label": self.label,
            "unit": self.unit,
            "definition": self.definition,
        }


@dataclass(frozen=True, slots=True)
class Preset:
    """A named report: the ``--by`` it needs and the columns it derives."""

    name: str
    by: tuple[str, ...]
    title: str
    columns: tuple[Column, ...]


def apply_preset(name: str, report: Mapping[str, Any]) -> dict[str, Any]:
    """Derive preset ``name`` from a SPEC §5 report built with `preset_query`.

    Returns ``{"preset", "title", "by", <the report's other top-level keys,
    e.g. range>, "columns", "rows"}``; each row holds the columns' keys in
    order. A report row with no value for the preset's dimension (``(none)``:
    e.g. invalid events, or work no agent is credited with) is kept only when
    one of its columns has something to show.
    """
    preset = _preset(name)
    by = list(report.get("by") or ())
    if by != list(preset.by):
        raise ValueError(
            f"preset {name!r} needs a report --by {','.join(preset.by)}, got --by {','.join(by)}"
        )
    rows = []
    for report_row in report.get("rows") or ():
        row = {column.key: column.derive(report_row) for column in preset.columns}
        if _has_dimension(row, preset.by) or _has_values(row, preset.by):
            rows.append(row)
    extra = {key: value for key, value in report.items() if key not in ("by", "rows")}
    return {
        "preset": preset.name,
        "title": preset.title,
        "by": list(preset.by),
        **extra,
        "columns": [column.describe() for column in preset.columns],
        "rows": rows,
    }


def preset_query(name: str, base: ReportQuery) -> ReportQuery:
    """``base`` (filters, dates, range) with the preset's ``--by``."""
    return dataclasses.replace(base, by=_preset(name).by)


def _preset(name: str) -> Preset:
    preset = PRESETS.get(name)
    if preset is None:
        raise QueryError(f"unknown preset {name!r} (choose {', '.join(PRESETS)})")
    return preset


def _has_dimension(row: Mapping[str, Any], by: tuple[str, ...]) -> bool:
    return all(row.get(dimension) is not None for dimension in by)


def _has_values(row: Mapping[str, Any], by: tuple[str, ...]) -> bool:
    return any(value not in (None, 0, "") for key, value in row.items() if key not in by)


# --- derivations -------------------------------------------------------------------


def _round(value: float) -> float:
    return round(value, DECIMALS) + 0.0  # + 0.0 turns -0.0 into 0.0


def _count(row: Mapping[str, Any], key: str) -> int:
    value = row.get(key)
    return value if isinstance(value, int) else 0


def _take(key: str) -> Derive:
    def derive(row: Mapping[str, Any]) -> Any:
        return row.get(key)

    return derive


def _joined(key: str) -> Derive:
    def derive(row: Mapping[str, Any]) -> str | None:
        value = row.get(key)
        if not value:
            return None
        return ", ".join(str(item) for item in value)

    return derive


def _mean(metric: str) -> Derive:
    def derive(row: Mapping[str, Any]) -> float | None:
        summary = row.get(metric)
        if not isinstance(summary, Mapping) or not summary.get("count"):
            return None
        return _round(summary["sum"] / summary["count"])

    return derive


def _percentile(metric: str, name: str) -> Derive:
    def derive(row: Mapping[str, Any]) -> float | None:
        summary = row.get(metric)
        value = summary.get(name) if isinstance(summary, Mapping) else None
        return None if value is None else _round(value)

    return derive


def _ratio(
    numerator: tuple[str, ...],
    denominator: tuple[str, ...],
    *,
    minus: tuple[str, ...] = (),
    scale: float = 1.0,
) -> Derive:
    """(sum(numerator) - sum(minus)) / sum(denominator) * scale; None over 0."""

    def derive(row: Mapping[str, Any]) -> float | None:
        below = sum(_count(row, key) for key in denominator)
        if below == 0:
            return None
        above = sum(_count(row, key) for key in numerator) - sum(_count(row, key) for key in minus)
        return _round(above / below * scale)

    return derive


_CSAT_RESPONSES = ("csat_satisfied", "csat_neutral", "csat_unsatisfied")
_NPS_RESPONSES = ("nps_promoters", "nps_passives", "nps_detractors")


# --- columns -----------------------------------------------------------------------


def _text(key: str, definition: str, label: str | None = None) -> Column:
    return Column(key, label or key, TEXT, definition, _take(key))


def _counter(key: str, label: str, definition: str) -> Column:
    return Column(key, label, COUNT, f"{key}: {definition}", _take(key))


def _avg_first_response() -> Column:
    return Column(
        "avg_first_response_seconds",
        "avg first response",
        SECONDS,
        "first_response_seconds sum / count; none without a first response",
        _mean("first_response_seconds"),
    )


def _p90_first_response() -> Column:
    return Column(
        "p90_first_response_seconds",
        "p90 first response",
        SECONDS,
        "first_response_seconds p90",
        _percentile("first_response_seconds", "p90"),
    )


def _avg_response() -> Column:
    return Column(
        "avg_response_seconds",
        "avg response",
        SECONDS,
        "response_seconds sum / count (every reply to a customer turn, first included)",
        _mean("response_seconds"),
    )


def _satisfaction() -> tuple[Column, ...]:
    return (
        _counter("csat_satisfied", "good", "CSAT ratings 4-5"),
        _counter("csat_neutral", "medium", "CSAT ratings 3"),
        _counter("csat_unsatisfied", "low", "CSAT ratings 1-2"),
        _counter("conversations_unrated", "unrated", "closed with no rating so far"),
    )


def _csat_percent() -> Column:
    return Column(
        "csat_percent",
        "CSAT %",
        PERCENT,
        "csat_satisfied / (csat_satisfied + csat_neutral + csat_unsatisfied) × 100 (SPEC §3)",
        _ratio(("csat_satisfied",), _CSAT_RESPONSES, scale=100.0),
    )


def _sla_breaches() -> Column:
    return _counter("sla_breaches", "SLA breaches", "breaches of every kind")


def _segment_columns() -> tuple[Column, ...]:
    """The columns of the themes and channels presets (after the dimension)."""
    return (
        _counter("conversations_started", "started", "conversations started"),
        _counter("conversations_resolved", "resolved", "resolves (per cycle)"),
        Column(
            "resolution_rate",
            "resolution rate",
            FRACTION,
            "conversations_resolved / (conversations_started + conversations_reopened), "
            "SPEC §7 [24]; above 1 when the range holds resolves of older conversations",
            _ratio(
                ("conversations_resolved",), ("conversations_started", "conversations_reopened")
            ),
        ),
        _avg_first_response(),
        _p90_first_response(),
        _csat_percent(),
        Column(
            "nps",
            "NPS",
            SCORE,
            "(nps_promoters - nps_detractors) / (promoters + passives + detractors) × 100",
            _ratio(("nps_promoters",), _NPS_RESPONSES, minus=("nps_detractors",), scale=100.0),
        ),
        Column(
            "conversion_rate",
            "conversion rate",
            FRACTION,
            "converted_conversations / conversations_closed (SPEC §3)",
            _ratio(("converted_conversations",), ("conversations_closed",)),
        ),
        Column(
            "automation_rate",
            "automation rate",
            FRACTION,
            "automated_conversations / conversations_resolved (SPEC §3)",
            _ratio(("automated_conversations",), ("conversations_resolved",)),
        ),
        _sla_breaches(),
    )


AGENTS = Preset(
    name="agents",
    by=("agent",),
    title="Agents: workload, response times and satisfaction per agent",
    columns=(
        _text("agent", "the agent credited (SPEC §7 [27]); (none): no agent credited"),
        _counter("conversations_attended", "conversations", "conversations the agent wrote in"),
        Column(
            "distinct_customers",
            "customers",
            COUNT,
            "distinct_customers: customers of the observations credited to the agent",
            _take("distinct_customers"),
        ),
        _avg_first_response(),
        _avg_response(),
        _p90_first_response(),
        _counter("conversations_resolved", "resolved", "resolves credited to the agent"),
        *_satisfaction(),
        _csat_percent(),
        _sla_breaches(),
    ),
)

CUSTOMERS = Preset(
    name="customers",
    by=("customer",),
    title="Customers: conversations, response times and satisfaction per customer",
    columns=(
        _text("customer", "customer_id; (none): implicitly started conversations"),
        _counter("conversations_started", "conversations", "conversations started"),
        _avg_first_response(),
        _avg_response(),
        Column(
            "distinct_agents",
            "agents",
            COUNT,
            "distinct_agents: agents who wrote to the customer",
            _take("distinct_agents"),
        ),
        *_satisfaction(),
        _csat_percent(),
    ),
)

CONVERSATIONS = Preset(
    name="conversations",
    by=("conversation",),
    title="Conversations: one line per conversation",
    columns=(
        _text("conversation", "conversation_id"),
        _text("customer_id", "customer_id of conversation.started", "customer"),
        _text("customer_name", "customer_name of conversation.started, when given", "name"),
        _text("subject", "first customer message, 120 characters; only with store_text = true"),
        _text("status", "open, resolved or closed: the current status"),
        Column(
            "started_at", "started at", TIMESTAMP, "the conversation's start", _take("started_at")
        ),
        _text("channel", "channel of conversation.started (unknown if implicit)"),
        Column(
            "agents",
            "agents",
            TEXT,
            "agents who wrote, in order of first message, joined with ', '",
            _joined("agents"),
        ),
        Column(
            "avg_first_response_seconds",
            "first response",
            SECONDS,
            "first_response_seconds sum / count: the conversation's first response time "
            "(one observation); none without a first response",
            _mean("first_response_seconds"),
        ),
        _avg_response(),
        Column(
            "csat_score",
            "rating",
            "score 1..5",
            "latest CSAT rating (the csat_score attribute)",
            _take("csat_score"),
        ),
    ),
)

THEMES = Preset(
    name="themes",
    by=("theme",),
    title="Themes: volume, resolution, speed, satisfaction and sales per theme",
    columns=(
        _text("theme", "theme of conversation.started; (none): no theme"),
        *_segment_columns(),
    ),
)

CHANNELS = Preset(
    name="channels",
    by=("channel",),
    title="Channels: volume, resolution, speed, satisfaction and sales per channel",
    columns=(
        _text("channel", "channel of conversation.started (unknown if implicit)"),
        *_segment_columns(),
    ),
)

PRESETS: dict[str, Preset] = {
    preset.name: preset for preset in (AGENTS, CUSTOMERS, CONVERSATIONS, THEMES, CHANNELS)
}
"""Every preset by name, in the order `--preset` lists them."""
