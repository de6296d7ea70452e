"""The realistic traffic simulator (`livemetrics.simulate.traffic`), file mode.

One simulated Monday (2026-11-02, UTC midnight to midnight) is generated once
per module and shared: it must validate, keep each conversation in time order,
follow the daily curve, and replay into every kind of metric the product has.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from livemetrics.aggregate.query import ReportQuery
from livemetrics.config import parse_config
from livemetrics.events import Event, decode_line
from livemetrics.replay import ReplayResult, replay_lines
from livemetrics.simulate.traffic import SIM_CONFIG, SimulationCounts, simulate_to_file

MONDAY = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
DAY_S = 86_400
RATE = 0.05  # ~2,000 conversations over the day
TENANT_NAMES = ("acme", "globex", "initech")


@pytest.fixture(scope="module")
def simulated_day(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[bytes], SimulationCounts]:
    path = tmp_path_factory.mktemp("traffic") / "day.jsonl"
    counts = simulate_to_file(path, seed=11, duration_s=DAY_S, rate_per_s=RATE, start=MONDAY)
    return path.read_bytes().splitlines(), counts


def _events(lines: list[bytes]) -> Iterator[Event]:
    for line in lines:
        event = decode_line(line)
        assert isinstance(event, Event), f"{event!r}: {line[:200]!r}"
        yield event


def _local_hour(event: Event, zones: dict[str, ZoneInfo]) -> int:
    return dt.datetime.fromtimestamp(event.ts_us / 1e6, zones[event.tenant]).hour


# --- determinism and validity -----------------------------------------------------


def test_the_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    def run(name: str, seed: int) -> bytes:
        path = tmp_path / name
        simulate_to_file(path, seed=seed, duration_s=6 * 3600, rate_per_s=0.1, start=MONDAY)
        return path.read_bytes()

    first = run("a.jsonl", 5)
    assert first
    assert run("b.jsonl", 5) == first
    assert run("c.jsonl", 6) != first


def test_a_naive_start_is_utc(tmp_path: Path) -> None:
    naive, aware = tmp_path / "naive.jsonl", tmp_path / "aware.jsonl"
    start = dt.datetime(2026, 11, 2, 9, 0)
    simulate_to_file(naive, seed=1, duration_s=600, rate_per_s=0.2, start=start)
    simulate_to_file(
        aware, seed=1, duration_s=600, rate_per_s=0.2, start=start.replace(tzinfo=dt.UTC)
    )
    assert naive.read_bytes() == aware.read_bytes()


@pytest.mark.parametrize(
    ("option", "value"), [("duration_s", 0), ("rate_per_s", 0), ("rate_per_s", float("nan"))]
)
def test_a_run_without_duration_or_rate_is_refused(
    tmp_path: Path, option: str, value: float
) -> None:
    options: dict[str, Any] = {"duration_s": 60.0, "rate_per_s": 1.0}
    options[option] = value
    with pytest.raises(ValueError, match=option):
        simulate_to_file(tmp_path / "x.jsonl", seed=1, start=MONDAY, **options)


def test_every_generated_line_is_a_valid_event(
    simulated_day: tuple[list[bytes], SimulationCounts],
) -> None:
    lines, counts = simulated_day
    events = list(_events(lines))
    assert len(events) == counts.total
    assert sum(e.type == "agent.status" for e in events) == counts.status
    started = {e.conversation_id for e in events if e.type == "conversation.started"}
    assert len(started) == counts.conversations
    assert {e.tenant for e in events} == set(TENANT_NAMES)
    assert {e.type for e in events} >= {
        "conversation.started", "message.sent", "conversation.assigned",
        "agent.focus.started", "agent.focus.ended", "conversation.tagged",
        "conversation.resolved", "conversation.reopened", "conversation.closed",
        "conversation.rated", "conversation.transaction", "agent.status",
    }  # fmt: skip


def test_conversations_are_in_time_order_except_the_injected_late_and_duplicate_events(
    simulated_day: tuple[list[bytes], SimulationCounts],
) -> None:
    lines, counts = simulated_day
    seen: set[str] = set()
    latest: dict[str | None, int] = {}
    duplicates = out_of_order = 0
    for event in _events(lines):
        if event.event_id in seen:
            duplicates += 1
            continue
        seen.add(event.event_id)
        key = event.conversation_id if event.type != "agent.status" else None
        if event.ts_us < latest.get(key, 0):
            out_of_order += 1
            assert event.type == "message.sent" and event.data.sender == "customer"
        latest[key] = max(latest.get(key, 0), event.ts_us)
    assert duplicates == counts.duplicates > 0
    assert 0 < counts.late <= 60
    assert out_of_order <= counts.late


def test_without_late_or_duplicate_injection_every_conversation_is_in_order(
    tmp_path: Path,
) -> None:
    path = tmp_path / "clean.jsonl"
    counts = simulate_to_file(
        path, seed=3, duration_s=8 * 3600, rate_per_s=0.2, start=MONDAY,
        late_rate=0.0, duplicate_rate=0.0,
    )  # fmt: skip
    assert counts.late == counts.duplicates == 0
    latest: dict[str | None, int] = {}
    ids: set[str] = set()
    for event in _events(path.read_bytes().splitlines()):
        key = event.conversation_id if event.type != "agent.status" else None
        assert event.ts_us >= latest.get(key, 0), event
        latest[key] = event.ts_us
        assert event.event_id not in ids
        ids.add(event.event_id)


# --- a realistic day ----------------------------------------------------------------


def test_more_conversations_start_at_the_peak_hour_than_at_night(
    simulated_day: tuple[list[bytes], SimulationCounts],
) -> None:
    lines, _ = simulated_day
    config = parse_config(SIM_CONFIG)
    zones = {name: ZoneInfo(config.tenant(name).calendar.timezone) for name in config.tenants}
    starts: Counter[tuple[str, int]] = Counter()
    for event in _events(lines):
        if event.type == "conversation.started":
            starts[event.tenant, _local_hour(event, zones)] += 1
    for tenant in TENANT_NAMES:
        night = sum(starts[tenant, hour] for hour in (2, 3, 4))
        assert starts[tenant, 10] > 3 * max(night, 1), (tenant, starts)


def _acme_day(tmp_path: Path, day: dt.date) -> tuple[list[Event], ZoneInfo]:
    """acme's events of one whole local day (the other tenants' are dropped)."""
    madrid = ZoneInfo("Europe/Madrid")
    start = dt.datetime(day.year, day.month, day.day, tzinfo=madrid)
    path = tmp_path / f"{day}.jsonl"
    simulate_to_file(path, seed=2, duration_s=DAY_S, rate_per_s=0.05, start=start)
    events = [e for e in _events(path.read_bytes().splitlines()) if e.tenant == "acme"]
    return events, madrid


def _working_at(events: list[Event], moment: dt.datetime) -> int:
    """acme agents not offline at `moment`, from their agent.status events so far."""
    status: dict[str, str] = {}
    for event in events:
        if event.ts_us > moment.timestamp() * 1e6:
            break
        if event.type == "agent.status":
            status[event.data.agent_id] = event.data.status
    return sum(value != "offline" for value in status.values())


def test_agents_work_the_friday_split_shift(tmp_path: Path) -> None:
    """acme opens 08:00-14:00 and 16:00-20:00 on Fridays (SIM_CONFIG)."""
    events, madrid = _acme_day(tmp_path, dt.date(2026, 11, 6))

    def at(hour: int, minute: int = 0) -> int:
        return _working_at(events, dt.datetime(2026, 11, 6, hour, minute, tzinfo=madrid))

    assert at(11) > 0
    assert at(14, 10) == at(15, 0) == at(15, 50) == 0
    assert at(17) > 0
    assert at(21) == 0


def test_nobody_works_on_a_holiday_and_customers_write_offline(tmp_path: Path) -> None:
    events, _ = _acme_day(tmp_path, dt.date(2026, 12, 25))
    assert not [e for e in events if e.type == "agent.status"]
    modes = Counter(
        e.data.mode or "live"
        for e in events
        if e.type == "message.sent" and e.data.sender == "customer"
    )
    assert modes["offline"] > 0 and modes["live"] == 0


# --- config and replay ---------------------------------------------------------------


def test_sim_config_parses_and_describes_every_simulated_tenant() -> None:
    config = parse_config(SIM_CONFIG)
    assert set(config.tenants) == set(TENANT_NAMES)
    acme = config.tenant("acme")
    friday = acme.calendar.day_intervals(dt.date(2026, 11, 6))
    assert len(friday) == 2  # the split shift
    assert acme.calendar.day_intervals(dt.date(2026, 12, 25)) == ()  # a holiday
    assert acme.sla_policy("first_response", "chat") is not None
    assert all(config.tenant(tenant).sla for tenant in TENANT_NAMES)


@pytest.fixture(scope="module")
def replayed_day(simulated_day: tuple[list[bytes], SimulationCounts]) -> ReplayResult:
    return replay_lines(simulated_day[0], parse_config(SIM_CONFIG))


def _rows(result: ReplayResult, by: str, where: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    config = parse_config(SIM_CONFIG)
    report = result.report(config, ReportQuery.parse(by=by, where=list(where)))
    rows: list[dict[str, Any]] = report["rows"]
    return rows


def test_replaying_a_simulated_day_gives_every_kind_of_metric(replayed_day: ReplayResult) -> None:
    rows = {row["tenant"]: row for row in _rows(replayed_day, "tenant")}
    for tenant in TENANT_NAMES:
        row = rows[tenant]
        for counter in (
            "conversations_started", "conversations_resolved", "conversations_closed",
            "conversations_reopened", "bot_handoffs", "automated_conversations",
            "agent_contacts_with_response", "live_sessions", "one_sided_sessions",
            "csat_satisfied", "csat_unsatisfied", "sla_breaches", "converted_conversations",
            "focus_count", "tag_count",
        ):  # fmt: skip
            assert row[counter] > 0, (tenant, counter)
        assert row["transfers_to_agent"] + row["transfers_to_group"] > 0, tenant
        for distribution in (
            "first_response_seconds", "response_seconds", "queue_wait_seconds",
            "resolution_seconds", "handle_seconds", "focus_seconds", "live_session_seconds",
            "csat_score",
        ):  # fmt: skip
            assert row[distribution]["count"] > 0, (tenant, distribution)
        sales = [key for key in row if key.startswith("transaction_amount_") and row[key]["count"]]
        assert sales, tenant
    assert rows["acme"]["first_offline_response_seconds"]["count"] > 0
    assert sum(row["nps_score"]["count"] + row["ces_score"]["count"] for row in rows.values()) > 0
    assert sum(row["duplicate_events"] for row in rows.values()) > 0


def test_a_simulated_day_both_meets_and_breaches_the_chat_first_response_sla(
    replayed_day: ReplayResult,
) -> None:
    """acme answers chats within 60 s (SIM_CONFIG) most of the time, not always."""
    met = breached = 0
    for row in _rows(replayed_day, "conversation", ("tenant=acme", "channel=chat")):
        first = row["first_response_seconds"]
        if row["sla_breaches_first_response"]:
            breached += 1
        elif first["count"] and first["max"] <= 60:
            met += 1
    assert met > breached > 0
