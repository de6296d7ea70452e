"""Mergeable aggregates per (tenant-local hour bucket, dimensions, credited agents).

A *cell* holds the counters and distributions of every observation with the
same day, hour, dimensions and agent set. Cells keep the conversation in their
key, so any `--by` of SPEC §5 (conversation and customer included) is a merge
of cells, and a retraction lands in exactly the cell it came from.

    >>> store = AggregateStore()
    >>> store.apply(outputs)              # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final

from livemetrics.aggregate.distribution import Distribution
from livemetrics.engine.outputs import ConversationAttributes, Observation, Output
from livemetrics.metrics import is_distribution

CellKey = tuple[str | None, str | None, tuple[str | None, ...], tuple[str, ...]]
Cell = dict[str, Any]  # metric -> int (counter) | Distribution

# metric -> is it a distribution, as metrics are met; bounded, since currencies
# (`transaction_amount_<CURRENCY>`) come from the input
_metric_is_distribution: Final[dict[str, bool]] = {}
_METRIC_MEMO_LIMIT: Final = 4096


class AggregateStore:
    """In-memory cells plus the latest attributes of every conversation."""

    def __init__(self) -> None:
        self.cells: dict[CellKey, Cell] = {}
        self.attributes: dict[tuple[str, str], dict[str, Any]] = {}

    def apply(self, outputs: Iterable[Output]) -> None:
        """Fold engine outputs in; SLA events are for sinks, not aggregates.

        The hot loop of `replay`: counters (most observations) are folded
        inline, distributions by `_fold`; same result as `_fold` for each.
        The observations of one event mostly share their cell, and share the
        very objects of its key (the conversation's dimensions tuple, the
        calendar's day and hour): the last cell is reused when they are the
        same objects, without hashing the key (an 11-item tuple inside).
        """
        cells = self.cells
        attributes = self.attributes
        distribution = _metric_is_distribution
        # The current cell's key, and its parts apart for the identity checks. The
        # key is typed Any: the compiled core keeps a typed tuple unpacked and
        # would check and pack it anew at every use (a new tuple per lookup).
        key: Any = None
        key_day: str | None = None
        key_hour: str | None = None
        key_dims: tuple[str | None, ...] = ()
        key_agents: tuple[str, ...] = ()
        cell: Cell = {}
        for item in outputs:
            if not isinstance(item, Observation):  # a native class: no lookup by name
                if isinstance(item, ConversationAttributes):
                    attributes[(item.tenant, item.conversation_id)] = item.values
                continue
            metric = item.metric
            day = item.day
            hour = item.hour
            dims = item.dims
            agents = item.agents
            sign = item.sign
            if (
                key is None
                or dims is not key_dims
                or day is not key_day
                or hour is not key_hour
                or (agents is not key_agents and agents != key_agents)
            ):
                key = (day, hour, dims, agents)
                key_day, key_hour, key_dims, key_agents = day, hour, dims, agents
                found = cells.get(key)
                if found is None:
                    found = cells[key] = {}
                cell = found
            folds_as_distribution = distribution.get(metric)
            if folds_as_distribution is None:
                folds_as_distribution = is_distribution(metric)
                if len(distribution) < _METRIC_MEMO_LIMIT:
                    distribution[metric] = folds_as_distribution
            if folds_as_distribution:
                _fold(cell, item)
            else:
                count: int = cell.get(metric, 0)  # a counter: an int, added as one
                count += sign
                if count:
                    cell[metric] = count
                else:
                    del cell[metric]
            if sign < 0 and not cell:
                del cells[key]
                key = None

    def items(self) -> Iterator[tuple[CellKey, Cell]]:
        return iter(self.cells.items())

    def to_state(self) -> dict[str, Any]:
        return {
            "cells": [
                [day, hour, list(dims), list(agents), _cell_to_state(cell)]
                for (day, hour, dims, agents), cell in self.cells.items()
            ],
            "attributes": [[t, c, v] for (t, c), v in self.attributes.items()],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> AggregateStore:
        store = cls()
        for day, hour, dims, agents, cell in state["cells"]:
            store.cells[(day, hour, tuple(dims), tuple(agents))] = _cell_from_state(cell)
        store.attributes = {(t, c): v for t, c, v in state["attributes"]}
        return store


def _fold(cell: Cell, obs: Observation) -> None:
    metric = obs.metric
    if is_distribution(metric):
        dist = cell.get(metric)
        if dist is None:
            dist = cell[metric] = Distribution()
        if obs.sign > 0:
            dist.add(obs.value)
        else:
            dist.remove(obs.value)
            if dist.is_empty():
                del cell[metric]
    else:
        value = cell.get(metric, 0) + obs.sign
        if value:
            cell[metric] = value
        else:
            del cell[metric]


def _cell_to_state(cell: Cell) -> dict[str, Any]:
    return {m: (v.to_state() if isinstance(v, Distribution) else v) for m, v in cell.items()}


def _cell_from_state(state: dict[str, Any]) -> Cell:
    return {m: (Distribution.from_state(v) if is_distribution(m) else v) for m, v in state.items()}
