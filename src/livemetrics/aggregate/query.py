"""What a report asks for: dimensions, filters and a date range (SPEC §5).

`ReportQuery` is shared by `replay`, the live `report` and the HTTP API so the
three accept exactly the same options.

    >>> q = ReportQuery.parse(by="agent,day", where=["channel=chat"], range_name="all")
    >>> q.by
    ('agent', 'day')
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

DIMENSIONS: tuple[str, ...] = (
    "tenant",
    "agent",
    "team",
    "channel",
    "direction",
    "contact_type",
    "skill",
    "campaign",
    "theme",
    "tag",
    "customer",
    "conversation",
    "day",
    "hour",
)
RANGES: tuple[str, ...] = ("today", "this-week", "this-month", "all")


class QueryError(ValueError):
    """A report option a user got wrong; the message says which and how to fix it."""


@dataclass(frozen=True, slots=True)
class ReportQuery:
    by: tuple[str, ...] = ("tenant",)
    where: tuple[tuple[str, str], ...] = ()
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    range_name: str | None = None

    @classmethod
    def parse(
        cls,
        by: str | Sequence[str] | None = None,
        where: Sequence[str] = (),
        date_from: str | None = None,
        date_to: str | None = None,
        range_name: str | None = None,
    ) -> ReportQuery:
        """Build a query from CLI/API strings, refusing unknown names with one clear line."""
        if isinstance(by, str):
            by_dims = tuple(d.strip() for d in by.split(",") if d.strip())
        else:
            by_dims = tuple(by or ())
        if not by_dims:
            by_dims = ("tenant",)
        for dim in by_dims:
            _check_dimension(dim, "--by")
        if len(set(by_dims)) != len(by_dims):
            raise QueryError(f"--by names a dimension twice: {','.join(by_dims)}")
        filters = []
        for item in where:
            name, sep, value = item.partition("=")
            if not sep:
                raise QueryError(f"--where needs DIM=VALUE, got {item!r}")
            _check_dimension(name.strip(), "--where")
            filters.append((name.strip(), value))
        if range_name is not None and range_name not in RANGES:
            raise QueryError(f"unknown --range {range_name!r} (choose {', '.join(RANGES)})")
        if range_name is not None and (date_from or date_to):
            raise QueryError("use either --range or --from/--to, not both")
        return cls(
            by=by_dims,
            where=tuple(filters),
            date_from=_parse_date(date_from, "--from"),
            date_to=_parse_date(date_to, "--to"),
            range_name=range_name,
        )


def _check_dimension(name: str, option: str) -> None:
    if name not in DIMENSIONS:
        raise QueryError(
            f"unknown dimension {name!r} in {option} (choose from {', '.join(DIMENSIONS)})"
        )


def _parse_date(text: str | None, option: str) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise QueryError(f"{option} needs a date YYYY-MM-DD, got {text!r}") from None


def range_dates(range_name: str, today: dt.date) -> tuple[dt.date | None, dt.date | None]:
    """Local date bounds of a named range, relative to `today` (SPEC §7 [51])."""
    if range_name == "today":
        return today, today
    if range_name == "this-week":
        monday = today - dt.timedelta(days=today.weekday())
        return monday, monday + dt.timedelta(days=6)
    if range_name == "this-month":
        first = today.replace(day=1)
        next_first = (first + dt.timedelta(days=32)).replace(day=1)
        return first, next_first - dt.timedelta(days=1)
    return None, None
