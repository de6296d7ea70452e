"""Presets (agents, customers, conversations, themes, channels): columns derived from the report.

Each preset is checked against the SPEC §5 report rows it came from, on a
generated stream (`generate_stream` + `STREAM_CONFIG`), and on hand-made rows
for rounding and empty denominators. The formulas are written out here again
on purpose: the test is an independent statement of each column.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

import openpyxl
import orjson
import pytest

from livemetrics.aggregate.formats import FORMATS, TABLE_WIDTH, render
from livemetrics.aggregate.presets import PRESETS, apply_preset, preset_query
from livemetrics.aggregate.query import QueryError, ReportQuery
from livemetrics.config import Config, parse_config
from livemetrics.replay import ReplayResult, replay_lines
from livemetrics.simulate.streams import STREAM_CONFIG, generate_stream

SEED = 11
CONVERSATIONS = 120
EMPTY = {"count": 0, "sum": 0.0, "min": None, "max": None, "p50": None, "p90": None, "p99": None}


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    return generate_stream(SEED, conversations=CONVERSATIONS)


@pytest.fixture(scope="module")
def config() -> Config:
    assert "store_text = true" in STREAM_CONFIG
    return parse_config(STREAM_CONFIG)


@pytest.fixture(scope="module")
def replayed(lines: list[bytes], config: Config) -> ReplayResult:
    return replay_lines(lines, config)


def _report(result: ReplayResult, config: Config, name: str) -> dict[str, Any]:
    return result.report(config, preset_query(name, ReportQuery()))


def _pairs(
    name: str, report: Mapping[str, Any], preset: Mapping[str, Any]
) -> list[tuple[Mapping[str, Any], Mapping[str, Any]]]:
    """(preset row, report row) by dimension value; every preset row has its report row."""
    (dimension,) = PRESETS[name].by
    by_value = {row[dimension]: row for row in report["rows"]}
    assert len(by_value) == len(report["rows"])
    pairs = [(row, by_value[row[dimension]]) for row in preset["rows"]]
    assert pairs, f"{name}: no rows"
    return pairs


def _mean(summary: Mapping[str, Any]) -> float | None:
    return None if summary["count"] == 0 else round(summary["sum"] / summary["count"], 2)


def _p90(summary: Mapping[str, Any]) -> float | None:
    return None if summary["p90"] is None else round(summary["p90"], 2)


def _csat_percent(row: Mapping[str, Any]) -> float | None:
    rated = row["csat_satisfied"] + row["csat_neutral"] + row["csat_unsatisfied"]
    return None if rated == 0 else round(row["csat_satisfied"] / rated * 100, 2)


def _fraction(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else round(numerator / denominator, 2)


def test_presets_are_the_five_seed_product_reports() -> None:
    assert list(PRESETS) == ["agents", "customers", "conversations", "themes", "channels"]
    for name, preset in PRESETS.items():
        assert preset.name == name
        assert preset.columns[0].key == preset.by[0]
        keys = [column.key for column in preset.columns]
        assert len(set(keys)) == len(keys), f"{name}: a column key twice"


def test_preset_query_keeps_filters_and_range_and_sets_by() -> None:
    base = ReportQuery.parse(by="tenant,day", where=["channel=chat"], range_name="this-week")
    query = preset_query("agents", base)
    assert query.by == ("agent",)
    assert query.where == (("channel", "chat"),)
    assert query.range_name == "this-week"
    dated = preset_query("themes", ReportQuery.parse(date_from="2026-10-22", date_to="2026-10-23"))
    assert (dated.by, str(dated.date_from), str(dated.date_to)) == (
        ("theme",),
        "2026-10-22",
        "2026-10-23",
    )


def test_unknown_preset_is_refused_with_the_choices() -> None:
    with pytest.raises(QueryError, match=r"unknown preset 'teams'.*agents, customers"):
        preset_query("teams", ReportQuery())
    with pytest.raises(QueryError, match="unknown preset"):
        apply_preset("teams", {"by": ["team"], "rows": []})


def test_a_report_with_another_by_is_refused() -> None:
    with pytest.raises(ValueError, match="needs a report --by agent, got --by tenant"):
        apply_preset("agents", {"by": ["tenant"], "rows": []})


def test_result_has_the_report_shape_and_lists_its_columns(
    replayed: ReplayResult, config: Config
) -> None:
    report = {"range": {"from": "2026-10-22", "to": None}, **_report(replayed, config, "agents")}
    preset = apply_preset("agents", report)
    assert list(preset) == ["preset", "title", "by", "range", "columns", "rows"]
    assert preset["preset"] == "agents"
    assert preset["by"] == ["agent"]
    assert preset["range"] == report["range"]
    keys = [column["key"] for column in preset["columns"]]
    assert all(
        set(column) == {"key", "label", "unit", "definition"} for column in preset["columns"]
    )
    for row in preset["rows"]:
        assert list(row) == keys
        assert not any(isinstance(value, Mapping | list) for value in row.values())


def test_agents_columns_derive_from_the_agent_rows(replayed: ReplayResult, config: Config) -> None:
    report = _report(replayed, config, "agents")
    preset = apply_preset("agents", report)
    for row, source in _pairs("agents", report, preset):
        assert row["conversations_attended"] == source["conversations_attended"]
        assert row["distinct_customers"] == source["distinct_customers"]
        assert row["avg_first_response_seconds"] == _mean(source["first_response_seconds"])
        assert row["avg_response_seconds"] == _mean(source["response_seconds"])
        assert row["p90_first_response_seconds"] == _p90(source["first_response_seconds"])
        assert row["conversations_resolved"] == source["conversations_resolved"]
        for key in ("csat_satisfied", "csat_neutral", "csat_unsatisfied", "conversations_unrated"):
            assert row[key] == source[key]
        assert row["csat_percent"] == _csat_percent(source)
        assert row["sla_breaches"] == source["sla_breaches"]
    assert any(row["avg_first_response_seconds"] is not None for row in preset["rows"])
    assert any(row["csat_percent"] is not None for row in preset["rows"])


def test_customers_columns_derive_from_the_customer_rows(
    replayed: ReplayResult, config: Config
) -> None:
    report = _report(replayed, config, "customers")
    preset = apply_preset("customers", report)
    for row, source in _pairs("customers", report, preset):
        assert row["conversations_started"] == source["conversations_started"]
        assert row["avg_first_response_seconds"] == _mean(source["first_response_seconds"])
        assert row["avg_response_seconds"] == _mean(source["response_seconds"])
        assert row["distinct_agents"] == source["distinct_agents"]
        for key in ("csat_satisfied", "csat_neutral", "csat_unsatisfied", "conversations_unrated"):
            assert row[key] == source[key]
        assert row["csat_percent"] == _csat_percent(source)


@pytest.mark.parametrize("name", ["themes", "channels"])
def test_segment_columns_derive_from_the_segment_rows(
    replayed: ReplayResult, config: Config, name: str
) -> None:
    report = _report(replayed, config, name)
    preset = apply_preset(name, report)
    for row, source in _pairs(name, report, preset):
        started, resolved = source["conversations_started"], source["conversations_resolved"]
        assert row["conversations_started"] == started
        assert row["conversations_resolved"] == resolved
        assert row["resolution_rate"] == _fraction(
            resolved, started + source["conversations_reopened"]
        )
        assert row["avg_first_response_seconds"] == _mean(source["first_response_seconds"])
        assert row["p90_first_response_seconds"] == _p90(source["first_response_seconds"])
        assert row["csat_percent"] == _csat_percent(source)
        nps_responses = source["nps_promoters"] + source["nps_passives"] + source["nps_detractors"]
        nps = source["nps_promoters"] - source["nps_detractors"]
        assert row["nps"] == (None if nps_responses == 0 else round(nps / nps_responses * 100, 2))
        assert row["conversion_rate"] == _fraction(
            source["converted_conversations"], source["conversations_closed"]
        )
        assert row["automation_rate"] == _fraction(source["automated_conversations"], resolved)
        assert row["sla_breaches"] == source["sla_breaches"]


def test_conversations_columns_are_the_conversation_attributes(
    replayed: ReplayResult, config: Config
) -> None:
    report = _report(replayed, config, "conversations")
    preset = apply_preset("conversations", report)
    for row, source in _pairs("conversations", report, preset):
        for key in ("customer_id", "customer_name", "subject", "status", "started_at", "channel"):
            assert row[key] == source[key]
        assert row["agents"] == (", ".join(source["agents"]) if source["agents"] else None)
        assert row["avg_first_response_seconds"] == _mean(source["first_response_seconds"])
        assert row["avg_response_seconds"] == _mean(source["response_seconds"])
        assert row["csat_score"] == source["csat_score"]
    rows = preset["rows"]
    assert any(row["agents"] and ", " in row["agents"] for row in rows)
    assert any(row["csat_score"] is not None for row in rows)
    assert any(row["avg_first_response_seconds"] is None for row in rows)


def test_subject_is_present_only_when_text_is_stored(
    lines: list[bytes], replayed: ReplayResult, config: Config
) -> None:
    with_text = apply_preset("conversations", _report(replayed, config, "conversations"))
    subjects = [row["subject"] for row in with_text["rows"] if row["subject"] is not None]
    assert subjects
    assert all(0 < len(subject) <= 120 for subject in subjects)

    no_text_config = parse_config(STREAM_CONFIG.replace("store_text = true", "store_text = false"))
    assert not no_text_config.store_text
    without = replay_lines(lines, no_text_config)
    preset = apply_preset("conversations", _report(without, no_text_config, "conversations"))
    assert len(preset["rows"]) == len(with_text["rows"])
    assert all(row["subject"] is None for row in preset["rows"])
    assert any(row["customer_id"] is not None for row in preset["rows"])


def _agent_row(**values: Any) -> dict[str, Any]:
    """A hand-made `--by agent` report row: given counters, the rest zero / empty."""
    row: dict[str, Any] = {
        "agent": "ag-1",
        "conversations_attended": 0,
        "distinct_customers": 0,
        "conversations_resolved": 0,
        "csat_satisfied": 0,
        "csat_neutral": 0,
        "csat_unsatisfied": 0,
        "conversations_unrated": 0,
        "sla_breaches": 0,
        "first_response_seconds": EMPTY,
        "response_seconds": EMPTY,
    }
    row.update(values)
    return row


def test_averages_and_ratios_are_none_when_nothing_to_divide_by() -> None:
    preset = apply_preset("agents", {"by": ["agent"], "rows": [_agent_row(csat_neutral=0)]})
    (row,) = preset["rows"]
    assert row["avg_first_response_seconds"] is None
    assert row["avg_response_seconds"] is None
    assert row["p90_first_response_seconds"] is None
    assert row["csat_percent"] is None
    assert row["conversations_attended"] == 0


def test_segment_ratios_are_none_over_zero_and_rounded_to_two_decimals() -> None:
    counters = {
        "conversations_started": 0,
        "conversations_resolved": 0,
        "conversations_reopened": 0,
        "conversations_closed": 0,
        "converted_conversations": 0,
        "automated_conversations": 0,
        "csat_satisfied": 0,
        "csat_neutral": 0,
        "csat_unsatisfied": 0,
        "nps_promoters": 0,
        "nps_passives": 0,
        "nps_detractors": 0,
        "sla_breaches": 0,
        "first_response_seconds": EMPTY,
    }
    empty = {"channel": "chat", **counters}
    busy = {
        **counters,
        "channel": "email",
        "conversations_started": 2,
        "conversations_reopened": 1,
        "conversations_resolved": 2,
        "conversations_closed": 3,
        "converted_conversations": 1,
        "automated_conversations": 1,
        "csat_satisfied": 2,
        "csat_unsatisfied": 1,
        "nps_promoters": 1,
        "nps_passives": 0,
        "nps_detractors": 2,
        "first_response_seconds": {**EMPTY, "count": 3, "sum": 10.0, "p90": 4.123456},
    }
    rows = apply_preset("channels", {"by": ["channel"], "rows": [empty, busy]})["rows"]
    assert [row["channel"] for row in rows] == ["chat", "email"]
    for key in ("resolution_rate", "csat_percent", "nps", "conversion_rate", "automation_rate"):
        assert rows[0][key] is None, key
    assert rows[0]["avg_first_response_seconds"] is None
    assert rows[1]["resolution_rate"] == 0.67
    assert rows[1]["avg_first_response_seconds"] == 3.33
    assert rows[1]["p90_first_response_seconds"] == 4.12
    assert rows[1]["csat_percent"] == 66.67
    assert rows[1]["nps"] == -33.33
    assert rows[1]["conversion_rate"] == 0.33
    assert rows[1]["automation_rate"] == 0.5


def test_rows_without_a_dimension_value_are_kept_only_when_they_show_something() -> None:
    noise = _agent_row(agent=None)
    unassigned = _agent_row(agent=None, sla_breaches=2)
    idle = _agent_row(agent="ag-idle")
    assert apply_preset("agents", {"by": ["agent"], "rows": [noise, idle]})["rows"] == [
        apply_preset("agents", {"by": ["agent"], "rows": [idle]})["rows"][0]
    ]
    kept = apply_preset("agents", {"by": ["agent"], "rows": [unassigned]})["rows"]
    assert [(row["agent"], row["sla_breaches"]) for row in kept] == [(None, 2)]


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_renders_in_every_format(
    replayed: ReplayResult, config: Config, name: str
) -> None:
    preset = apply_preset(name, _report(replayed, config, name))
    keys = [column["key"] for column in preset["columns"]]
    rendered: dict[str, bytes] = {}
    for fmt in FORMATS:
        out = io.BytesIO()
        render(preset, fmt, out)
        rendered[fmt] = out.getvalue()

    assert orjson.loads(rendered["json"]) == preset

    table = list(csv.reader(io.StringIO(rendered["csv"].decode("utf-8"), newline="")))
    assert table[0] == keys
    assert len(table) == 1 + len(preset["rows"])
    for cells, row in zip(table[1:], preset["rows"], strict=True):
        assert cells == ["" if row[key] is None else str(row[key]) for key in keys]

    workbook = openpyxl.load_workbook(io.BytesIO(rendered["xlsx"]), read_only=True)
    sheet_rows = list(workbook["report"].iter_rows(values_only=True))
    assert list(sheet_rows[0]) == keys
    for cells, row in zip(sheet_rows[1:], preset["rows"], strict=True):
        padded = [*cells, *[None] * (len(keys) - len(cells))]  # read-only trims empty ends
        assert padded == [None if row[key] == "" else row[key] for key in keys]
    about = dict(workbook["about"].iter_rows(values_only=True))
    assert about["preset"] == name
    assert about["title"] == preset["title"]
    workbook.close()

    text = rendered["table"].decode("utf-8")
    assert text.strip()
    assert all(len(line) <= TABLE_WIDTH for line in text.splitlines())
    (dimension,) = preset["by"]
    shown = next(row[dimension] for row in preset["rows"] if row[dimension] is not None)
    assert str(shown) in text
