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
from livemetrics.engine.outputs import ConversationAttributes, Dims, Folder, Observation, Output
from livemetrics.engine.state import Conversation, attribute_values
from livemetrics.metrics import is_distribution

CellKey = tuple[str | None, str | None, tuple[str | None, ...], tuple[str, ...]]
Cell = dict[str, Any]  # metric -> int (counter) | Distribution

# metric -> is it a distribution, as metrics are met; bounded, since currencies
# (`transaction_amount_<CURRENCY>`) come from the input
_metric_is_distribution: Final[dict[str, bool]] = {}
_METRIC_MEMO_LIMIT: Final = 4096


class AggregateStore(Folder):
    """In-memory cells plus the latest attributes of every conversation.

    Observations come in as outputs (`apply`) or, in replay, straight from the
    engine's rules (`fold`, a `Folder`). Both go through `fold`, which keeps
    the cell it folded into last: the observations of one event mostly share
    their cell, and share the very objects of its key (the conversation's
    dimensions tuple, the calendar's day and hour), so that cell is reused when
    they are the same objects, without hashing the key (an 11-item tuple inside).
    """

    def __init__(self) -> None:
        self.cells: dict[CellKey, Cell] = {}
        self._attributes: dict[tuple[str, str], dict[str, Any]] = {}
        # conversations whose attributes changed since they were last read (`keep_attributes`)
        self._changed: dict[tuple[str, str], Conversation] = {}
        # The last cell folded into, its key, and the key's parts apart for the
        # identity checks. The key is typed Any: the compiled core keeps a typed
        # tuple unpacked and would pack it anew at every use (a new tuple per lookup).
        self._cell: Cell = {}
        self._key: Any = None
        self._day: str | None = None
        self._hour: str | None = None
        self._dims: Dims | None = None
        self._agents: tuple[str, ...] = ()

    def apply(self, outputs: Iterable[Output]) -> None:
        """Fold engine outputs in; SLA events are for sinks, not aggregates."""
        self._key = self._dims = None  # `cells` may have changed since the last fold
        for item in outputs:
            if isinstance(item, Observation):  # a native class: no lookup by name
                self.fold(
                    item.metric, item.value, item.sign, item.day, item.hour, item.dims, item.agents
                )
            elif isinstance(item, ConversationAttributes):
                if self._changed:  # kept ones first, in the order they came
                    self.read_kept_attributes()
                self._attributes[(item.tenant, item.conversation_id)] = item.values

    @property
    def attributes(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The latest attributes of every conversation, by (tenant, conversation id)."""
        if self._changed:
            self.read_kept_attributes()
        return self._attributes

    @attributes.setter
    def attributes(self, attributes: dict[tuple[str, str], dict[str, Any]]) -> None:
        self._changed.clear()
        self._attributes = attributes

    def keep_attributes(self, conv: Any) -> None:
        """Keep a conversation whose attributes changed (`Folder.keep_attributes`); they
        are read from it when `attributes` is, or when `apply` brings newer ones."""
        kept: Conversation = conv
        self._changed[kept.key] = kept

    def read_kept_attributes(self) -> None:
        """Read the attributes of the conversations kept since the last read."""
        attributes = self._attributes
        for key, conv in self._changed.items():
            attributes[key] = attribute_values(conv)
        self._changed.clear()

    def fold(
        self,
        metric: str,
        value: int | float,
        sign: int,
        day: str | None,
        hour: str | None,
        dims: Dims,
        agents: tuple[str, ...],
    ) -> None:
        """Fold one observation into its cell (see the class doc); replay's hot path.

        `cells` must not change from outside between folds (`apply` starts afresh).
        """
        if (
            dims is not self._dims
            or day is not self._day
            or hour is not self._hour
            or (agents is not self._agents and agents != self._agents)
        ):
            key: Any = (day, hour, dims, agents)  # packed once (see `__init__`)
            found = self.cells.get(key)
            if found is None:
                found = self.cells[key] = {}
            self._cell = found
            self._key = key
            self._day, self._hour, self._dims, self._agents = day, hour, dims, agents
        cell = self._cell
        _fold_value(cell, metric, value, sign)
        if sign < 0 and not cell:
            del self.cells[self._key]
            self._key = self._dims = None

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
    _fold_value(cell, obs.metric, obs.value, obs.sign)


def _fold_value(cell: Cell, metric: str, value: int | float, sign: int) -> None:
    """Fold one observation's value into its cell: a distribution's or a counter's."""
    folds_as_distribution = _metric_is_distribution.get(metric)
    if folds_as_distribution is None:
        folds_as_distribution = is_distribution(metric)
        if len(_metric_is_distribution) < _METRIC_MEMO_LIMIT:
            _metric_is_distribution[metric] = folds_as_distribution
    if folds_as_distribution:
        _fold_distribution(cell, metric, value, sign)
    else:
        _fold_count(cell, metric, sign)


def _fold_count(cell: Cell, metric: str, sign: int) -> None:
    count: int = cell.get(metric, 0)  # a counter: an int, added as one
    count += sign
    if count:
        cell[metric] = count
    else:
        del cell[metric]


def _fold_distribution(cell: Cell, metric: str, value: int | float, sign: int) -> None:
    # typed: compiled, a call of a native class's method (untyped, a call by name)
    dist: Distribution | None = cell.get(metric)
    if dist is None:
        dist = cell[metric] = Distribution()
    if sign > 0:
        dist.add(value)
    else:
        dist.remove(value)
        if dist.is_empty():
            del cell[metric]


def _cell_to_state(cell: Cell) -> dict[str, Any]:
    return {m: (v.to_state() if isinstance(v, Distribution) else v) for m, v in cell.items()}


def _cell_from_state(state: dict[str, Any]) -> Cell:
    return {m: (Distribution.from_state(v) if is_distribution(m) else v) for m, v in state.items()}
