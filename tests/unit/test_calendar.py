"""Service hours and business durations (SPEC §2 "Service hours", §7 [14], [41], [51])."""

from __future__ import annotations

import bisect
import datetime as dt
from typing import NamedTuple
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from livemetrics import calendar
from livemetrics.calendar import NEVER_US, ServiceCalendar

H = 3600
S = 1_000_000
HOUR_US = H * S
DAY_US = 24 * HOUR_US
WEEKDAYS_7_17 = {d: [(7 * H, 17 * H)] for d in range(5)}
SPLIT_FRIDAY = {d: [(7 * H, 17 * H)] for d in range(4)} | {4: [(7 * H, 13 * H), (14 * H, 17 * H)]}
ALL_DAY = {d: [(0, 24 * H)] for d in range(7)}


def at(tz: str, *fields: int, fold: int = 0) -> int:
    """UTC microseconds of local ``(year, month, day[, hour, minute, second])``."""
    year, month, day, hour, minute, second = (*fields, 0, 0, 0)[:6]
    local = dt.datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(tz), fold=fold)
    return round(local.timestamp()) * S


# -- SPEC §2 worked examples --------------------------------------------------


def test_spec_example_reply_just_after_opening_counts_only_open_seconds() -> None:
    cal = ServiceCalendar("Europe/Madrid", WEEKDAYS_7_17)
    written = at("Europe/Madrid", 2026, 11, 16, 6, 59, 55)
    replied = at("Europe/Madrid", 2026, 11, 16, 7, 0, 5)
    assert replied - written == 10 * S
    assert cal.business_us(written, replied) == 5 * S


def test_spec_example_overnight_reply_counts_one_business_hour() -> None:
    cal = ServiceCalendar("Europe/Madrid", WEEKDAYS_7_17)
    written = at("Europe/Madrid", 2026, 11, 16, 22, 0)
    replied = at("Europe/Madrid", 2026, 11, 17, 8, 0)
    assert replied - written == 10 * HOUR_US
    assert cal.business_us(written, replied) == HOUR_US


# -- plain durations ----------------------------------------------------------


def test_empty_or_reversed_interval_is_zero() -> None:
    cal = ServiceCalendar("UTC", ALL_DAY)
    t = at("UTC", 2026, 11, 16, 10, 0)
    assert cal.business_us(t, t) == 0
    assert cal.business_us(t + S, t) == 0


def test_duration_entirely_outside_hours_is_zero() -> None:
    cal = ServiceCalendar("Europe/Madrid", WEEKDAYS_7_17)
    assert (
        cal.business_us(at("Europe/Madrid", 2026, 11, 16, 18), at("Europe/Madrid", 2026, 11, 17, 6))
        == 0
    )


def test_weekend_is_closed_when_missing_from_weekly_hours() -> None:
    cal = ServiceCalendar("Europe/Madrid", WEEKDAYS_7_17)
    friday_16 = at("Europe/Madrid", 2026, 11, 20, 16)
    monday_8 = at("Europe/Madrid", 2026, 11, 23, 8)
    assert cal.business_us(friday_16, monday_8) == 2 * HOUR_US
    assert not cal.is_open(at("Europe/Madrid", 2026, 11, 21, 12))


def test_split_shift_skips_the_lunch_break() -> None:
    cal = ServiceCalendar("Europe/Madrid", SPLIT_FRIDAY)
    written = at("Europe/Madrid", 2026, 11, 20, 12, 30)
    replied = at("Europe/Madrid", 2026, 11, 20, 14, 30)
    assert cal.business_us(written, replied) == HOUR_US
    assert not cal.is_open(at("Europe/Madrid", 2026, 11, 20, 13, 30))
    assert cal.is_open(at("Europe/Madrid", 2026, 11, 20, 14))
    assert not cal.is_open(at("Europe/Madrid", 2026, 11, 20, 13))  # windows are [start, end)


def test_holiday_is_closed_all_local_day() -> None:
    cal = ServiceCalendar("Europe/Madrid", WEEKDAYS_7_17, [dt.date(2026, 12, 25)])
    thursday_16 = at("Europe/Madrid", 2026, 12, 24, 16)
    monday_8 = at("Europe/Madrid", 2026, 12, 28, 8)
    assert cal.business_us(thursday_16, monday_8) == 2 * HOUR_US
    assert not cal.is_open(at("Europe/Madrid", 2026, 12, 25, 10))


def test_holiday_follows_the_local_date_not_the_utc_date() -> None:
    cal = ServiceCalendar("Asia/Kathmandu", ALL_DAY, [dt.date(2026, 12, 25)])
    local_midnight = at("Asia/Kathmandu", 2026, 12, 25, 0)
    assert not cal.is_open(local_midnight)
    assert cal.is_open(local_midnight - 1)
    assert cal.business_us(local_midnight - HOUR_US, local_midnight + 2 * DAY_US) == 25 * HOUR_US


def test_multi_week_duration_counts_every_open_day() -> None:
    cal = ServiceCalendar("Europe/Madrid", WEEKDAYS_7_17)
    start = at("Europe/Madrid", 2026, 11, 16, 0)
    assert cal.business_us(start, start + 21 * DAY_US) == 15 * 10 * HOUR_US
    with_holiday = ServiceCalendar("Europe/Madrid", WEEKDAYS_7_17, [dt.date(2026, 11, 25)])
    assert with_holiday.business_us(start, start + 21 * DAY_US) == 14 * 10 * HOUR_US


def test_duration_across_months_and_years() -> None:
    cal = ServiceCalendar("UTC", ALL_DAY)
    start = at("UTC", 2026, 1, 15, 12)
    end = at("UTC", 2027, 3, 2, 6)
    assert cal.business_us(start, end) == end - start


def test_window_until_midnight_joins_next_day_window() -> None:
    late = {0: [(20 * H, 24 * H)], 1: [(0, 2 * H)]}
    cal = ServiceCalendar("Europe/Madrid", late)
    monday_23 = at("Europe/Madrid", 2026, 11, 16, 23)
    assert cal.business_us(monday_23, monday_23 + 5 * HOUR_US) == 3 * HOUR_US
    assert cal.add_business_us(monday_23, HOUR_US) == monday_23 + HOUR_US


def test_calendar_without_hours_counts_nothing() -> None:
    cal = ServiceCalendar("UTC")
    assert not cal.has_hours
    assert cal.business_us(0, DAY_US) == 0
    assert not cal.is_open(0)
    assert cal.next_opening(0) is None
    with pytest.raises(ValueError, match="no service hours"):
        cal.add_business_us(0, S)


def test_days_with_empty_window_lists_do_not_count_as_hours() -> None:
    assert not ServiceCalendar("UTC", {0: []}).has_hours
    assert ServiceCalendar("UTC", {6: [(0, 60)]}).has_hours


@pytest.mark.parametrize(
    "weekly",
    [{7: [(0, 60)]}, {0: [(60, 60)]}, {0: [(0, 86_401)]}, {0: [(0, 100), (50, 200)]}],
)
def test_impossible_weekly_windows_are_refused(weekly: dict[int, list[tuple[int, int]]]) -> None:
    with pytest.raises(ValueError):
        ServiceCalendar("UTC", weekly)


# -- DST (SPEC §7 [14]) -------------------------------------------------------


@pytest.mark.parametrize(
    ("tz", "spring", "autumn"),
    [
        ("Europe/Madrid", (2026, 3, 29), (2026, 10, 25)),
        ("America/New_York", (2026, 3, 8), (2026, 11, 1)),
    ],
)
def test_dst_days_last_23_and_25_business_hours(
    tz: str, spring: tuple[int, int, int], autumn: tuple[int, int, int]
) -> None:
    cal = ServiceCalendar(tz, ALL_DAY)
    for day, hours in ((spring, 23), (autumn, 25)):
        start = at(tz, *day, 0)
        end = at(tz, *(dt.date(*day) + dt.timedelta(days=1)).timetuple()[:3], 0)
        assert cal.business_us(start, end) == hours * HOUR_US


@pytest.mark.parametrize(
    ("tz", "spring", "autumn"),
    [
        ("Europe/Madrid", (2026, 3, 29), (2026, 10, 25)),
        ("America/New_York", (2026, 3, 8), (2026, 11, 1)),
    ],
)
def test_window_spanning_the_dst_change_has_its_real_length(
    tz: str, spring: tuple[int, int, int], autumn: tuple[int, int, int]
) -> None:
    cal = ServiceCalendar(tz, {6: [(1 * H, 5 * H)]})  # Sundays 01:00-05:00
    assert cal.business_us(at(tz, *spring, 0), at(tz, *spring, 6)) == 3 * HOUR_US
    assert cal.business_us(at(tz, *autumn, 0), at(tz, *autumn, 6)) == 5 * HOUR_US


@pytest.mark.parametrize(
    ("tz", "spring"), [("Europe/Madrid", (2026, 3, 29)), ("America/New_York", (2026, 3, 8))]
)
def test_window_edge_inside_the_missing_hour_maps_with_fold_0(
    tz: str, spring: tuple[int, int, int]
) -> None:
    """02:30 does not exist; fold=0 reads it with the pre-change offset, i.e. 03:30 new time."""
    cal = ServiceCalendar(tz, {6: [(2 * H + 1800, 5 * H)]})
    opening = at(tz, *spring, 3, 30)
    assert cal.next_opening(at(tz, *spring, 0)) == opening
    assert at(tz, *spring, 2, 30) == opening
    assert cal.business_us(at(tz, *spring, 0), at(tz, *spring, 6)) == 90 * 60 * S


def test_window_edges_that_cross_in_the_missing_hour_give_an_empty_window() -> None:
    cal = ServiceCalendar("Europe/Madrid", {6: [(2 * H + 1800, 3 * H)]})
    day = (2026, 3, 29)
    assert cal.business_us(at("Europe/Madrid", *day, 0), at("Europe/Madrid", *day, 12)) == 0
    week_later = (2026, 4, 5)
    assert (
        cal.business_us(at("Europe/Madrid", *week_later, 0), at("Europe/Madrid", *week_later, 12))
        == 30 * 60 * S
    )


@pytest.mark.parametrize(
    ("tz", "autumn"), [("Europe/Madrid", (2026, 10, 25)), ("America/New_York", (2026, 11, 1))]
)
def test_window_edge_in_the_repeated_hour_uses_its_first_occurrence(
    tz: str, autumn: tuple[int, int, int]
) -> None:
    repeated = 1 * H + 1800 if tz == "America/New_York" else 2 * H + 1800  # in the repeated hour
    cal = ServiceCalendar(tz, {6: [(repeated, 4 * H)]})
    hour, minute = divmod(repeated // 60, 60)
    first = at(tz, *autumn, hour, minute, fold=0)
    assert cal.next_opening(at(tz, *autumn, 0)) == first
    assert cal.business_us(first - HOUR_US, at(tz, *autumn, 6)) == (at(tz, *autumn, 4) - first)
    assert at(tz, *autumn, 4) - first == (4 * H - repeated + H) * S


def test_business_duration_across_a_dst_weekend() -> None:
    cal = ServiceCalendar("Europe/Madrid", WEEKDAYS_7_17)
    friday_16 = at("Europe/Madrid", 2026, 3, 27, 16)
    monday_8 = at("Europe/Madrid", 2026, 3, 30, 8)
    assert cal.business_us(friday_16, monday_8) == 2 * HOUR_US
    assert cal.add_business_us(friday_16, 2 * HOUR_US) == monday_8


# -- add_business_us (SLA deadlines, SPEC §7 [41]) -----------------------------


def test_deadline_inside_a_window() -> None:
    cal = ServiceCalendar("Europe/Madrid", WEEKDAYS_7_17)
    start = at("Europe/Madrid", 2026, 11, 16, 9)
    assert cal.add_business_us(start, 90 * 60 * S) == at("Europe/Madrid", 2026, 11, 16, 10, 30)


def test_deadline_started_out_of_hours_counts_from_the_opening() -> None:
    cal = ServiceCalendar("Europe/Madrid", WEEKDAYS_7_17)
    start = at("Europe/Madrid", 2026, 11, 16, 22)
    assert cal.add_business_us(start, 60 * S) == at("Europe/Madrid", 2026, 11, 17, 7, 1)


def test_deadline_on_a_window_end_moves_to_the_next_opening() -> None:
    cal = ServiceCalendar("Europe/Madrid", SPLIT_FRIDAY)
    friday_12 = at("Europe/Madrid", 2026, 11, 20, 12)
    assert cal.add_business_us(friday_12, 30 * 60 * S) == at("Europe/Madrid", 2026, 11, 20, 12, 30)
    assert cal.add_business_us(friday_12, HOUR_US) == at("Europe/Madrid", 2026, 11, 20, 14)
    assert cal.add_business_us(friday_12, 4 * HOUR_US) == at("Europe/Madrid", 2026, 11, 23, 7)
    assert cal.add_business_us(friday_12, HOUR_US + 1) == at("Europe/Madrid", 2026, 11, 20, 14) + 1


def test_deadline_on_the_last_window_end_of_a_month_moves_to_next_month() -> None:
    cal = ServiceCalendar("UTC", WEEKDAYS_7_17)
    last_open = at("UTC", 2026, 11, 30, 16)  # Monday 30 November
    assert cal.add_business_us(last_open, HOUR_US) == at("UTC", 2026, 12, 1, 7)


def test_zero_amount_is_start_when_open_else_next_opening() -> None:
    cal = ServiceCalendar("Europe/Madrid", SPLIT_FRIDAY)
    open_instant = at("Europe/Madrid", 2026, 11, 20, 10)
    assert cal.add_business_us(open_instant, 0) == open_instant
    assert cal.add_business_us(at("Europe/Madrid", 2026, 11, 20, 13), 0) == at(
        "Europe/Madrid", 2026, 11, 20, 14
    )
    assert cal.add_business_us(at("Europe/Madrid", 2026, 11, 21, 10), 0) == at(
        "Europe/Madrid", 2026, 11, 23, 7
    )


def test_multi_week_deadline_skips_weekends_and_holidays() -> None:
    cal = ServiceCalendar(
        "Europe/Madrid", WEEKDAYS_7_17, [dt.date(2026, 12, 25), dt.date(2027, 1, 1)]
    )
    start = at("Europe/Madrid", 2026, 12, 21, 7)  # Monday
    deadline = cal.add_business_us(start, 70 * HOUR_US)  # 7 working days
    assert deadline == at("Europe/Madrid", 2026, 12, 31, 7)
    assert cal.business_us(start, deadline) == 70 * HOUR_US


def test_negative_amount_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        ServiceCalendar("UTC", ALL_DAY).add_business_us(0, -1)


def test_long_holiday_stretch_is_jumped() -> None:
    holidays = [dt.date(2026, 6, 1) + dt.timedelta(days=i) for i in range(120)]
    cal = ServiceCalendar("UTC", WEEKDAYS_7_17, holidays)
    start = at("UTC", 2026, 5, 29, 16)  # Friday
    assert cal.add_business_us(start, 2 * HOUR_US) == at("UTC", 2026, 9, 29, 8)
    assert cal.business_us(start, at("UTC", 2026, 9, 29, 8)) == 2 * HOUR_US


# -- local buckets (SPEC §7 [51]) ----------------------------------------------


@pytest.mark.parametrize(
    ("tz", "utc", "bucket"),
    [
        ("Europe/Madrid", (2026, 3, 29, 0, 59, 59), ("2026-03-29", "01")),
        ("Europe/Madrid", (2026, 3, 29, 1, 0, 0), ("2026-03-29", "03")),
        ("Europe/Madrid", (2026, 10, 25, 0, 30, 0), ("2026-10-25", "02")),
        ("Europe/Madrid", (2026, 10, 25, 1, 30, 0), ("2026-10-25", "02")),
        ("Europe/Madrid", (2026, 10, 25, 2, 0, 0), ("2026-10-25", "03")),
        ("America/New_York", (2026, 3, 8, 7, 0, 0), ("2026-03-08", "03")),
        ("America/New_York", (2026, 11, 1, 4, 59, 59), ("2026-11-01", "00")),
        ("America/New_York", (2026, 11, 1, 6, 30, 0), ("2026-11-01", "01")),
        ("Asia/Kolkata", (2026, 1, 1, 18, 29, 59), ("2026-01-01", "23")),
        ("Asia/Kolkata", (2026, 1, 1, 18, 30, 0), ("2026-01-02", "00")),
        ("Asia/Kathmandu", (2026, 1, 1, 0, 14, 59), ("2026-01-01", "05")),
        ("Asia/Kathmandu", (2026, 1, 1, 0, 15, 0), ("2026-01-01", "06")),
        ("Asia/Kathmandu", (2026, 1, 1, 18, 15, 0), ("2026-01-02", "00")),
        ("UTC", (1969, 12, 31, 23, 59, 59), ("1969-12-31", "23")),
    ],
)
def test_local_bucket(tz: str, utc: tuple[int, ...], bucket: tuple[str, str]) -> None:
    cal = ServiceCalendar(tz)
    ts = at("UTC", *utc)
    assert cal.local_bucket(ts) == bucket
    assert cal.local_bucket(ts + S - 1) == bucket
    assert cal.local_bucket(ts) == bucket  # cached answer
    assert cal.local_date(ts).isoformat() == bucket[0]


# -- properties ---------------------------------------------------------------

ZONES = [
    "UTC",
    "Europe/Madrid",
    "America/New_York",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "America/Santiago",
    "America/Havana",
    "Pacific/Chatham",
]
ANCHORS_US = [
    at("UTC", *day)
    for day in [
        (2026, 3, 8),
        (2026, 3, 29),
        (2026, 4, 5),
        (2026, 9, 6),
        (2026, 9, 27),
        (2026, 10, 4),
        (2026, 10, 25),
        (2026, 11, 1),
        (2026, 12, 31),
    ]
]
YEAR_START_US = at("UTC", 2026, 1, 1)
YEAR_US = 365 * DAY_US


class CalendarCase(NamedTuple):
    """A drawn calendar with the inputs it was built from (for the reference)."""

    cal: ServiceCalendar
    weekly: dict[int, list[tuple[int, int]]]
    holidays: frozenset[dt.date]


@st.composite
def calendars(draw: st.DrawFn) -> CalendarCase:
    """A random zone, random minute-aligned windows per weekday and a few holidays."""
    weekly: dict[int, list[tuple[int, int]]] = {}
    for weekday in range(7):
        points = sorted(draw(st.sets(st.integers(0, 1440), max_size=6)))
        if len(points) % 2:
            points = points[:-1]
        weekly[weekday] = [(points[i] * 60, points[i + 1] * 60) for i in range(0, len(points), 2)]
    assume(any(weekly.values()))
    holidays = draw(st.lists(st.dates(dt.date(2025, 12, 20), dt.date(2027, 1, 10)), max_size=20))
    cal = ServiceCalendar(draw(st.sampled_from(ZONES)), weekly, holidays)
    return CalendarCase(cal, weekly, frozenset(holidays))


@st.composite
def instants(draw: st.DrawFn, unit_us: int = 1) -> int:
    """Instants near DST changes (often) or anywhere in 2026, a multiple of ``unit_us``."""
    if draw(st.booleans()):
        base = draw(st.sampled_from(ANCHORS_US)) + draw(st.integers(-3 * DAY_US, 3 * DAY_US))
    else:
        base = YEAR_START_US + draw(st.integers(0, YEAR_US))
    return base - base % unit_us


def reference_open_intervals(
    case: CalendarCase, first: dt.date, last: dt.date
) -> list[tuple[int, int]]:
    """Each date's windows, edges read with fold=0 via ``datetime.timestamp`` (SPEC §7 [14])."""
    tz = ZoneInfo(case.cal.timezone)
    out: list[tuple[int, int]] = []
    day = first
    while day <= last:
        if day not in case.holidays:
            midnight = dt.datetime(day.year, day.month, day.day, tzinfo=tz)
            for s, e in case.weekly.get(day.weekday(), []):
                lo = round((midnight + dt.timedelta(seconds=s)).timestamp()) * S
                hi = round((midnight + dt.timedelta(seconds=e)).timestamp()) * S
                out.append((lo, hi))
        day += dt.timedelta(days=1)
    return out


@settings(deadline=None)
@given(calendars(), instants(60 * S), st.integers(0, 4 * 24 * 60))
def test_business_us_matches_minute_by_minute_reference(
    case: CalendarCase, start: int, minutes: int
) -> None:
    cal = case.cal
    end = start + minutes * 60 * S
    tz = ZoneInfo(cal.timezone)
    first = dt.datetime.fromtimestamp(start // S, tz).date() - dt.timedelta(days=1)
    last = dt.datetime.fromtimestamp(end // S, tz).date() + dt.timedelta(days=1)
    windows = reference_open_intervals(case, first, last)
    open_minutes = sum(
        1 for t in range(start, end, 60 * S) if any(lo <= t < hi for lo, hi in windows)
    )
    assert cal.business_us(start, end) == open_minutes * 60 * S
    for t in range(start, end, 97 * 60 * S):
        assert cal.is_open(t) == any(lo <= t < hi for lo, hi in windows)


@settings(deadline=None)
@given(calendars(), st.lists(instants(), min_size=3, max_size=3))
def test_business_us_is_additive_and_bounded(case: CalendarCase, points: list[int]) -> None:
    cal = case.cal
    a, b, c = sorted(points)
    ab, bc, ac = cal.business_us(a, b), cal.business_us(b, c), cal.business_us(a, c)
    assert ab + bc == ac
    assert 0 <= ab <= b - a
    assert 0 <= bc <= c - b
    assert cal.business_us(b, a) == 0 or a == b


@settings(deadline=None)
@given(calendars(), instants(), st.integers(0, 30 * DAY_US) | st.integers(0, HOUR_US))
def test_add_business_us_inverts_business_us(case: CalendarCase, start: int, amount: int) -> None:
    cal = case.cal
    deadline = cal.add_business_us(start, amount)
    assert deadline >= start
    assert cal.business_us(start, deadline) == amount
    assert cal.is_open(deadline)
    if amount == 0:
        assert deadline == cal.next_opening(start)
        return
    before = cal.business_us(start, deadline - 1)
    if before == amount:
        # moved by the window-end rule: only closed time lies between the end and the opening
        assert not cal.is_open(deadline - 1)
    else:
        assert before == amount - 1


@settings(deadline=None)
@given(
    calendars(),
    instants(),
    st.integers(0, 30 * DAY_US) | st.integers(0, HOUR_US),
    st.integers(0, 30 * DAY_US) | st.integers(0, HOUR_US),
)
def test_add_business_pair_is_add_business_us_of_each(
    case: CalendarCase, start: int, first: int, second: int
) -> None:
    cal = case.cal
    expected = (cal.add_business_us(start, first), cal.add_business_us(start, second))
    assert cal.add_business_pair(start, first, second) == expected


def test_add_business_pair_refuses_as_add_business_us_does() -> None:
    closed = ServiceCalendar("UTC", {})
    with pytest.raises(ValueError, match="no service hours"):
        closed.add_business_pair(0, S, 2 * S)
    with pytest.raises(ValueError, match="negative"):
        ServiceCalendar("UTC", {0: [(0, 3600)]}).add_business_pair(0, S, -1)


@settings(deadline=None)
@given(calendars(), instants())
def test_next_opening_is_the_first_open_instant(case: CalendarCase, ts: int) -> None:
    cal = case.cal
    opening = cal.next_opening(ts)
    assert opening is not None
    assert opening >= ts
    assert cal.is_open(opening)
    assert cal.business_us(ts, opening) == 0
    assert (opening == ts) == cal.is_open(ts)


@given(
    st.sampled_from([*ZONES, "Europe/Amsterdam", "Asia/Kolkata", "America/St_Johns"]),
    st.integers(at("UTC", 1890, 1, 1), at("UTC", 2040, 1, 1)),
)
def test_local_bucket_matches_zoneinfo(tz: str, ts: int) -> None:
    cal = ServiceCalendar(tz)
    local = dt.datetime.fromtimestamp(ts // S, ZoneInfo(tz))
    expected = (local.date().isoformat(), f"{local.hour:02d}")
    assert cal.local_bucket(ts) == expected
    assert cal.local_bucket(ts) == expected
    assert cal.local_date(ts) == local.date()


# -- the end of time ------------------------------------------------------------


def test_december_9999_is_indexed_and_deadlines_past_it_never_come() -> None:
    """Events are valid until 9999-12-30 UTC; their calendar month must not need year 10000."""
    cal = ServiceCalendar("America/New_York", WEEKDAYS_7_17)
    thursday = at("America/New_York", 9999, 12, 30, 8)  # a Thursday, open
    assert dt.date(9999, 12, 30).weekday() == 3
    assert cal.is_open(thursday)
    assert cal.business_us(thursday, thursday + HOUR_US) == HOUR_US
    assert cal.add_business_us(thursday, HOUR_US) == thursday + HOUR_US
    # 9 h left on Thursday, 10 h on Friday; a deadline at a window's end moves to the
    # next opening, which would be in the year 10000: it never comes
    assert cal.add_business_us(thursday, 18 * HOUR_US) == at("America/New_York", 9999, 12, 31, 16)
    assert cal.add_business_us(thursday, 19 * HOUR_US) == NEVER_US
    assert cal.add_business_us(thursday, 20 * HOUR_US) == NEVER_US
    assert cal.next_opening(at("America/New_York", 9999, 12, 31, 18)) == NEVER_US
    friday_evening = at("America/New_York", 9999, 12, 31, 18)
    assert cal.business_us(thursday, friday_evening) == 19 * HOUR_US


def test_the_last_local_day_ends_at_its_local_midnight() -> None:
    cal = ServiceCalendar("Asia/Tokyo", ALL_DAY)
    start = at("Asia/Tokyo", 9999, 12, 31, 0)
    assert cal.add_business_us(start, DAY_US) == NEVER_US  # its end is not an opening
    assert cal.add_business_us(start, DAY_US - S) == start + DAY_US - S


def test_local_bucket_answers_a_slot_split_by_a_local_hour_exactly_every_time() -> None:
    """Monrovia was UTC-00:44:30 until 1972: the UTC slot 12:30-12:45 holds local 11:45:30
    to 12:00:30, so it is never cached, nor taken for the last bucket answered."""
    calendar = ServiceCalendar("Africa/Monrovia")
    utc = dt.UTC
    before = int(dt.datetime(1971, 5, 1, 12, 40, tzinfo=utc).timestamp()) * 1_000_000
    after = int(dt.datetime(1971, 5, 1, 12, 44, 40, tzinfo=utc).timestamp()) * 1_000_000
    earlier_slot = before - 3_600_000_000
    assert calendar.local_bucket(earlier_slot) == ("1971-05-01", "10")
    assert calendar.local_bucket(before) == ("1971-05-01", "11")
    assert calendar.local_bucket(after) == ("1971-05-01", "12")
    assert calendar.local_bucket(before) == ("1971-05-01", "11")
    assert calendar.local_bucket(earlier_slot) == ("1971-05-01", "10")
    assert calendar.local_bucket(earlier_slot + 1) == ("1971-05-01", "10")


@settings(max_examples=3000, deadline=None)
@given(
    st.lists(st.integers(-(2**62), 2**62 - 1), max_size=70).map(sorted),
    st.integers(-(2**62), 2**62 - 1),
    st.data(),
)
def test_written_out_searches_are_bisect(values: list[int], x: int, data: st.DataObject) -> None:
    """The compiled core's binary searches answer as `bisect` does, for any sorted list
    (duplicates included) and any probe, a present value and its neighbours included."""
    probes = [x]
    if values:
        present = data.draw(st.sampled_from(values))
        probes += [present - 1, present, present + 1]
    for probe in probes:
        assert calendar._search_right(values, probe) == bisect.bisect_right(values, probe)
        assert calendar._search_left(values, probe) == bisect.bisect_left(values, probe)
        assert calendar._index_after(values, probe) == bisect.bisect_right(values, probe)
        assert calendar._index_at(values, probe) == bisect.bisect_left(values, probe)
