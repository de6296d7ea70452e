"""The `livemetrics` command as a user runs it: real processes, real files."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path

import openpyxl
import orjson

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT.parent / "shared" / "examples" / "one-conversation.jsonl"
SPEC_CONFIG = ROOT / "tests" / "cases" / "spec.toml"


def _run(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "livemetrics.cli", *map(str, args)],
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_replay_json_gives_the_worked_example_numbers() -> None:
    done = _run("replay", "--events", EXAMPLE, "--config", SPEC_CONFIG, "--by", "agent")
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    assert report["by"] == ["agent"]
    luis = next(row for row in report["rows"] if row["agent"] == "ag-luis")
    assert luis["first_response_seconds"]["sum"] == 30.0
    assert luis["response_seconds"]["count"] == 2
    assert luis["response_seconds"]["sum"] == 95.0
    assert luis["handle_seconds"]["sum"] == 170.0
    assert luis["csat_satisfied"] == 1


def test_replay_csv_and_xlsx_exports(tmp_path: Path) -> None:
    done = _run("replay", "--events", EXAMPLE, "--by", "tenant,day", "--format", "csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout.decode())))
    assert rows[0]["tenant"] == "acme"
    assert rows[0]["resolution_seconds.sum"] == "200.0"
    target = tmp_path / "report.xlsx"
    done = _run("replay", "--events", EXAMPLE, "--format", "xlsx", "--output", target)
    assert done.returncode == 0, done.stderr
    sheet = openpyxl.load_workbook(target)["report"]
    header = [cell.value for cell in sheet[1]]
    values = dict(zip(header, [cell.value for cell in sheet[2]], strict=True))
    assert values["tenant"] == "acme"
    assert values["conversations_started"] == 1


def test_user_errors_are_one_line_with_exit_code_2(tmp_path: Path) -> None:
    missing = _run("replay", "--events", tmp_path / "missing.jsonl")
    assert missing.returncode == 2
    assert b"no such file" in missing.stderr
    assert b"Traceback" not in missing.stderr
    unknown = _run("replay", "--events", EXAMPLE, "--by", "planet")
    assert unknown.returncode == 2
    assert b"unknown dimension 'planet'" in unknown.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text('[tenants.acme]\ntimezone = "Mars/Base"\n')
    config = _run("replay", "--events", EXAMPLE, "--config", bad)
    assert config.returncode == 2
    assert b"tenants.acme.timezone" in config.stderr


def test_validate_counts_and_lists_reasons(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(EXAMPLE.read_bytes() + b"\n{broken\n" + b'{"type": "x"}\n')
    done = _run("validate", events)
    assert done.returncode == 1
    out = done.stdout.decode()
    assert "15 valid, 2 invalid, 1 blank" in out
    assert "line 17:" in out and "line 18:" in out
