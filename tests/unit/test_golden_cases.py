"""Golden cases: `tests/cases/NAME.jsonl` replayed must give `NAME.expected.json`.

One file pair per SPEC §7 rule, so a new rule is a new data file. The
expected file names the rule, the `--by`, optional `config`, `where` and
`range`, and the rows keyed by their `--by` values joined with `|` (`null` for
no value). Listed metrics must match; with `"strict": true` every unlisted
counter must be 0, every unlisted distribution empty, and no other row may exist.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest

from livemetrics.aggregate.query import ReportQuery
from livemetrics.config import Config, load_config
from livemetrics.metrics import COUNTERS
from livemetrics.replay import replay_report

CASES = Path(__file__).parent.parent / "cases"
CASE_NAMES = sorted(p.name.removesuffix(".expected.json") for p in CASES.glob("*.expected.json"))


def _row_key(row: dict[str, Any], by: list[str]) -> str:
    return "|".join("null" if row[d] is None else str(row[d]) for d in by)


def _check_value(case: str, row: str, metric: str, expected: Any, actual: Any) -> None:
    where = f"{case}: row {row!r}, {metric}"
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: expected a distribution, got {actual!r}"
        for key, value in expected.items():
            got = actual[key]
            if value is None or got is None:
                assert got == value, f"{where}.{key}: expected {value!r}, got {got!r}"
            else:
                assert math.isclose(got, value, rel_tol=1e-9, abs_tol=1e-6), (
                    f"{where}.{key}: expected {value!r}, got {got!r}"
                )
    else:
        assert actual == expected, f"{where}: expected {expected!r}, got {actual!r}"


@pytest.mark.parametrize("name", CASE_NAMES)
def test_golden_case(name: str) -> None:
    spec = orjson.loads((CASES / f"{name}.expected.json").read_bytes())
    config = load_config(CASES / spec["config"]) if "config" in spec else Config()
    query = ReportQuery.parse(
        by=spec["by"], where=spec.get("where", []), range_name=spec.get("range")
    )
    with (CASES / f"{name}.jsonl").open("rb") as lines:
        report = replay_report(lines, config, query)
    rows = {_row_key(row, list(query.by)): row for row in report["rows"]}
    for key, expected in spec["rows"].items():
        assert key in rows, f"{name}: missing row {key!r}; rows are {sorted(rows)}"
        for metric, value in expected.items():
            _check_value(name, key, metric, value, rows[key][metric])
    if not spec["strict"]:
        return
    assert sorted(rows) == sorted(spec["rows"]), f"{name}: rows {sorted(rows)}"
    for key, row in rows.items():
        listed = spec["rows"][key]
        for metric, value in row.items():
            if metric in listed or metric in query.by:
                continue
            if metric in COUNTERS or metric.startswith("distinct_"):
                assert value == 0, f"{name}: row {key!r}, {metric} = {value}, expected 0"
            elif isinstance(value, dict):
                assert value["count"] == 0, f"{name}: row {key!r}, {metric} = {value}"
