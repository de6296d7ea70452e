"""The terminal wall board renders the board document within 80 columns."""

from __future__ import annotations

from rich.console import Console

from livemetrics.config import parse_config
from livemetrics.replay import replay_lines
from livemetrics.simulate.streams import STREAM_CONFIG, generate_stream
from livemetrics.stack.view import MAX_TEAM_ROWS, render_board
from livemetrics.web.board import board_queries, build_board


def _board() -> dict:
    config = parse_config(STREAM_CONFIG)
    result = replay_lines(generate_stream(5, conversations=60), config)
    reports = [result.report(config, q) for q in board_queries("all")]
    gauges = {"acme": {"open_conversations": 7.0, "oldest_waiting_seconds": 12.5}}
    return build_board(*reports, gauges, None, clock_us=result.now_us, range_name="all")


def _text(board: dict, width: int = 80, max_team_rows: int = MAX_TEAM_ROWS) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(render_board(board, 12.0, max_team_rows))
    return console.export_text()


def test_every_tenant_shows_its_gauges_and_report_figures() -> None:
    board = _board()
    text = _text(board)
    assert max(len(line) for line in text.splitlines()) <= 80
    for entry in board["tenants"]:
        assert entry["tenant"] in text
    acme = next(e for e in board["tenants"] if e["tenant"] == "acme")
    now_row = next(line for line in text.splitlines() if line.startswith("│ acme "))
    assert " 7 " in now_row and "12.5" in now_row  # open, oldest wait (from the gauges)
    started = f"{acme['total']['conversations_started']:,}"
    assert any(line.startswith("│ acme ") and f" {started} " in line for line in text.splitlines())
    assert "up 12s" in text


def test_unknown_gauges_show_a_dash_not_zero() -> None:
    board = _board()
    text = _text(board)
    other = next(e["tenant"] for e in board["tenants"] if e["tenant"] != "acme")
    now_row = next(line for line in text.splitlines() if line.startswith(f"│ {other} "))
    assert "-" in now_row and " 0 " not in now_row


def test_team_rows_are_the_busiest_capped_with_a_count_of_the_rest() -> None:
    board = _board()
    teams = sum(len(e["teams"]) for e in board["tenants"])
    assert teams > 3
    text = _text(board, width=120, max_team_rows=3)
    shown = [line for line in text.splitlines() if line.startswith("│ ") and " / " in line]
    assert len(shown) == 3
    assert f"… {teams - 3} more" in text
    busiest = max(
        (r["conversations_started"], f"{e['tenant']} / {r['team'] or '(none)'}")
        for e in board["tenants"]
        for r in e["teams"]
    )
    assert busiest[1] in shown[0]
    everything = _text(board, width=120, max_team_rows=teams)
    assert "more" not in everything


def test_an_empty_store_renders() -> None:
    board = build_board({}, {}, {}, {}, None, clock_us=0, range_name="today")
    assert "livemetrics · - UTC" in _text(board)
