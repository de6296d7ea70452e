"""Build the SPEC §5 report from aggregate cells: filter, group by dimensions, merge.

The same function serves `replay` (cells in memory) and the live `report`
(cells read back from Redis), which is why the two agree.

    >>> report = build_report(store.items(), store.attributes, config, q, now)  # doctest: +SKIP
    >>> report["rows"][0]["first_response_seconds"]["p90"]  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from livemetrics.aggregate.distribution import Distribution
from livemetrics.aggregate.query import ReportQuery, range_dates
from livemetrics.aggregate.store import Cell, CellKey
from livemetrics.config import Config
from livemetrics.engine.outputs import DIM_INDEX
from livemetrics.metrics import (
    CONVERSATION_ATTRIBUTES,
    COUNTERS,
    DISTRIBUTIONS,
    SLA_BREACH_COUNTERS,
    TRANSACTION_PREFIX,
)


class _Row:
    __slots__ = ("agents_writing", "counters", "customers", "distributions", "tenants")

    def __init__(self) -> None:
        self.counters: dict[str, int] = {}
        self.distributions: dict[str, Distribution] = {}
        self.customers: set[str] = set()
        self.agents_writing: set[str] = set()
        self.tenants: set[str | None] = set()

    def add(self, cell: Cell, dims: tuple[str | None, ...], agents: tuple[str, ...]) -> None:
        counters = self.counters
        for metric, value in cell.items():
            if isinstance(value, Distribution):
                dist = self.distributions.get(metric)
                if dist is None:
                    dist = self.distributions[metric] = Distribution()
                dist.merge(value)
            else:
                counters[metric] = counters.get(metric, 0) + value
        self.tenants.add(dims[0])
        customer = dims[DIM_INDEX["customer"]]
        if customer is not None:
            self.customers.add(customer)
        if cell.get("agent_messages"):
            self.agents_writing.update(agents)


def build_report(
    cells: Iterable[tuple[CellKey, Cell]],
    attributes: Mapping[tuple[str, str], Mapping[str, Any]],
    config: Config,
    query: ReportQuery,
    now_us: int,
) -> dict[str, Any]:
    """Rows for every `--by` combination that has an observation (SPEC §7 [50]-[52])."""
    bounds = _DateBounds(config, query, now_us)
    rows: dict[tuple[str | None, ...], _Row] = {}
    currencies: set[str] = set()
    for (day, hour, dims, agents), cell in cells:
        if not bounds.contains(dims[0], day) or not _matches(query.where, day, hour, dims, agents):
            continue
        for metric in cell:
            if metric.startswith(TRANSACTION_PREFIX):
                currencies.add(metric)
        for group in _group_keys(query.by, day, hour, dims, agents):
            row = rows.get(group)
            if row is None:
                row = rows[group] = _Row()
            row.add(cell, dims, agents)
    distribution_names = (*DISTRIBUTIONS, *sorted(currencies))
    with_attributes = "conversation" in query.by
    out_rows = []
    for group in sorted(rows, key=_sort_key):
        row = rows[group]
        record: dict[str, Any] = dict(zip(query.by, group, strict=True))
        counters = row.counters
        for name in COUNTERS:
            if name == "sla_breaches":
                record[name] = sum(counters.get(k, 0) for k in SLA_BREACH_COUNTERS)
            else:
                record[name] = counters.get(name, 0)
        record["distinct_customers"] = len(row.customers)
        record["distinct_agents"] = len(row.agents_writing)
        for name in distribution_names:
            dist = row.distributions.get(name)
            record[name] = dist.summary() if dist is not None else Distribution().summary()
        if with_attributes:
            record.update(_conversation_attributes(row, group, query.by, attributes))
        out_rows.append(record)
    return {"by": list(query.by), "rows": out_rows}


class _DateBounds:
    """Inclusive local-date bounds; named ranges per tenant, relative to `now` (SPEC §7 [51])."""

    def __init__(self, config: Config, query: ReportQuery, now_us: int) -> None:
        self.config = config
        self.range_name = query.range_name
        self.now_us = now_us
        self.fixed = (
            query.date_from.isoformat() if query.date_from else None,
            query.date_to.isoformat() if query.date_to else None,
        )
        self.unbounded = (
            query.range_name in (None, "all") and query.date_from is None and query.date_to is None
        )
        self._per_tenant: dict[str | None, tuple[str | None, str | None]] = {}

    def contains(self, tenant: str | None, day: str | None) -> bool:
        if self.unbounded:
            return True
        if day is None:
            return False
        low, high = self._bounds(tenant)
        return (low is None or day >= low) and (high is None or day <= high)

    def _bounds(self, tenant: str | None) -> tuple[str | None, str | None]:
        if self.range_name is None:
            return self.fixed
        cached = self._per_tenant.get(tenant)
        if cached is None:
            today = self.config.tenant(tenant or "").calendar.local_date(self.now_us)
            low, high = range_dates(self.range_name, today)
            cached = (_iso(low), _iso(high))
            self._per_tenant[tenant] = cached
        return cached


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def _dim_value(
    name: str, day: str | None, hour: str | None, dims: tuple[str | None, ...]
) -> str | None:
    if name == "day":
        return day
    if name == "hour":
        return hour
    return dims[DIM_INDEX[name]]


def _matches(
    where: tuple[tuple[str, str], ...],
    day: str | None,
    hour: str | None,
    dims: tuple[str | None, ...],
    agents: tuple[str, ...],
) -> bool:
    """`--where` filters, ANDed; `DIM=` matches no value (SPEC §7 [52])."""
    for name, wanted in where:
        if name == "agent":
            if wanted == "":
                if agents:
                    return False
            elif wanted not in agents:
                return False
            continue
        value = _dim_value(name, day, hour, dims)
        if wanted == "":
            if value is not None:
                return False
        elif value != wanted:
            return False
    return True


def _group_keys(
    by: tuple[str, ...],
    day: str | None,
    hour: str | None,
    dims: tuple[str | None, ...],
    agents: tuple[str, ...],
) -> list[tuple[str | None, ...]]:
    """One group per row the cell belongs to; several agents give several rows."""
    keys: list[tuple[str | None, ...]] = [()]
    for name in by:
        if name == "agent":
            choices: tuple[str | None, ...] = agents if agents else (None,)
            keys = [(*k, a) for k in keys for a in choices]
        else:
            value = _dim_value(name, day, hour, dims)
            keys = [(*k, value) for k in keys]
    return keys


def _sort_key(group: tuple[str | None, ...]) -> tuple[tuple[int, str], ...]:
    return tuple((0, "") if v is None else (1, v) for v in group)


def _conversation_attributes(
    row: _Row,
    group: tuple[str | None, ...],
    by: tuple[str, ...],
    attributes: Mapping[tuple[str, str], Mapping[str, Any]],
) -> dict[str, Any]:
    """Attributes of the row's conversation (SPEC §3, D30).

    The attribute `csat_score` (the latest score) takes the place of the
    distribution of the same name in these rows.
    """
    conversation = dict(zip(by, group, strict=True)).get("conversation")
    found: Mapping[str, Any] = {}
    if conversation is not None and len(row.tenants) == 1:
        (tenant,) = row.tenants
        found = attributes.get((tenant or "", conversation), {})
    return {name: found.get(name) for name in CONVERSATION_ATTRIBUTES}
