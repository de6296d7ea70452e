"""Grafana dashboards as code: this file writes `grafana/dashboards/*.json`.

    .venv/bin/python grafana/generate.py           # rewrite the JSON files
    .venv/bin/python grafana/generate.py --check   # exit 1 when they are stale

The JSON is committed (Grafana's file provisioning reads it, see
`grafana/provisioning/`) and `tests/unit/test_grafana_dashboards.py` fails when
it differs from what this file generates, so edit here, never in the JSON.
Plain Python, no dependency: panels are dicts built by small functions.

Every query reads the metrics the workers expose on `/metrics` (SPEC §3
"Names": `livemetrics_<metric>`, labels tenant, channel, team only) and the
template variables `$tenant`, `$team`, `$channel` (regexes, "All" = `.*`).
Ratios follow SPEC §3 and deploy/prometheus/rules/livemetrics-recording.yml:
components that may not exist yet (a tenant with no "neutral" rating) are
united with `or` so a ratio still shows.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

Json = dict[str, Any]

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE: Json = {"type": "prometheus", "uid": "${datasource}"}
JOB = "livemetrics-worker"
SCHEMA_VERSION = 39
GRID_WIDTH = 24

# Label filters of the template variables.
CONV = 'tenant=~"$tenant",team=~"$team",channel=~"$channel"'  # per-conversation series
AGENTS = 'tenant=~"$tenant",team=~"$team"'  # agents_online, agent_active_conversations
TENANT = 'tenant=~"$tenant"'
WORKER = f'job="{JOB}",instance=~"$instance"'

# SPEC §3 ratio components: (counter, weight in the numerator).
CSAT_PARTS = (("csat_satisfied", 1), ("csat_neutral", 0), ("csat_unsatisfied", 0))
NPS_PARTS = (("nps_promoters", 1), ("nps_passives", 0), ("nps_detractors", -1))


# -- PromQL ---------------------------------------------------------------------


def _sum(inner: str, by: Sequence[str] = ()) -> str:
    return f"sum by ({', '.join(by)}) ({inner})" if by else f"sum({inner})"


def counter(name: str, selector: str = CONV) -> str:
    """`livemetrics_<name>_total{selector}`."""
    return f"livemetrics_{name}_total{{{selector}}}"


def increase(
    name: str, window: str = "$__range", by: Sequence[str] = (), selector: str = CONV
) -> str:
    """How many times counter `name` counted in `window`, summed by `by`."""
    return _sum(f"increase({counter(name, selector)}[{window}])", by)


def gauge(name: str, by: Sequence[str] = (), selector: str = CONV, how: str = "sum") -> str:
    inner = f"livemetrics_{name}{{{selector}}}"
    return f"{how} by ({', '.join(by)}) ({inner})" if by else f"{how}({inner})"


def quantile(
    q: float,
    distribution: str,
    window: str = "$window",
    by: Sequence[str] = (),
    selector: str = CONV,
    fn: str = "rate",
) -> str:
    """`histogram_quantile` of a SPEC distribution exported as a histogram."""
    buckets = f"{fn}(livemetrics_{distribution}_bucket{{{selector}}}[{window}])"
    return f"histogram_quantile({q}, {_sum(buckets, (*by, 'le'))})"


def union_sum(
    parts: Sequence[tuple[str, int]],
    window: str,
    by: Sequence[str],
    weighted: bool,
    selector: str = CONV,
) -> str:
    """Sum of several counters' increases that works when some do not exist yet.

    Each part is tagged with its own label value and united with `or`;
    `a + b` would drop a tenant without `b`, and one selector over several
    names fails once rate() drops the names.
    """
    terms = []
    for name, weight in parts:
        series = f"increase({counter(name, selector)}[{window}])"
        if weighted and weight != 1:
            series = f"{weight} * {series}"
        terms.append(f'label_replace({series}, "part", "{name}", "", "")')
    return _sum(" or ".join(terms), by)


def ratio(
    numerator: str, denominator: str, window: str = "$__range", by: Sequence[str] = ()
) -> str:
    """`(N or 0 * D) / D` over `window`: 0 rather than nothing when N never counted."""
    den = increase(denominator, window, by)
    return f"({increase(numerator, window, by)} or 0 * {den}) / {den}"


def csat_percent(window: str = "$__range", by: Sequence[str] = ()) -> str:
    """CSAT % = satisfied / (satisfied + neutral + unsatisfied) x 100 (SPEC §3)."""
    return (
        f"100 * {union_sum(CSAT_PARTS, window, by, weighted=True)}"
        f" / {union_sum(CSAT_PARTS, window, by, weighted=False)}"
    )


def nps(window: str = "$__range", by: Sequence[str] = ()) -> str:
    """NPS = (promoters - detractors) / (promoters + passives + detractors) x 100."""
    return (
        f"100 * {union_sum(NPS_PARTS, window, by, weighted=True)}"
        f" / {union_sum(NPS_PARTS, window, by, weighted=False)}"
    )


def resolution_rate(window: str = "$__range", by: Sequence[str] = ()) -> str:
    """Resolved / (started + reopened) (SPEC §7 [24])."""
    started = (("conversations_started", 1), ("conversations_reopened", 1))
    den = union_sum(started, window, by, weighted=False)
    resolved = increase("conversations_resolved", window, by)
    return f"({resolved} or 0 * {den}) / {den}"


# -- panels ---------------------------------------------------------------------


def target(expr: str, legend: str = "", *, instant: bool = False, table: bool = False) -> Json:
    out: Json = {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
    if instant:
        out.update(instant=True, range=False)
    else:
        out.update(instant=False, range=True)
    if table:
        out["format"] = "table"
    return out


def thresholds(*steps: tuple[str, float | None]) -> Json:
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for c, v in steps]}


GREEN = thresholds(("green", None))


def _panel(
    kind: str,
    title: str,
    description: str,
    targets: Sequence[Json],
    unit: str,
    size: tuple[int, int],
    limits: Json,
    options: Json,
    custom: Json | None = None,
) -> Json:
    defaults: Json = {"unit": unit, "thresholds": limits, "color": {"mode": "thresholds"}}
    if custom is not None:
        defaults["custom"] = custom
        defaults["color"] = {"mode": "palette-classic"}
    return {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "gridPos": {"h": size[1], "w": size[0], "x": 0, "y": 0},
        "targets": [{**t, "refId": chr(ord("A") + i)} for i, t in enumerate(targets)],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
    }


def _reduce(calc: str = "lastNotNull") -> Json:
    return {"calcs": [calc], "fields": "", "values": False}


def stat(
    title: str,
    description: str,
    targets: Sequence[Json],
    unit: str = "short",
    limits: Json = GREEN,
    size: tuple[int, int] = (3, 4),
    mappings: Sequence[Json] = (),
    decimals: int | None = None,
) -> Json:
    panel = _panel(
        "stat",
        title,
        description,
        targets,
        unit,
        size,
        limits,
        {
            "reduceOptions": _reduce(),
            "orientation": "auto",
            "textMode": "auto",
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
        },
    )
    if mappings:
        panel["fieldConfig"]["defaults"]["mappings"] = list(mappings)
    if decimals is not None:
        panel["fieldConfig"]["defaults"]["decimals"] = decimals
    return panel


def timeseries(
    title: str,
    description: str,
    targets: Sequence[Json],
    unit: str = "short",
    size: tuple[int, int] = (12, 8),
    dashed: str | None = None,
    stacked: bool = False,
) -> Json:
    custom = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 10,
        "showPoints": "never",
        "spanNulls": False,
        "stacking": {"mode": "normal" if stacked else "none", "group": "A"},
    }
    panel = _panel(
        "timeseries",
        title,
        description,
        targets,
        unit,
        size,
        GREEN,
        {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        custom,
    )
    if dashed is not None:
        panel["fieldConfig"]["overrides"].append(
            {
                "matcher": {"id": "byRegexp", "options": dashed},
                "properties": [
                    {
                        "id": "custom.lineStyle",
                        "value": {"fill": "dash", "dash": [10, 10]},
                    },
                    {"id": "custom.fillOpacity", "value": 0},
                ],
            }
        )
    return panel


def bars(
    title: str,
    description: str,
    targets: Sequence[Json],
    unit: str = "short",
    limits: Json = GREEN,
    size: tuple[int, int] = (8, 8),
    low: float | None = None,
    high: float | None = None,
) -> Json:
    panel = _panel(
        "bargauge",
        title,
        description,
        targets,
        unit,
        size,
        limits,
        {
            "reduceOptions": _reduce(),
            "orientation": "horizontal",
            "displayMode": "gradient",
            "showUnfilled": True,
            "minVizHeight": 10,
            "minVizWidth": 0,
        },
    )
    if low is not None:
        panel["fieldConfig"]["defaults"]["min"] = low
    if high is not None:
        panel["fieldConfig"]["defaults"]["max"] = high
    return panel


def table(
    title: str,
    description: str,
    columns: Sequence[tuple[str, str, str]],
    by: str,
    size: tuple[int, int] = (24, 9),
) -> Json:
    """One row per `by` value, one column per (header, expression, unit)."""
    targets = [target(expr, header, instant=True, table=True) for header, expr, _ in columns]
    panel = _panel(
        "table",
        title,
        description,
        targets,
        "short",
        size,
        GREEN,
        {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
    )
    renames = {f"Value #{chr(ord('A') + i)}": header for i, (header, _, _) in enumerate(columns)}
    panel["transformations"] = [
        {"id": "merge", "options": {}},
        {
            "id": "organize",
            "options": {
                "excludeByName": {"Time": True},
                "indexByName": {by: 0},
                "renameByName": renames,
            },
        },
    ]
    panel["fieldConfig"]["overrides"] = [
        {
            "matcher": {"id": "byName", "options": header},
            "properties": [{"id": "unit", "value": unit}],
        }
        for header, _, unit in columns
    ]
    return panel


def row(title: str) -> Json:
    return {
        "type": "row",
        "title": title,
        "collapsed": False,
        "panels": [],
        "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": 0},
    }


def _layout(items: Sequence[Json]) -> list[Json]:
    """Place panels left to right, wrapping at the grid width; rows start a new line."""
    x = y = line_height = 0
    placed = []
    for number, item in enumerate(items, start=1):
        panel = {"id": number, **item}
        grid = dict(panel["gridPos"])
        if panel["type"] == "row" or x + grid["w"] > GRID_WIDTH:
            y += line_height
            x = line_height = 0
        grid["x"], grid["y"] = x, y
        panel["gridPos"] = grid
        placed.append(panel)
        if panel["type"] == "row":
            y += grid["h"]
            continue
        x += grid["w"]
        line_height = max(line_height, grid["h"])
    return placed


# -- template variables -----------------------------------------------------------


def datasource_variable() -> Json:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
    }


def query_variable(name: str, label: str, query: str) -> Json:
    """A multi-value variable filled from `label_values(...)`; "All" is the regex `.*`."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-values"},
        "refresh": 2,
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "sort": 1,
        "hide": 0,
        "regex": "",
        "skipUrlSync": False,
    }


def window_variable() -> Json:
    """The smoothing window of percentiles and rates drawn over time."""
    choices = ("5m", "15m", "30m", "1h")
    return {
        "name": "window",
        "label": "Window",
        "type": "custom",
        "query": ",".join(choices),
        "current": {"selected": True, "text": "15m", "value": "15m"},
        "options": [
            {"selected": value == "15m", "text": value, "value": value} for value in choices
        ],
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "skipUrlSync": False,
    }


def conversation_variables() -> list[Json]:
    return [
        datasource_variable(),
        query_variable(
            "tenant", "Tenant", "label_values(livemetrics_conversations_started_total, tenant)"
        ),
        query_variable(
            "team",
            "Team",
            'label_values({__name__=~"livemetrics_agents_online|livemetrics_open_conversations'
            '|livemetrics_agent_messages_total",tenant=~"$tenant"}, team)',
        ),
        query_variable(
            "channel",
            "Channel",
            'label_values(livemetrics_conversations_started_total{tenant=~"$tenant"}, channel)',
        ),
        window_variable(),
    ]


def dashboard(
    uid: str, title: str, description: str, variables: list[Json], panels: list[Json]
) -> Json:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["livemetrics"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "10s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "annotations": {"list": []},
        "links": [
            {
                "title": "livemetrics",
                "type": "dashboards",
                "tags": ["livemetrics"],
                "asDropdown": True,
                "includeVars": False,
                "keepTime": True,
                "icon": "external link",
                "targetBlank": False,
                "tooltip": "",
                "url": "",
            }
        ],
        "templating": {"list": variables},
        "panels": _layout(panels),
    }


# -- the dashboards ---------------------------------------------------------------


def operations() -> Json:
    """The wall board: what is happening now, and how the day goes."""
    sla_target = (
        'max by (tenant, channel, business) (livemetrics_sla_target_seconds{tenant=~"$tenant",'
        'kind="first_response",channel=~"$channel|[*]"})'
    )
    open_closed = [
        {"type": "value", "options": {"0": {"text": "closed", "color": "red"}}},
        {"type": "value", "options": {"1": {"text": "open", "color": "green"}}},
    ]
    panels = [
        row("Now"),
        stat(
            "Open conversations",
            "Conversations not closed (SPEC §3 open_conversations).",
            [target(gauge("open_conversations"))],
        ),
        stat(
            "Waiting for first response",
            "Conversations waiting for their first human answer.",
            [target(gauge("waiting_first_response"))],
            limits=thresholds(("green", None), ("orange", 10), ("red", 25)),
        ),
        stat(
            "Awaiting agent reply",
            "Conversations where the customer spoke last.",
            [target(gauge("awaiting_agent_reply"))],
        ),
        stat(
            "Unassigned",
            "Open conversations with no agent or group assigned.",
            [target(gauge("unassigned_conversations"))],
        ),
        stat(
            "Oldest wait",
            "How long the longest-waiting conversation has waited for a first human answer.",
            [target(gauge("oldest_waiting_seconds", how="max"))],
            unit="s",
            limits=thresholds(("green", None), ("orange", 300), ("red", 1800)),
        ),
        stat(
            "SLA at risk",
            "Conversations past 80 % of an SLA target with no answer (SPEC §4).",
            [target(gauge("sla_at_risk"))],
            limits=thresholds(("green", None), ("orange", 1), ("red", 5)),
        ),
        stat(
            "Agents online",
            "Agents whose latest presence is online.",
            [target(gauge("agents_online", selector=AGENTS))],
            limits=thresholds(("red", None), ("green", 1)),
        ),
        stat(
            "Service hours",
            "Whether each tenant's configured service hours are open now.",
            [
                target(
                    gauge("service_open", by=("tenant",), selector=TENANT, how="max"), "{{tenant}}"
                )
            ],
            mappings=open_closed,
            limits=thresholds(("red", None), ("green", 1)),
        ),
        row("Response times"),
        timeseries(
            "First response time p50 / p90 against the target",
            "Percentiles over the window, and the configured first_response targets "
            "(dashed; business=true targets count service-hours seconds only).",
            [
                target(quantile(0.5, "first_response_seconds"), "p50"),
                target(quantile(0.9, "first_response_seconds"), "p90"),
                target(sla_target, "target {{tenant}} {{channel}} business={{business}}"),
            ],
            unit="s",
            dashed="/^target/",
        ),
        timeseries(
            "First response time p90 by channel",
            "90th percentile of first response time over the window, per channel.",
            [target(quantile(0.9, "first_response_seconds", by=("channel",)), "{{channel}}")],
            unit="s",
        ),
        timeseries(
            "Response time p50 / p90",
            "Every answered customer turn (SPEC §3 response_seconds).",
            [
                target(quantile(0.5, "response_seconds"), "p50"),
                target(quantile(0.9, "response_seconds"), "p90"),
            ],
            unit="s",
        ),
        timeseries(
            "Queue wait p90 by team",
            "Time from waiting to the first assignment to a human agent.",
            [target(quantile(0.9, "queue_wait_seconds", by=("team",)), "{{team}}")],
            unit="s",
        ),
        row("Selected time range"),
        stat(
            "CSAT",
            "Satisfied (4-5) / all CSAT ratings x 100.",
            [target(csat_percent(), instant=True)],
            unit="percent",
            limits=thresholds(("red", None), ("orange", 70), ("green", 85)),
            decimals=1,
        ),
        stat(
            "NPS",
            "(Promoters - detractors) / NPS responses x 100.",
            [target(nps(), instant=True)],
            unit="none",
            limits=thresholds(("red", None), ("orange", 0), ("green", 30)),
            decimals=0,
        ),
        stat(
            "Conversations started",
            "New conversations in the time range.",
            [target(f"{increase('conversations_started')} or vector(0)", instant=True)],
            decimals=0,
        ),
        stat(
            "Resolved",
            "Resolutions in the time range (a reopened conversation resolves again).",
            [target(f"{increase('conversations_resolved')} or vector(0)", instant=True)],
            decimals=0,
        ),
        stat(
            "First-response rate",
            "Agent contacts that got the agent's response / agent contacts.",
            [target(ratio("agent_contacts_with_response", "agent_contacts"), instant=True)],
            unit="percentunit",
        ),
        stat(
            "Conversion",
            "Conversations with a transaction / closed conversations.",
            [target(ratio("converted_conversations", "conversations_closed"), instant=True)],
            unit="percentunit",
        ),
        stat(
            "Automation",
            "Resolved with no human agent message / resolved.",
            [target(ratio("automated_conversations", "conversations_resolved"), instant=True)],
            unit="percentunit",
        ),
        stat(
            "Resolution rate",
            "Resolved / (started + reopened) (SPEC §7 [24]).",
            [target(resolution_rate(), instant=True)],
            unit="percentunit",
        ),
        row("SLA"),
        stat(
            "SLA breaches",
            "Breaches in the time range, all kinds. Retracted breaches stay counted "
            "(SPEC §7 [53]); reports show the final decision.",
            [target(f"{increase('sla_breaches')} or vector(0)", instant=True)],
            limits=thresholds(("green", None), ("red", 1)),
            size=(4, 8),
            decimals=0,
        ),
        timeseries(
            "SLA breaches by kind",
            "Breaches within each window.",
            [target(increase("sla_breaches", "$window", ("kind",)), "{{kind}}")],
            size=(10, 8),
        ),
        timeseries(
            "SLA at risk by team",
            "Conversations past 80 % of a target with no answer.",
            [target(gauge("sla_at_risk", by=("team",)), "{{team}}")],
            size=(10, 8),
        ),
        row("By team and channel"),
        timeseries(
            "Open conversations by team",
            "Team of the latest assignment.",
            [target(gauge("open_conversations", by=("team",)), "{{team}}")],
            size=(8, 8),
        ),
        timeseries(
            "Waiting for first response by channel",
            "Conversations waiting for their first human answer.",
            [target(gauge("waiting_first_response", by=("channel",)), "{{channel}}")],
            size=(8, 8),
        ),
        timeseries(
            "Oldest wait by team",
            "Longest current wait for a first human answer.",
            [target(gauge("oldest_waiting_seconds", by=("team",), how="max"), "{{team}}")],
            unit="s",
            size=(8, 8),
        ),
        timeseries(
            "Agents online by team",
            "Presence from chat.agent-status.",
            [target(gauge("agents_online", by=("team",), selector=AGENTS), "{{team}}")],
            size=(8, 8),
        ),
        bars(
            "CSAT by channel",
            "CSAT % over the time range.",
            [target(csat_percent(by=("channel",)), "{{channel}}", instant=True)],
            unit="percent",
            limits=thresholds(("red", None), ("orange", 70), ("green", 85)),
            low=0,
            high=100,
        ),
        bars(
            "Conversations started by channel",
            "New conversations over the time range.",
            [
                target(
                    increase("conversations_started", by=("channel",)), "{{channel}}", instant=True
                )
            ],
        ),
        row("Volume, tags and sales"),
        timeseries(
            "Messages per minute",
            "Messages by sender over the window.",
            [
                target(f"60 * sum(rate({counter(f'{sender}_messages')}[$window]))", sender)
                for sender in ("customer", "agent", "bot")
            ],
            size=(8, 8),
        ),
        bars(
            "Tags",
            "Tags applied in the time range (tags outside the config's prometheus_tags "
            "are counted as other).",
            [target(increase("tag_count", by=("tag",)), "{{tag}}", instant=True)],
            size=(6, 8),
        ),
        bars(
            "Sales by currency",
            "Sum of transaction amounts in the time range.",
            [
                target(
                    _sum(
                        f"increase(livemetrics_transaction_amount_sum{{{CONV}}}[$__range])",
                        ("currency",),
                    ),
                    "{{currency}}",
                    instant=True,
                )
            ],
            size=(6, 8),
        ),
        stat(
            "Unanswered",
            "Conversations closed while still waiting for a first human response.",
            [target(f"{increase('unanswered_conversations')} or vector(0)", instant=True)],
            limits=thresholds(("green", None), ("orange", 1)),
            size=(2, 8),
            decimals=0,
        ),
        stat(
            "CES",
            "Average customer effort score (1-7) in the time range.",
            [
                target(
                    f"{_sum(f'increase(livemetrics_ces_score_sum{{{CONV}}}[$__range])')}"
                    f" / {_sum(f'increase(livemetrics_ces_score_count{{{CONV}}}[$__range])')}",
                    instant=True,
                )
            ],
            unit="none",
            size=(2, 8),
            decimals=1,
        ),
    ]
    return dashboard(
        "livemetrics-operations",
        "livemetrics / Operations",
        "Contact-centre wall board: live queue, response times, satisfaction and SLA.",
        conversation_variables(),
        panels,
    )


def teams() -> Json:
    """Team performance: the finest grain the bounded labels allow (no agent label)."""
    by = ("team",)
    panels = [
        row("Staffing now"),
        timeseries(
            "Agents online by team",
            "Presence from chat.agent-status.",
            [target(gauge("agents_online", by=by, selector=AGENTS), "{{team}}")],
            size=(8, 8),
        ),
        timeseries(
            "Active conversations by team",
            "Conversations currently handled by the team's agents.",
            [target(gauge("agent_active_conversations", by=by, selector=AGENTS), "{{team}}")],
            size=(8, 8),
        ),
        timeseries(
            "Active conversations per online agent",
            "Load: active conversations / agents online, per team.",
            [
                target(
                    f"{gauge('agent_active_conversations', by=by, selector=AGENTS)}"
                    f" / {gauge('agents_online', by=by, selector=AGENTS)}",
                    "{{team}}",
                )
            ],
            size=(8, 8),
        ),
        row("Workload over the time range"),
        bars(
            "Conversations resolved",
            "Resolutions credited to the team of the latest assignment.",
            [target(increase("conversations_resolved", by=by), "{{team}}", instant=True)],
            size=(6, 8),
        ),
        bars(
            "Agent responses",
            "Agent turns (SPEC §3 agent_responses).",
            [target(increase("agent_responses", by=by), "{{team}}", instant=True)],
            size=(6, 8),
        ),
        bars(
            "Conversations attended",
            "Distinct (agent, conversation) pairs where the agent wrote.",
            [target(increase("conversations_attended", by=by), "{{team}}", instant=True)],
            size=(6, 8),
        ),
        bars(
            "Transfers",
            "Transfers to another agent and to a group.",
            [
                target(increase("transfers_to_agent", by=by), "{{team}} to agent", instant=True),
                target(increase("transfers_to_group", by=by), "{{team}} to group", instant=True),
            ],
            size=(6, 8),
        ),
        row("Speed over the time range"),
        bars(
            "First response time p90",
            "90th percentile over the time range.",
            [
                target(
                    quantile(0.9, "first_response_seconds", "$__range", by, fn="increase"),
                    "{{team}}",
                    instant=True,
                )
            ],
            unit="s",
        ),
        bars(
            "Agent first response p50",
            "An agent's first message after being assigned (SPEC §3).",
            [
                target(
                    quantile(0.5, "agent_first_response_seconds", "$__range", by, fn="increase"),
                    "{{team}}",
                    instant=True,
                )
            ],
            unit="s",
        ),
        bars(
            "Handle time p50",
            "First human assignment to resolve or close, per cycle.",
            [
                target(
                    quantile(0.5, "handle_seconds", "$__range", by, fn="increase"),
                    "{{team}}",
                    instant=True,
                )
            ],
            unit="s",
        ),
        timeseries(
            "Response time p90 by team",
            "Every answered customer turn, over the window.",
            [target(quantile(0.9, "response_seconds", by=by), "{{team}}")],
            unit="s",
        ),
        bars(
            "Resolution time p50",
            "Start (or reopen) to resolve.",
            [
                target(
                    quantile(0.5, "resolution_seconds", "$__range", by, fn="increase"),
                    "{{team}}",
                    instant=True,
                )
            ],
            unit="s",
            size=(6, 8),
        ),
        bars(
            "Focus time p50",
            "Length of agents' focus windows on a conversation.",
            [
                target(
                    quantile(0.5, "focus_seconds", "$__range", by, fn="increase"),
                    "{{team}}",
                    instant=True,
                )
            ],
            unit="s",
            size=(6, 8),
        ),
        row("Quality over the time range"),
        bars(
            "CSAT",
            "Satisfied / all CSAT ratings x 100. A rating counts for the team of the "
            "latest assignment.",
            [target(csat_percent(by=by), "{{team}}", instant=True)],
            unit="percent",
            limits=thresholds(("red", None), ("orange", 70), ("green", 85)),
            low=0,
            high=100,
        ),
        bars(
            "NPS",
            "(Promoters - detractors) / NPS responses x 100.",
            [target(nps(by=by), "{{team}}", instant=True)],
            unit="none",
            limits=thresholds(("red", None), ("orange", 0), ("green", 30)),
            low=-100,
            high=100,
        ),
        bars(
            "First-response rate",
            "Agent contacts answered by the assigned agent / agent contacts.",
            [
                target(
                    ratio("agent_contacts_with_response", "agent_contacts", by=by),
                    "{{team}}",
                    instant=True,
                )
            ],
            unit="percentunit",
            low=0,
            high=1,
        ),
        bars(
            "Conversion",
            "Conversations with a transaction / closed conversations.",
            [
                target(
                    ratio("converted_conversations", "conversations_closed", by=by),
                    "{{team}}",
                    instant=True,
                )
            ],
            unit="percentunit",
            low=0,
            high=1,
        ),
        bars(
            "SLA breaches",
            "Breaches by team and kind (team as it was at the deadline, SPEC §7 [42]).",
            [
                target(
                    increase("sla_breaches", by=("team", "kind")),
                    "{{team}} {{kind}}",
                    instant=True,
                )
            ],
            limits=thresholds(("green", None), ("red", 1)),
        ),
        bars(
            "Sessions",
            "Live sessions (customer and agent both wrote) and one-sided ones.",
            [
                target(increase("live_sessions", by=by), "{{team}} live", instant=True),
                target(increase("one_sided_sessions", by=by), "{{team}} one-sided", instant=True),
            ],
        ),
        row("Summary"),
        table(
            "Teams",
            "One row per team over the time range.",
            [
                ("Resolved", increase("conversations_resolved", by=by), "short"),
                ("Agent responses", increase("agent_responses", by=by), "short"),
                (
                    "FRT p90",
                    quantile(0.9, "first_response_seconds", "$__range", by, fn="increase"),
                    "s",
                ),
                ("CSAT", csat_percent(by=by), "percent"),
                ("SLA breaches", increase("sla_breaches", by=by), "short"),
            ],
            "team",
        ),
    ]
    return dashboard(
        "livemetrics-teams",
        "livemetrics / Teams",
        "Team performance. Prometheus labels stop at team (no agent label, SPEC §3 "
        "Names); per-agent numbers are in `livemetrics report --by agent`.",
        conversation_variables(),
        panels,
    )


def pipeline() -> Json:
    """Pipeline health: throughput, dead letters, lag, batch time, event clock, partitions."""
    events = f"livemetrics_input_events_total{{{WORKER}}}"
    dead = f'livemetrics_input_events_total{{{WORKER},outcome="dead_lettered"}}'
    lag = f"max by (topic, partition) (livemetrics_consumer_lag{{{WORKER}}})"
    batch = f"rate(livemetrics_batch_seconds_bucket{{{WORKER}}}[$__rate_interval])"
    panels = [
        row("Health"),
        stat(
            "Workers up",
            "Workers Prometheus scraped successfully.",
            [target(f'sum(up{{job="{JOB}"}})')],
            limits=thresholds(("red", None), ("green", 1)),
            size=(4, 4),
        ),
        stat(
            "Input events/s",
            "Records read from the input topics, every outcome.",
            [target(f"sum(rate({events}[$__rate_interval]))")],
            unit="ops",
            size=(4, 4),
        ),
        stat(
            "Consumer lag",
            "Records not yet processed, all input partitions.",
            [target(f"sum({lag})")],
            limits=thresholds(("green", None), ("orange", 1000), ("red", 10000)),
            size=(4, 4),
        ),
        stat(
            "Dead letters",
            "Records sent to chat.events.dlq in the time range.",
            [target(f"sum(increase({dead}[$__range])) or vector(0)", instant=True)],
            limits=thresholds(("green", None), ("orange", 1)),
            size=(4, 4),
            decimals=0,
        ),
        stat(
            "Event clock delay",
            "Wall clock minus the workers' event clock (the latest event time, "
            "advanced by the wall clock while there is no lag).",
            [target(f"time() - max(livemetrics_event_clock_seconds{{{WORKER}}})")],
            unit="s",
            limits=thresholds(("green", None), ("orange", 60), ("red", 600)),
            size=(4, 4),
        ),
        stat(
            "Owned partitions",
            "Input partitions owned by the workers, all topics.",
            [target(f"sum(livemetrics_owned_partitions{{{WORKER}}})")],
            size=(4, 4),
        ),
        stat(
            "Redis snapshots waiting",
            "Snapshots the workers hold because Redis refused them (0 when Redis keeps up; "
            "reports and boards read from Redis are stale meanwhile).",
            [target(f"sum(livemetrics_redis_pending_snapshots{{{WORKER}}})")],
            limits=thresholds(("green", None), ("red", 1)),
            size=(4, 4),
        ),
        row("Throughput"),
        timeseries(
            "Input events/s by outcome",
            "processed, dead_lettered (invalid input, SPEC §1), duplicate (repeated event_id).",
            [
                target(
                    f"sum by (topic, outcome) (rate({events}[$__rate_interval]))",
                    "{{topic}} {{outcome}}",
                )
            ],
            unit="ops",
            size=(8, 8),
        ),
        timeseries(
            "Dead-letter ratio",
            "Share of input records dead-lettered.",
            [
                target(
                    f"(sum by (topic) (rate({dead}[$__rate_interval]))"
                    f" or 0 * sum by (topic) (rate({events}[$__rate_interval])))"
                    f" / sum by (topic) (rate({events}[$__rate_interval]))",
                    "{{topic}}",
                )
            ],
            unit="percentunit",
            size=(8, 8),
        ),
        timeseries(
            "Invalid, late and duplicate events/s",
            "SPEC counters invalid_events, late_events, duplicate_events per tenant.",
            [
                target(
                    f"sum by (tenant) (rate(livemetrics_{name}_total{{{WORKER}}}"
                    "[$__rate_interval]))",
                    f"{{{{tenant}}}} {name.removesuffix('_events')}",
                )
                for name in ("invalid_events", "late_events", "duplicate_events")
            ],
            unit="ops",
            size=(8, 8),
        ),
        row("Lag and clock"),
        timeseries(
            "Consumer lag by topic",
            "Records behind the partition end, summed per topic.",
            [target(f"sum by (topic) ({lag})", "{{topic}}")],
            size=(8, 8),
        ),
        timeseries(
            "Consumer lag by partition",
            "Records behind the partition end.",
            [target(lag, "{{topic}}/{{partition}}")],
            size=(8, 8),
        ),
        timeseries(
            "Event clock delay by worker",
            "Wall clock minus each worker's event clock.",
            [
                target(
                    f"time() - livemetrics_event_clock_seconds{{{WORKER}}}",
                    "{{instance}}",
                )
            ],
            unit="s",
            size=(8, 8),
        ),
        row("Batches"),
        timeseries(
            "Batch time p50 / p99",
            "Time to process one batch (decode, engine, sinks).",
            [
                target(f"histogram_quantile(0.5, sum by (le) ({batch}))", "p50"),
                target(f"histogram_quantile(0.99, sum by (le) ({batch}))", "p99"),
            ],
            unit="s",
            size=(8, 8),
        ),
        timeseries(
            "Batches/s by worker",
            "Batches processed per second.",
            [
                target(
                    "sum by (instance) (rate(livemetrics_batch_seconds_count"
                    f"{{{WORKER}}}[$__rate_interval]))",
                    "{{instance}}",
                )
            ],
            unit="ops",
            size=(8, 8),
        ),
        timeseries(
            "Average batch time by worker",
            "Batch seconds / batches.",
            [
                target(
                    "sum by (instance) (rate(livemetrics_batch_seconds_sum"
                    f"{{{WORKER}}}[$__rate_interval])) / sum by (instance) "
                    f"(rate(livemetrics_batch_seconds_count{{{WORKER}}}[$__rate_interval]))",
                    "{{instance}}",
                )
            ],
            unit="s",
            size=(8, 8),
        ),
        row("Workers"),
        timeseries(
            "Owned partitions by worker",
            "Input partitions each worker owns; they move on a rebalance.",
            [
                target(
                    f"sum by (instance, topic) (livemetrics_owned_partitions{{{WORKER}}})",
                    "{{instance}} {{topic}}",
                )
            ],
            size=(6, 8),
        ),
        timeseries(
            "Resident memory",
            "Worker process memory.",
            [target(f"process_resident_memory_bytes{{{WORKER}}}", "{{instance}}")],
            unit="bytes",
            size=(6, 8),
        ),
        timeseries(
            "CPU",
            "Worker process CPU, in cores.",
            [
                target(
                    f"rate(process_cpu_seconds_total{{{WORKER}}}[$__rate_interval])",
                    "{{instance}}",
                )
            ],
            unit="short",
            size=(6, 8),
        ),
        timeseries(
            "Scrape duration",
            "How long /metrics takes to answer.",
            [target(f"scrape_duration_seconds{{{WORKER}}}", "{{instance}}")],
            unit="s",
            size=(6, 8),
        ),
    ]
    variables = [
        datasource_variable(),
        query_variable("instance", "Worker", f'label_values(up{{job="{JOB}"}}, instance)'),
    ]
    return dashboard(
        "livemetrics-pipeline",
        "livemetrics / Pipeline",
        "Health of the live pipeline: throughput, dead letters, lag, batch time, event "
        "clock, partition ownership.",
        variables,
        panels,
    )


# -- output -----------------------------------------------------------------------


def build_dashboards() -> dict[str, Json]:
    """File name -> dashboard, in a fixed order."""
    return {
        "livemetrics-operations.json": operations(),
        "livemetrics-teams.json": teams(),
        "livemetrics-pipeline.json": pipeline(),
    }


def render(board: Json) -> str:
    """The committed text of a dashboard: stable key order, 2-space indent, final newline."""
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def iter_panels(board: Json) -> Iterator[Json]:
    """Every panel, rows included, and the panels of collapsed rows."""
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def iter_expressions(board: Json) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL expression) of every query target."""
    for panel in iter_panels(board):
        for query in panel.get("targets", []):
            yield panel["title"], query["expr"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DASHBOARDS_DIR, help="where to write")
    parser.add_argument("--check", action="store_true", help="exit 1 if the files are stale")
    args = parser.parse_args(argv)
    stale = []
    for name, board in build_dashboards().items():
        path = args.output / name
        text = render(board)
        if args.check:
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                stale.append(str(path))
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    if stale:
        print(f"stale, run grafana/generate.py: {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
