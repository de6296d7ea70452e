"""`replay`: run the engine over a JSONL file, in line order, and build reports.

The same `Engine`, `AggregateStore` and `build_report` as the live worker;
only the source of events differs (SPEC §5).

    >>> result = replay_lines(open("events.jsonl", "rb"), Config())   # doctest: +SKIP
    >>> result.report(config, query)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from livemetrics.aggregate.query import ReportQuery
from livemetrics.aggregate.report import build_report
from livemetrics.aggregate.store import AggregateStore
from livemetrics.config import Config
from livemetrics.engine.engine import Engine
from livemetrics.engine.outputs import Output
from livemetrics.events import Rejection, decode_line

BATCH: Final = 512


@dataclass(slots=True)
class ReplayCounts:
    lines: int = 0
    blank: int = 0
    valid: int = 0
    invalid: int = 0


@dataclass(slots=True)
class ReplayResult:
    engine: Engine
    store: AggregateStore
    counts: ReplayCounts = field(default_factory=ReplayCounts)

    @property
    def now_us(self) -> int:
        """Replay's "now": the latest valid, non-duplicate event time (SPEC §2 "Clock")."""
        return self.engine.clock_us

    def report(self, config: Config, query: ReportQuery) -> dict[str, Any]:
        return build_report(self.store.items(), self.store.attributes, config, query, self.now_us)

    def to_state(self) -> dict[str, Any]:
        return {"engine": self.engine.to_state(), "store": self.store.to_state()}

    @classmethod
    def from_state(cls, config: Config, state: dict[str, Any]) -> ReplayResult:
        return cls(
            Engine.from_state(config, state["engine"]), AggregateStore.from_state(state["store"])
        )


def replay_lines(
    lines: Iterable[bytes],
    config: Config,
    *,
    resume: ReplayResult | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Feed lines through the engine; `on_progress(bytes_read)` is called now and then."""
    with cyclic_gc_paused():
        return _replay(lines, config, resume, on_progress)


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector for the length of a replay.

    Replay builds millions of long-lived objects (cells, distributions,
    conversation state) and almost no reference cycles, yet every full
    collection walks all of them again: with the collector on, a third of the
    replay time went to it (bench/replay_speed.py). Reference counting still
    frees everything that is not a cycle; the collector resumes afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _replay(
    lines: Iterable[bytes],
    config: Config,
    resume: ReplayResult | None,
    on_progress: Callable[[int], None] | None,
) -> ReplayResult:
    result = resume or ReplayResult(Engine(config), AggregateStore())
    engine, store, counts = result.engine, result.store, result.counts
    # methods called on the objects, not bound to locals: the compiled core
    # then calls them directly, without Python's calling convention
    out: list[Output] = []  # what the store does not fold straight in (`Engine.fold_into`)
    lines_read = blank = valid = invalid = read = 0
    engine.fold_into(store)
    try:
        for line in lines:
            lines_read += 1
            read += len(line)
            item = decode_line(line)
            if item is None:
                blank += 1
            elif isinstance(item, Rejection):  # a native class: no lookup by name
                invalid += 1
                engine.reject(item, out)
            else:
                valid += 1
                engine.process(item, out)
            if len(out) >= BATCH:
                store.apply(out)
                out.clear()
            if on_progress is not None and lines_read % 4096 == 0:
                on_progress(read)
        store.apply(out)
        store.read_kept_attributes()  # now, not at the first report: part of replay's time
    finally:  # counted in locals, the loop's hot path; kept right if a line raises
        engine.fold_into(None)
        counts.lines += lines_read
        counts.blank += blank
        counts.valid += valid
        counts.invalid += invalid
    if on_progress is not None:
        on_progress(read)
    return result


def replay_report(lines: Iterable[bytes], config: Config, query: ReportQuery) -> dict[str, Any]:
    """One call from lines to the SPEC §5 report dict."""
    return replay_lines(lines, config).report(config, query)
