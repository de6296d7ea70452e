"""The wall board's data shaping (`livemetrics.web.board`) and the HTTP layer's pure
helpers (`livemetrics.web.api`): no server, no Redis."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from livemetrics.aggregate.query import QueryError
from livemetrics.engine.gauges import GaugeKey
from livemetrics.events import format_ts
from livemetrics.web.api import bearer_token, report_filename, report_request, sse_frame
from livemetrics.web.board import (
    GAUGE_FIELDS,
    board_queries,
    board_range,
    build_board,
    csat_percent,
    live_document,
    report_fields,
    split_gauges,
)

CLOCK = 1_792_000_000_000_000


def _frt(p50: float, p90: float) -> dict[str, Any]:
    return {
        "count": 2,
        "sum": p50 + p90,
        "min": p50,
        "max": p90,
        "p50": p50,
        "p90": p90,
        "p99": p90,
    }


def _row(**fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "conversations_started": 0,
        "conversations_resolved": 0,
        "csat_satisfied": 0,
        "csat_neutral": 0,
        "csat_unsatisfied": 0,
        "sla_breaches": 0,
        "first_response_seconds": _frt(0, 0) | {"count": 0, "p50": None, "p90": None},
    }
    row.update(fields)
    return row


def _report(by: list[str], *rows: dict[str, Any]) -> dict[str, Any]:
    return {"by": by, "rows": list(rows)}


# --- ranges and queries ----------------------------------------------------------


def test_board_range_defaults_to_today_and_refuses_unknown_names() -> None:
    assert board_range(None) == "today"
    assert board_range("") == "today"
    assert board_range("this-week") == "this-week"
    with pytest.raises(QueryError, match="unknown range 'yesterday'"):
        board_range("yesterday")


def test_board_needs_one_report_per_level_because_percentiles_do_not_add() -> None:
    queries = board_queries("all")
    assert [q.by for q in queries] == [("tenant",), ("tenant", "team"), ("tenant", "channel")]
    assert {q.range_name for q in queries} == {"all"}


# --- report metrics ---------------------------------------------------------------


def test_csat_percent_is_satisfied_over_all_csat_responses() -> None:
    assert csat_percent(_row(csat_satisfied=3, csat_neutral=1, csat_unsatisfied=0)) == 75.0
    assert csat_percent(_row(csat_satisfied=2, csat_neutral=0, csat_unsatisfied=1)) == 66.7
    assert csat_percent(_row()) is None  # no responses: no ratio, not 0 %


def test_report_fields_of_a_missing_row_say_nothing_happened() -> None:
    assert report_fields(None) == {
        "conversations_started": 0,
        "conversations_resolved": 0,
        "first_response_p50": None,
        "first_response_p90": None,
        "csat_percent": None,
        "csat_responses": 0,
        "sla_breaches": 0,
    }
    fields = report_fields(_row(first_response_seconds=_frt(30.0, 95.5), sla_breaches=2))
    assert (fields["first_response_p50"], fields["first_response_p90"]) == (30.0, 95.5)
    assert fields["sla_breaches"] == 2


# --- gauges -------------------------------------------------------------------------


def test_split_gauges_sums_per_team_and_channel_and_keeps_the_oldest_wait() -> None:
    values = {
        GaugeKey("open_conversations", "acme", "t1", "chat"): 2,
        GaugeKey("open_conversations", "acme", "t1", "email"): 1,
        GaugeKey("open_conversations", "acme", None, "chat"): 4,
        GaugeKey("oldest_waiting_seconds", "acme", "t1", "chat"): 30.0,
        GaugeKey("oldest_waiting_seconds", "acme", None, "chat"): 90.0,
        GaugeKey("agents_online", "acme", "t1"): 3,
        GaugeKey("agent_active_conversations", "acme", "t1", agent="ag-1"): 2,
    }
    teams, channels = split_gauges(values)
    assert teams == {
        ("acme", "t1"): {
            "open_conversations": 3,
            "oldest_waiting_seconds": 30.0,
            "agents_online": 3,
        },
        ("acme", None): {"open_conversations": 4, "oldest_waiting_seconds": 90.0},
    }
    assert channels == {  # presence has no channel; per-agent gauges are not board rows
        ("acme", "chat"): {"open_conversations": 6, "oldest_waiting_seconds": 90.0},
        ("acme", "email"): {"open_conversations": 1},
    }


def test_unknown_gauges_are_none_never_a_reassuring_zero() -> None:
    board = build_board(
        _report(["tenant"], _row(tenant="acme")),
        _report(["tenant", "team"], _row(tenant="acme", team="t1")),
        _report(["tenant", "channel"]),
        {},
        None,
        clock_us=CLOCK,
        range_name="today",
    )
    (acme,) = board["tenants"]
    assert board["breakdown_gauges"] == "none"
    assert all(acme["total"][name] is None for name in GAUGE_FIELDS)
    assert all(acme["teams"][0][name] is None for name in GAUGE_FIELDS)


# --- the board --------------------------------------------------------------------------


def test_board_joins_reports_and_gauges_per_tenant_team_and_channel() -> None:
    tenant_report = _report(
        ["tenant"],
        _row(tenant=None, conversations_started=0),  # unreadable input: on no board
        _row(
            tenant="acme",
            conversations_started=5,
            csat_satisfied=1,
            csat_unsatisfied=1,
            first_response_seconds=_frt(20.0, 80.0),
            sla_breaches=1,
        ),
    )
    team_report = _report(
        ["tenant", "team"],
        _row(tenant="acme", team=None, conversations_started=5),
        _row(tenant="acme", team="t1", first_response_seconds=_frt(20.0, 80.0), sla_breaches=1),
    )
    channel_report = _report(["tenant", "channel"], _row(tenant="acme", channel="chat"))
    redis_gauges = {
        "acme": {"open_conversations": 7.0, "oldest_waiting_seconds": 12.345, "ts_us": CLOCK},
        "globex": {"agents_online": 2.0, "ts_us": CLOCK},  # only presence so far
    }
    engine_gauges = {
        GaugeKey("open_conversations", "acme", "t2", "email"): 2,
        GaugeKey("open_conversations", "acme", "t1", "chat"): 1,
    }
    board = build_board(
        tenant_report,
        team_report,
        channel_report,
        redis_gauges,
        engine_gauges,
        clock_us=CLOCK,
        range_name="today",
        breakdown_complete=False,
    )
    assert board["clock"] == format_ts(CLOCK)
    assert board["breakdown_gauges"] == "partial"
    assert board["gauges_source"] == "store"  # Redis holds every worker's partitions
    assert [t["tenant"] for t in board["tenants"]] == ["acme", "globex"]
    acme, globex = board["tenants"]
    assert acme["gauges_at"] == format_ts(CLOCK)
    assert acme["total"] | {} == {
        "open_conversations": 7,
        "waiting_first_response": 0,
        "oldest_waiting_seconds": 12.3,
        "unassigned_conversations": 0,
        "sla_at_risk": 0,
        "agents_online": 0,
        "conversations_started": 5,
        "conversations_resolved": 0,
        "first_response_p50": 20.0,
        "first_response_p90": 80.0,
        "csat_percent": 50.0,
        "csat_responses": 2,
        "sla_breaches": 1,
    }
    # t2 has open conversations but no observation yet; no team sorts last
    assert [(r["team"], r["open_conversations"]) for r in acme["teams"]] == [
        ("t1", 1),
        ("t2", 2),
        (None, 0),
    ]
    assert [r["channel"] for r in acme["channels"]] == ["chat", "email"]
    assert all(r["agents_online"] is None for r in acme["channels"])
    assert globex["total"]["agents_online"] == 2
    assert globex["total"]["conversations_started"] == 0
    assert globex["teams"] == [] and globex["channels"] == []
    orjson.dumps(board)  # the stream sends it as is


def test_a_worker_owning_every_partition_totals_its_own_fresher_gauges() -> None:
    engine_gauges = {
        GaugeKey("open_conversations", "acme", "t1", "chat"): 2,
        GaugeKey("open_conversations", "acme", None, "email"): 1,
        GaugeKey("oldest_waiting_seconds", "acme", "t1", "chat"): 40.0,
        GaugeKey("oldest_waiting_seconds", "acme", None, "email"): 75.0,
        GaugeKey("agents_online", "acme", "t1"): 2,
    }
    redis_gauges = {  # an older snapshot, and a tenant whose conversations all closed since
        "acme": {"open_conversations": 7.0, "ts_us": CLOCK - 2_000_000},
        "globex": {"open_conversations": 1.0, "ts_us": CLOCK - 2_000_000},
    }
    empty: dict[str, Any] = {"by": [], "rows": []}
    board = build_board(
        empty, empty, empty, redis_gauges, engine_gauges, clock_us=CLOCK, range_name="today"
    )
    assert board["gauges_source"] == "worker"
    acme, globex = board["tenants"]
    assert acme["gauges_at"] == format_ts(CLOCK)
    assert acme["total"]["open_conversations"] == 3
    assert acme["total"]["oldest_waiting_seconds"] == 75.0
    assert acme["total"]["agents_online"] == 2
    assert sum(r["open_conversations"] for r in acme["teams"]) == 3
    assert sum(r["open_conversations"] for r in acme["channels"]) == 3
    assert globex["total"]["open_conversations"] == 0


def test_a_board_of_an_empty_store_has_no_tenants_and_no_clock() -> None:
    empty: dict[str, Any] = {"by": [], "rows": []}
    board = build_board(empty, empty, empty, {}, {}, clock_us=0, range_name="all")
    assert board["tenants"] == []
    assert board["clock"] is None
    assert board["breakdown_gauges"] == "complete"


def test_live_document_splits_the_snapshot_time_from_the_gauges() -> None:
    document = live_document(
        {"globex": {"ts_us": CLOCK, "agents_online": 1.0}, "acme": {"open_conversations": 2.0}},
        CLOCK,
    )
    assert list(document["tenants"]) == ["acme", "globex"]
    assert document["tenants"]["globex"] == {
        "gauges_at": format_ts(CLOCK),
        "gauges": {"agents_online": 1.0},
    }
    assert document["tenants"]["acme"]["gauges_at"] is None
    assert live_document({}, 0) == {"clock_us": 0, "clock": None, "tenants": {}}


# --- HTTP helpers (pure parts of livemetrics.web.api) -------------------------------------


def test_report_options_follow_the_cli() -> None:
    request = report_request(
        [("by", "tenant"), ("by", "day"), ("where", "channel=chat"), ("tenant", "acme")]
    )
    query, fmt = request.query, request.fmt
    assert query.by == ("tenant", "day")
    assert query.where == (("channel", "chat"), ("tenant", "acme"))
    assert fmt == "json"
    request = report_request([("range", "this-week"), ("format", "xlsx"), ("token", "x")])
    query, fmt = request.query, request.fmt
    assert (query.by, query.range_name, fmt) == (("tenant",), "this-week", "xlsx")
    with pytest.raises(QueryError, match="unknown parameter 'groupby'"):
        report_request([("groupby", "tenant")])
    with pytest.raises(QueryError, match="'format' given more than once"):
        report_request([("format", "csv"), ("format", "json")])


def test_report_filename_names_grouping_and_range() -> None:
    query = report_request([("by", "tenant,team"), ("from", "2026-10-01")]).query
    assert (
        report_filename(query, "csv") == "livemetrics-report-by-tenant-team-2026-10-01-to-now.csv"
    )
    query = report_request([("range", "today")]).query
    assert report_filename(query, "xlsx") == "livemetrics-report-by-tenant-today.xlsx"


def test_bearer_token_reads_only_the_bearer_scheme() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None


def test_sse_frame_is_one_event_with_one_data_line() -> None:
    frame = sse_frame("board", orjson.dumps({"a": [1, 2]}), 7)
    assert frame == b'id: 7\nevent: board\ndata: {"a":[1,2]}\n\n'
