"""Report exports (SPEC §5 --format): json, csv, xlsx and table views of one report."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl
import orjson
import pytest

from livemetrics.aggregate.formats import FORMATS, TABLE_WIDTH, render

EMPTY = {"count": 0, "sum": 0.0, "min": None, "max": None, "p50": None, "p90": None, "p99": None}
FRT = {"count": 2, "sum": 12.5, "min": 2.5, "max": 10.0, "p50": 2.5, "p90": 10.0, "p99": 10.0}

REPORT: dict[str, Any] = {
    "by": ["agent", "day"],
    "range": {"from": "2026-11-01", "to": "2026-11-30"},
    "generated_at": "2026-11-30T12:00:00Z",
    "rows": [
        {
            "agent": None,
            "day": "2026-11-22",
            "conversations_started": 3,
            "customer_name": None,
            "agents": [],
            "first_response_seconds": EMPTY,
            "csat_satisfied": 0,
        },
        {
            "agent": "ag-1",
            "day": "2026-11-22",
            "conversations_started": 0,
            "customer_name": "=Zoë [bold]",
            "agents": ["ag-1", "ag-2"],
            "first_response_seconds": FRT,
            "csat_satisfied": 2,
        },
    ],
}

FRT_COLUMNS = [
    f"first_response_seconds.{field}"
    for field in ("count", "sum", "min", "max", "p50", "p90", "p99")
]
HEADER = [
    "agent",
    "day",
    "conversations_started",
    "customer_name",
    "agents",
    *FRT_COLUMNS,
    "csat_satisfied",
]
CELLS: list[list[Any]] = [
    [None, "2026-11-22", 3, None, "", 0, 0.0, None, None, None, None, None, 0],
    ["ag-1", "2026-11-22", 0, "=Zoë [bold]", "ag-1;ag-2", 2, 12.5, 2.5, 10.0, 2.5, 10.0, 10.0, 2],
]


def rendered(report: dict[str, Any], fmt: str) -> bytes:
    out = io.BytesIO()
    render(report, fmt, out)
    assert not out.closed
    return out.getvalue()


def test_json_round_trips_with_row_keys_in_order() -> None:
    output = rendered(REPORT, "json")
    assert output.endswith(b"}\n")
    assert output.startswith(b'{\n  "by": [\n    "agent",')
    parsed = orjson.loads(output)
    assert parsed == REPORT
    assert [list(row) for row in parsed["rows"]] == [list(row) for row in REPORT["rows"]]


def test_csv_has_one_header_line_and_flattened_rows() -> None:
    output = rendered(REPORT, "csv")
    lines = list(csv.reader(io.StringIO(output.decode("utf-8"), newline="")))
    assert lines[0] == HEADER
    expected = [["" if cell is None else str(cell) for cell in row] for row in CELLS]
    assert lines[1:] == expected


def test_xlsx_report_sheet_holds_the_csv_layout_with_numbers_as_numbers() -> None:
    workbook = openpyxl.load_workbook(io.BytesIO(rendered(REPORT, "xlsx")))
    assert workbook.sheetnames == ["report", "about"]
    sheet = workbook["report"]
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert values[0] == HEADER
    assert values[1:] == [[None if cell == "" else cell for cell in row] for row in CELLS]
    assert all(cell.font.b for cell in sheet[1])
    assert sheet.freeze_panes == "C2"
    assert isinstance(sheet["G3"].value, float)
    assert isinstance(sheet["F3"].value, int)


def test_xlsx_keeps_formula_like_text_as_text() -> None:
    sheet = openpyxl.load_workbook(io.BytesIO(rendered(REPORT, "xlsx")))["report"]
    assert sheet["D3"].value == "=Zoë [bold]"
    assert sheet["D3"].data_type == "s"


def test_xlsx_about_sheet_names_the_report() -> None:
    about = openpyxl.load_workbook(io.BytesIO(rendered(REPORT, "xlsx")))["about"]
    assert dict(about.iter_rows(values_only=True)) == {
        "by": "agent, day",
        "range.from": "2026-11-01",
        "range.to": "2026-11-30",
        "generated_at": "2026-11-30T12:00:00Z",
    }


def test_table_for_few_rows_shows_each_row_transposed() -> None:
    text = rendered(REPORT, "table").decode("utf-8")
    assert "agent (none) · day 2026-11-22" in text
    assert "agent ag-1 · day 2026-11-22" in text
    assert "=Zoë [bold]" in text
    assert "first_response_seconds" in text
    assert "ag-1, ag-2" in text
    assert max(len(line) for line in text.splitlines()) <= TABLE_WIDTH


def test_table_for_many_rows_shows_dimensions_and_key_metrics() -> None:
    rows = [{**REPORT["rows"][1], "agent": f"agent-{i}"} for i in range(12)]
    text = rendered({**REPORT, "rows": [REPORT["rows"][0], *rows]}, "table").decode("utf-8")
    for i in range(12):
        assert f"agent-{i}" in text
    assert "(none)" in text
    assert "first_response_seconds.p50" in text
    assert max(len(line) for line in text.splitlines()) <= TABLE_WIDTH


@pytest.mark.parametrize("fmt", FORMATS)
def test_report_without_rows_renders(fmt: str) -> None:
    assert rendered({"by": ["tenant"], "rows": []}, fmt)


def test_unknown_format_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError) as refused:
        render(REPORT, "x", io.BytesIO())
    assert str(refused.value) == "unknown format 'x' (choose json, csv, xlsx or table)"
