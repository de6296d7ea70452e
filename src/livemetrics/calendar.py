"""Service hours and business durations (SPEC §2 "Service hours", §7 [14], [41]).

All instants are integer microseconds since the epoch, UTC (``ts_us``). Open
windows are local wall-clock times in the tenant's IANA zone; each window edge
is converted to UTC with ``fold=0`` (SPEC §7 [14]), so a 23- or 25-hour local
day is counted as it really was.

    >>> cal = ServiceCalendar("UTC", {3: [(7 * 3600, 17 * 3600)]})  # Thursdays 07-17
    >>> cal.business_us(25_195_000_000, 25_205_000_000)  # 1970-01-01 06:59:55 .. 07:00:05
    5000000

Speed: the open intervals of each local date are cached (dict keyed by date),
and each local month gets a prefix-sum index over them, so a duration costs two
bisections plus one addition per whole month it spans, however long it is.
"""

from __future__ import annotations

import datetime as dt
import types
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Final
from zoneinfo import ZoneInfo

__all__ = ["ServiceCalendar"]

US_PER_SECOND: Final = 1_000_000
SECONDS_PER_DAY: Final = 86_400
_SLOT_US: Final = 900 * US_PER_SECOND
_SLOT_CACHE_LIMIT: Final = 200_000
_NO_SLOT: Final = -(2**62)  # "no slot answered yet": a slot of an instant no datetime reaches
_EPOCH_ORDINAL: Final = dt.date(1970, 1, 1).toordinal()
_ONE_DAY: Final = dt.timedelta(days=1)
_LAST_MONTH: Final = dt.date.max.year * 12 + dt.date.max.month - 1  # December 9999
# "no such instant": a deadline past the calendar's end; no clock reaches it
NEVER_US: Final = 2**62

Interval = tuple[int, int]


def _search_right(values: list[int], x: int) -> int:
    """`bisect_right(values, x)` written out: compiled, a loop over machine
    integers; `bisect` through Python's calling convention costs about 900
    instructions a call (two to four per business duration or SLA deadline)."""
    lo = 0
    hi = len(values)
    while lo < hi:
        mid = (lo + hi) >> 1
        if x < values[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _search_left(values: list[int], x: int) -> int:
    """`bisect_left(values, x)` written out (see `_search_right`)."""
    lo = 0
    hi = len(values)
    while lo < hi:
        mid = (lo + hi) >> 1
        if values[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


# compiled: the loops above; plain Python: `bisect`'s C functions, faster there
_COMPILED: Final = not isinstance(_search_right, types.FunctionType)


def _index_after(values: list[int], x: int) -> int:
    """How many of the sorted `values` are <= x (`bisect_right`)."""
    return _search_right(values, x) if _COMPILED else bisect_right(values, x)


def _index_at(values: list[int], x: int) -> int:
    """How many of the sorted `values` are < x (`bisect_left`)."""
    return _search_left(values, x) if _COMPILED else bisect_left(values, x)


class _MonthIndex:
    """Open intervals of one local month, with cumulative business time.

    ``cum_end[i]`` is the business time from the month's start to ``ends[i]``;
    intervals are sorted, disjoint and non-empty, and lie in
    ``[span_start, span_end)`` (local midnight of the 1st to that of the next 1st).
    """

    __slots__ = ("cum_end", "ends", "span_end", "span_start", "starts", "total")

    def __init__(self, span_start: int, span_end: int, intervals: Sequence[Interval]) -> None:
        self.span_start = span_start
        self.span_end = span_end
        self.starts = [s for s, _ in intervals]
        self.ends = [e for _, e in intervals]
        cum_end: list[int] = []
        running = 0
        for s, e in intervals:
            running += e - s
            cum_end.append(running)
        self.cum_end = cum_end
        self.total = running

    def business_before(self, ts_us: int) -> int:
        """Business time in ``[span_start, ts_us)``."""
        i = _index_after(self.starts, ts_us) - 1
        if i < 0:
            return 0
        end = self.ends[i]
        if ts_us >= end:
            return self.cum_end[i]
        return self.cum_end[i] - (end - ts_us)


class ServiceCalendar:
    """A tenant's open windows, holidays and time zone (SPEC §7 [14]).

    ``weekly`` maps weekday (0 = Monday .. 6 = Sunday) to sorted, non-overlapping
    ``(start, end)`` local seconds of day with ``0 <= start < end <= 86400``;
    missing days are closed. ``holidays`` are whole local dates, closed all day.
    A calendar with no window at all (``has_hours`` false) counts no business
    time, and deadlines in business time cannot be computed on it.
    """

    def __init__(
        self,
        timezone: str,
        weekly: Mapping[int, Sequence[tuple[int, int]]] | None = None,
        holidays: Iterable[dt.date] = (),
    ) -> None:
        self.timezone = timezone
        self._tz = ZoneInfo(timezone)
        self._weekly: tuple[tuple[Interval, ...], ...] = _check_weekly(weekly or {})
        self._holidays = frozenset(holidays)
        self.has_hours = any(self._weekly)
        self._slots: dict[int, tuple[str, str, dt.date, int]] = {}
        # the bucket last answered by `local_bucket`: consecutive events and
        # observations of a tenant mostly fall in one 15-minute slot
        self._last_slot = _NO_SLOT
        self._last_day = ""
        self._last_hour = ""
        self._days: dict[dt.date, tuple[Interval, ...]] = {}
        self._months: dict[int, _MonthIndex] = {}

    def __repr__(self) -> str:
        return f"ServiceCalendar({self.timezone!r}, has_hours={self.has_hours})"

    # -- local time -----------------------------------------------------

    def local_bucket(self, ts_us: int) -> tuple[str, str]:
        """The tenant-local ``("YYYY-MM-DD", "HH")`` bucket of an instant (SPEC §7 [51])."""
        slot = ts_us // _SLOT_US
        if slot == self._last_slot:
            return self._last_day, self._last_hour
        entry = self._slots.get(slot)
        if entry is None:
            entry = self._slot_entry(ts_us)
            if slot not in self._slots:  # a slot answered exactly each time, never kept
                return entry[0], entry[1]
        self._last_slot, self._last_day, self._last_hour = slot, entry[0], entry[1]
        return entry[0], entry[1]

    def local_date(self, ts_us: int) -> dt.date:
        """The tenant-local date of an instant."""
        entry = self._slots.get(ts_us // _SLOT_US)
        if entry is None:
            entry = self._slot_entry(ts_us)
        return entry[2]

    def _slot_entry(self, ts_us: int) -> tuple[str, str, dt.date, int]:
        """Local date and hour of the 15-minute UTC slot holding ``ts_us``.

        Every current offset is a multiple of 15 minutes, so a slot lies in one
        local hour; a slot that does not (a historical LMT offset, or a
        transition inside it) is answered exactly and not cached.
        """
        slot = ts_us // _SLOT_US
        first_s = slot * (_SLOT_US // US_PER_SECOND)
        first = dt.datetime.fromtimestamp(first_s, self._tz)
        last = dt.datetime.fromtimestamp(first_s + 899, self._tz)
        offset = first.utcoffset()
        cacheable = (
            offset is not None and offset == last.utcoffset() and offset.total_seconds() % 900 == 0
        )
        if not cacheable:
            first = dt.datetime.fromtimestamp(ts_us // US_PER_SECOND, self._tz)
        day = first.date()
        entry = (day.isoformat(), f"{first.hour:02d}", day, day.year * 12 + day.month - 1)
        if cacheable:
            if len(self._slots) >= _SLOT_CACHE_LIMIT:
                self._slots.clear()
            self._slots[slot] = entry
        return entry

    # -- open intervals -------------------------------------------------

    def _local_to_us(self, day: dt.date, second_of_day: int) -> int:
        """UTC instant of a local wall-clock time, ``fold=0`` (SPEC §7 [14]); 86400 = next 00:00."""
        if second_of_day >= SECONDS_PER_DAY:
            if day == dt.date.max:  # the end of 9999-12-31: no next date to start from
                return self._local_to_us(day, SECONDS_PER_DAY - 1) + US_PER_SECOND
            day = day + _ONE_DAY
            second_of_day -= SECONDS_PER_DAY
        hour, rest = divmod(second_of_day, 3600)
        minute, second = divmod(rest, 60)
        local = dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=self._tz)
        offset = local.utcoffset()
        offset_s = 0 if offset is None else offset.days * SECONDS_PER_DAY + offset.seconds
        days = day.toordinal() - _EPOCH_ORDINAL
        return (days * SECONDS_PER_DAY + second_of_day - offset_s) * US_PER_SECOND

    def day_intervals(self, day: dt.date) -> tuple[Interval, ...]:
        """Open intervals of a local date in UTC microseconds, sorted and disjoint.

        Edges map with ``fold=0``; a window whose edges cross in a spring-forward
        gap is empty, overlapping or touching results are merged, and all are
        clipped to the date's own span (local midnight to next local midnight)
        so consecutive dates never overlap.
        """
        cached = self._days.get(day)
        if cached is not None:
            return cached
        windows = () if day in self._holidays else self._weekly[day.weekday()]
        result: tuple[Interval, ...] = ()
        if windows:
            lower = self._local_to_us(day, 0)
            upper = self._local_to_us(day, SECONDS_PER_DAY)
            raw = sorted(
                (max(lower, self._local_to_us(day, s)), min(upper, self._local_to_us(day, e)))
                for s, e in windows
            )
            merged: list[list[int]] = []
            for s, e in raw:
                if e <= s:
                    continue
                if merged and s <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], e)
                else:
                    merged.append([s, e])
            result = tuple((s, e) for s, e in merged)
        self._days[day] = result
        return result

    def _month(self, month_no: int) -> _MonthIndex:
        index = self._months.get(month_no)
        if index is None:
            index = self._build_month(month_no)
            self._months[month_no] = index
        return index

    def _build_month(self, month_no: int) -> _MonthIndex:
        """One local month's index; past December 9999, one closed month to the end of time."""
        if month_no > _LAST_MONTH:
            end = self._local_to_us(dt.date.max, SECONDS_PER_DAY)
            return _MonthIndex(end, NEVER_US, ())
        year, month0 = divmod(month_no, 12)
        first = dt.date(year, month0 + 1, 1)
        last = dt.date.max if month_no == _LAST_MONTH else _next_month(first) - _ONE_DAY
        intervals: list[Interval] = []
        if self.has_hours:
            day = first
            while True:
                intervals.extend(self.day_intervals(day))
                if day == last:
                    break
                day += _ONE_DAY
        span_end = self._local_to_us(last, SECONDS_PER_DAY)
        return _MonthIndex(self._local_to_us(first, 0), span_end, intervals)

    def _month_of(self, ts_us: int) -> tuple[int, _MonthIndex]:
        entry = self._slots.get(ts_us // _SLOT_US)
        if entry is None:
            entry = self._slot_entry(ts_us)
        month_no = entry[3]
        index = self._month(month_no)
        while ts_us < index.span_start:
            month_no -= 1
            index = self._month(month_no)
        while ts_us >= index.span_end:
            month_no += 1
            index = self._month(month_no)
        return month_no, index

    # -- queries --------------------------------------------------------

    def business_us(self, start_us: int, end_us: int) -> int:
        """Microseconds of ``[start_us, end_us)`` inside open windows; 0 when empty.

        SPEC §2: only time inside open windows counts; a duration entirely
        outside hours is 0 (SPEC §7 [14]).
        """
        if end_us <= start_us or not self.has_hours:
            return 0
        month_a, index_a = self._month_of(start_us)
        if end_us <= index_a.span_end:
            return index_a.business_before(end_us) - index_a.business_before(start_us)
        month_b, index_b = self._month_of(end_us)
        total = index_a.total - index_a.business_before(start_us)
        total += index_b.business_before(end_us)
        for month_no in range(month_a + 1, month_b):
            total += self._month(month_no).total
        return total

    def add_business_us(self, start_us: int, amount_us: int) -> int:
        """The instant ``amount_us`` of business time after ``start_us`` (an SLA deadline).

        The earliest ``t`` with ``business_us(start_us, t) == amount_us``; when
        that ``t`` is a window's end it moves to the next opening (SPEC §7 [41]).
        ``amount_us == 0`` gives ``start_us`` when open, else the next opening.
        """
        if not self.has_hours:
            raise ValueError(f"calendar {self.timezone!r} has no service hours")
        if amount_us < 0:
            raise ValueError(f"business amount must not be negative, got {amount_us}")
        if amount_us == 0:
            return self._opening_from(start_us)
        month_no, index = self._month_of(start_us)
        return self._after_business(month_no, index, index.business_before(start_us) + amount_us)

    def add_business_pair(self, start_us: int, first_us: int, second_us: int) -> tuple[int, int]:
        """`add_business_us` of two amounts from one start (an SLA clock's deadline and
        at-risk point): the start's month and the business time before it found once."""
        if first_us <= 0 or second_us <= 0 or not self.has_hours:
            # zero, a refusal or no hours: as the single calls answer
            return self.add_business_us(start_us, first_us), self.add_business_us(
                start_us, second_us
            )
        month_no, index = self._month_of(start_us)
        before = index.business_before(start_us)
        return (
            self._after_business(month_no, index, before + first_us),
            self._after_business(month_no, index, before + second_us),
        )

    def _after_business(self, month_no: int, index: _MonthIndex, target: int) -> int:
        """The instant at `target` business time from the start of month `month_no`
        (`index`), moved from a window's end to the next opening (SPEC §7 [41])."""
        while target > index.total:
            target -= index.total
            month_no += 1
            if month_no > _LAST_MONTH:
                return NEVER_US  # the deadline falls after 9999: it never comes
            index = self._month(month_no)
        i = _index_at(index.cum_end, target)
        overshoot = index.cum_end[i] - target
        if overshoot:
            return index.ends[i] - overshoot
        if i + 1 < len(index.starts):
            return index.starts[i + 1]
        return self._first_opening_after(month_no)

    def is_open(self, ts_us: int) -> bool:
        """Whether ``ts_us`` lies inside an open window (windows are ``[start, end)``)."""
        if not self.has_hours:
            return False
        _, index = self._month_of(ts_us)
        i = _index_after(index.starts, ts_us) - 1
        return i >= 0 and ts_us < index.ends[i]

    def next_opening(self, ts_us: int) -> int | None:
        """The earliest open instant at or after ``ts_us`` (``ts_us`` itself when open).

        ``None`` when the calendar has no hours.
        """
        if not self.has_hours:
            return None
        return self._opening_from(ts_us)

    def _opening_from(self, ts_us: int) -> int:
        month_no, index = self._month_of(ts_us)
        i = _index_after(index.starts, ts_us) - 1
        if i >= 0 and ts_us < index.ends[i]:
            return ts_us
        if i + 1 < len(index.starts):
            return index.starts[i + 1]
        return self._first_opening_after(month_no)

    def _first_opening_after(self, month_no: int) -> int:
        """First opening in a month after ``month_no``, skipping closed months.

        Terminates because a calendar with hours opens every week except on
        holidays, and holidays are finite.
        """
        while True:
            month_no += 1
            if month_no > _LAST_MONTH:
                return NEVER_US
            index = self._month(month_no)
            if index.starts:
                return index.starts[0]


def _next_month(first: dt.date) -> dt.date:
    return dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)


def _check_weekly(
    weekly: Mapping[int, Sequence[tuple[int, int]]],
) -> tuple[tuple[Interval, ...], ...]:
    """Validate and freeze the weekly windows (the config checks them first with key names)."""
    days: list[tuple[Interval, ...]] = [() for _ in range(7)]
    for weekday, windows in weekly.items():
        if not 0 <= weekday <= 6:
            raise ValueError(f"weekday must be 0 (Monday) to 6 (Sunday), got {weekday}")
        ordered = sorted((int(s), int(e)) for s, e in windows)
        for s, e in ordered:
            if not 0 <= s < e <= SECONDS_PER_DAY:
                raise ValueError(f"impossible window ({s}, {e}) on weekday {weekday}")
        for (_, prev_end), (s, _) in pairwise(ordered):
            if s < prev_end:
                raise ValueError(f"overlapping windows on weekday {weekday}")
        days[weekday] = tuple(ordered)
    return tuple(days)
