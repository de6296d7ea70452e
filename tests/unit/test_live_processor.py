"""The live processor without Kafka: partitioned input, absolute snapshots, crash and resume.

What the worker writes to Redis (the latest absolute snapshot per conversation
and per partition) must give `replay`'s report; after a crash that loses
unflushed work and replays input from an older offset, still the same.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics.aggregate.query import ReportQuery
from livemetrics.aggregate.report import build_report
from livemetrics.config import Config, parse_config
from livemetrics.replay import replay_lines
from livemetrics.simulate.streams import STREAM_CONFIG, generate_stream
from livemetrics.stream.processor import EVENTS, PARTITION_KEY_PREFIX, Flush, LiveProcessor
from tests.support.routing import offsets

QUERIES = (
    ReportQuery.parse(by="tenant,day"),
    ReportQuery.parse(by="agent"),
    ReportQuery.parse(by="conversation"),
)


@cache
def _config() -> Config:
    return parse_config(STREAM_CONFIG)


@cache
def _stream(seed: int) -> tuple[bytes, ...]:
    return tuple(line for line in generate_stream(seed, conversations=80) if line.strip())


class FakeSinks:
    """What Redis and the changelog would hold: the latest record per key."""

    def __init__(self) -> None:
        self.conversations: dict[tuple[str, str], Any] = {}
        self.partitions: dict[int, Any] = {}
        self.tables: dict[tuple[str, bytes], tuple[int, bytes | None]] = {}
        self.clock_us = 0

    def take(self, flush: Flush) -> None:
        for snap in flush.conversations:
            self.conversations[(snap.tenant, snap.conversation_id)] = snap
        for part in flush.partitions:
            self.partitions[part.partition] = part
        for record in flush.records:
            self.tables[(record.table, record.key)] = (record.partition, record.value)
        self.clock_us = max(self.clock_us, flush.clock_us)

    def take_partially(self, flush: Flush, keep: int) -> None:
        """Redis got the whole flush (it is written first); the changelog a prefix."""
        records = flush.records
        flush.records = records[:keep]
        self.take(flush)
        flush.records = records

    def report(self, query: ReportQuery) -> dict[str, Any]:
        cells: list[Any] = []
        attributes = {}
        for key, snap in self.conversations.items():
            cells.extend(snap.cells.items())
            if snap.attributes is not None:
                attributes[key] = snap.attributes
        for part in self.partitions.values():
            cells.extend(part.cells.items())
        return build_report(cells, attributes, _config(), query, self.clock_us)

    def restore_into(self, processor: LiveProcessor) -> None:
        for (table, key), (_, value) in self.tables.items():
            if value is not None:
                processor.restore(table, key, value)


def test_snapshots_give_the_replay_report() -> None:
    lines = _stream(3)
    sinks = FakeSinks()
    processor = LiveProcessor(_config(), publish_observations=False)
    for i, (topic, partition, offset, line) in enumerate(offsets(lines)):
        processor.apply(topic, partition, offset, line)
        if i % 97 == 0:
            sinks.take(processor.flush())
    sinks.take(processor.flush())
    replayed = replay_lines(lines, _config())
    for query in QUERIES:
        assert sinks.report(query) == replayed.report(_config(), query)


@settings(max_examples=10, deadline=None)
@given(crash_at=st.floats(0.05, 0.95), lost=st.integers(0, 200), seed=st.integers(0, 3))
def test_crash_loses_unflushed_work_and_replays_from_an_older_offset(
    crash_at: float, lost: int, seed: int
) -> None:
    lines = _stream(seed)
    records = offsets(lines)
    cut = int(len(records) * crash_at)
    sinks = FakeSinks()
    first = LiveProcessor(_config(), publish_observations=False)
    for i, (topic, partition, offset, line) in enumerate(records[:cut]):
        first.apply(topic, partition, offset, line)
        if i % 50 == 0:
            sinks.take(first.flush())
    # crash: whatever `first` did since its last flush is lost; input is redelivered
    # from `lost` records before the cut (its committed offsets were older)
    second = LiveProcessor(_config(), publish_observations=False)
    sinks.restore_into(second)
    second.advance(sinks.clock_us)
    for topic, partition, offset, line in records[max(0, cut - lost - 60) :]:
        second.apply(topic, partition, offset, line)
    sinks.take(second.flush())
    replayed = replay_lines(lines, _config())
    for query in QUERIES:
        assert sinks.report(query) == replayed.report(_config(), query)


@settings(max_examples=25, deadline=None)
@given(
    crash_at=st.floats(0.05, 0.95),
    kept=st.floats(0.0, 1.0),
    seed=st.integers(0, 3),
    every=st.sampled_from([7, 50]),
)
def test_crash_inside_a_changelog_write_neither_loses_nor_double_counts(
    crash_at: float, kept: float, seed: int, every: int
) -> None:
    """kill -9 while a flush's changelog records are being sent: only a prefix of them
    survives (each partition's record comes last, so it is the one most often lost)
    while Redis already has the whole flush. The records that survived are ahead of
    their partition record; re-applied input is skipped for them, so what they put
    outside themselves (duplicate counts, outcome counters) must come back via
    `reconcile` — not be lost, and not be counted twice.
    """
    lines = _stream(seed) + _duplicates_of(_stream(seed))
    records = offsets(lines)
    cut = int(len(records) * crash_at)
    sinks = FakeSinks()
    first = LiveProcessor(_config(), publish_observations=False)
    for i, (topic, partition, offset, line) in enumerate(records[:cut]):
        first.apply(topic, partition, offset, line)
        if i % every == 0:
            sinks.take(first.flush())
    last = first.flush()
    sinks.take_partially(last, keep=int(len(last.records) * kept))

    second = LiveProcessor(_config(), publish_observations=False)
    sinks.restore_into(second)
    second.reconcile()
    second.advance(sinks.clock_us)
    for topic, partition, offset, line in records:  # the gap refill, then new input
        if offset > second.partition(topic, partition).applied_offset:
            second.apply(topic, partition, offset, line)
    sinks.take(second.flush())

    replayed = replay_lines(lines, _config())
    for query in QUERIES:
        assert sinks.report(query) == replayed.report(_config(), query)
    produced: dict[tuple[str, int], int] = {}
    for topic, partition, _, _ in records:
        produced[(topic, partition)] = produced.get((topic, partition), 0) + 1
    for (topic, partition), count in produced.items():
        counters = second.partition(topic, partition).counters
        outcomes = ("processed", "duplicates", "dead_lettered")
        assert sum(counters.get(name, 0) for name in outcomes) == count, (topic, partition)


@pytest.mark.parametrize("read_before_revoke", [0, 1, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_partition_record_written_before_the_records_ahead_are_reached_counts_them_once(
    seed: int, read_before_revoke: int
) -> None:
    """The rebalance storm (1 -> 2 -> 1 workers): a new owner recovers a changelog
    that ends between a batch's conversation records and its partition record (they
    reach the broker later; kill -9 or a short read of its end), so those records
    are ahead. Before it reads that far the new owner writes its partition record
    (a tick, the flush of a revoke, a batch short of them) and loses the partition.
    The next owner recovers the whole changelog: the old owner's late partition
    record, then the new owner's, last. The records ahead are still ahead of it,
    and what they put outside themselves must be added back once, not twice.
    """
    lines = _stream(seed) + _duplicates_of(_stream(seed))
    records = offsets(lines)
    first_cut, second_cut = len(records) // 3, 2 * len(records) // 3
    sinks = FakeSinks()  # Redis, and the changelogs' latest record per key
    old_owner = LiveProcessor(_config(), publish_observations=False)
    for record in records[:first_cut]:
        old_owner.apply(*record)
    sinks.take(old_owner.flush())
    for record in records[first_cut:second_cut]:
        old_owner.apply(*record)
    last = old_owner.flush()
    partition_records = sum(1 for r in last.records if r.key.startswith(PARTITION_KEY_PREFIX))
    recovered = FakeSinks()  # what the new owner's recovery read
    recovered.tables = dict(sinks.tables)
    recovered.take_partially(last, keep=len(last.records) - partition_records)
    sinks.take(last)  # the old owner's partition records land after all

    new_owner = LiveProcessor(_config(), publish_observations=False)
    recovered.restore_into(new_owner)
    assert new_owner.reconcile() > 0  # records ahead of their partition record
    new_owner.advance(sinks.clock_us)
    reread: dict[tuple[str, int], int] = {}
    for topic, partition, offset, line in records:
        seen = reread.get((topic, partition), 0)
        if offset > new_owner.partition(topic, partition).applied_offset:
            if seen < read_before_revoke:
                new_owner.apply(topic, partition, offset, line)
            reread[(topic, partition)] = seen + 1
    sinks.take(new_owner.flush())  # then revoked: its state is dropped

    next_owner = LiveProcessor(_config(), publish_observations=False)
    sinks.restore_into(next_owner)
    next_owner.reconcile()
    next_owner.advance(sinks.clock_us)
    for topic, partition, offset, line in records:
        if offset > next_owner.partition(topic, partition).applied_offset:
            next_owner.apply(topic, partition, offset, line)
    sinks.take(next_owner.flush())

    produced: dict[tuple[str, int], int] = {}
    for topic, partition, _, _ in records:
        produced[(topic, partition)] = produced.get((topic, partition), 0) + 1
    outcomes = ("processed", "duplicates", "dead_lettered")
    for (topic, partition), count in produced.items():
        counters = next_owner.partition(topic, partition).counters
        assert sum(counters.get(name, 0) for name in outcomes) == count, (topic, partition)
    replayed = replay_lines(lines, _config())
    for query in QUERIES:
        assert sinks.report(query) == replayed.report(_config(), query)


def _duplicates_of(lines: tuple[bytes, ...]) -> tuple[bytes, ...]:
    """Every 9th valid line again, later in the stream: duplicate events to count."""
    return tuple(line for i, line in enumerate(lines) if i % 9 == 0 and line.startswith(b"{"))


def test_a_partition_taken_over_fires_the_timers_the_new_clock_already_passed() -> None:
    """A rebalance moves a partition to a worker whose clock (set by its other
    partitions) is past deadlines the old owner's clock never reached. Those
    timers must fire at once: no later event may come to fire them (the end of
    the stream), and replay fired them.
    """
    # partition 0's input stops halfway, its conversations mid-flight (open SLA
    # clocks and sessions); the other partitions go on to the end
    full = offsets(_stream(1))
    half = len(full) // 2
    records = [r for i, r in enumerate(full) if r[:2] != (EVENTS, 0) or i < half]
    lines = tuple(r[3] for r in records)
    moved = [r for r in records if r[:2] == (EVENTS, 0)]
    rest = [r for r in records if r[:2] != (EVENTS, 0)]
    sinks = FakeSinks()
    old_owner = LiveProcessor(_config(), publish_observations=False)
    for record in moved:
        old_owner.apply(*record)
    handed_over = old_owner.flush()
    sinks.take(handed_over)
    new_owner = LiveProcessor(_config(), publish_observations=False)
    for record in rest:
        new_owner.apply(*record)
    sinks.take(new_owner.flush())
    assert new_owner.engine.clock_us > old_owner.engine.clock_us

    for record in handed_over.records:
        assert record.value is not None
        new_owner.restore(record.table, record.key, record.value)
    new_owner.reconcile(EVENTS, 0)
    new_owner.fire_due()
    sinks.take(new_owner.flush())

    replayed = replay_lines(lines, _config())
    for query in QUERIES:
        assert sinks.report(query) == replayed.report(_config(), query)
