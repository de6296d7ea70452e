"""Laws the product promises, checked with hypothesis on generated traffic.

- stopping anywhere, serialising all state and resuming gives the same report;
- moving whole conversations around in the file changes nothing per conversation;
- re-inserting duplicates changes only `duplicate_events`.
"""

from __future__ import annotations

import random
from functools import cache
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livemetrics.aggregate.query import ReportQuery
from livemetrics.config import Config, parse_config
from livemetrics.events import Event, decode_line
from livemetrics.replay import ReplayResult, replay_lines
from livemetrics.simulate.streams import STREAM_CONFIG, generate_stream, reorder_conversations

BY_TENANT_DAY = ReportQuery.parse(by="tenant,day")
BY_CONVERSATION = ReportQuery.parse(by="tenant,conversation")
PROPERTY_SETTINGS = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@cache
def _config() -> Config:
    return parse_config(STREAM_CONFIG)


@cache
def _stream(seed: int) -> tuple[bytes, ...]:
    return tuple(generate_stream(seed, conversations=60))


def _report(lines: list[bytes] | tuple[bytes, ...], query: ReportQuery) -> dict[str, Any]:
    return replay_lines(lines, _config()).report(_config(), query)


@PROPERTY_SETTINGS
@given(seed=st.integers(0, 5), cut=st.floats(0, 1))
def test_resume_from_serialised_state_gives_the_same_report(seed: int, cut: float) -> None:
    lines = _stream(seed)
    split = int(len(lines) * cut)
    first = replay_lines(lines[:split], _config())
    saved = orjson.dumps(first.to_state())
    resumed = ReplayResult.from_state(_config(), orjson.loads(saved))
    resumed = replay_lines(lines[split:], _config(), resume=resumed)
    for query in (BY_TENANT_DAY, BY_CONVERSATION):
        assert resumed.report(_config(), query) == _report(lines, query)


@PROPERTY_SETTINGS
@given(seed=st.integers(0, 5), order_seed=st.integers(0, 10_000))
def test_moving_whole_conversations_changes_nothing_per_conversation(
    seed: int, order_seed: int
) -> None:
    lines = list(_stream(seed))
    moved = reorder_conversations(lines, order_seed)
    assert sorted(moved) == sorted(lines)

    def per_conversation(report: dict[str, Any]) -> dict[Any, Any]:
        return {
            (row["tenant"], row["conversation"]): row
            for row in report["rows"]
            if row["conversation"] is not None
        }

    assert per_conversation(_report(moved, BY_CONVERSATION)) == per_conversation(
        _report(lines, BY_CONVERSATION)
    )


@PROPERTY_SETTINGS
@given(seed=st.integers(0, 5), copies_seed=st.integers(0, 10_000), copies=st.integers(1, 30))
def test_reinserted_duplicates_change_only_duplicate_events(
    seed: int, copies_seed: int, copies: int
) -> None:
    lines = list(_stream(seed))
    valid = [i for i, line in enumerate(lines) if isinstance(decode_line(line), Event)]
    rng = random.Random(copies_seed)
    inserts = []
    for _ in range(copies):
        original = rng.choice(valid)
        # a copy arrives after its original, anywhere later in the stream
        inserts.append((rng.randint(original + 1, len(lines)), lines[original]))
    with_copies = list(lines)
    for position, line in sorted(inserts, key=lambda item: item[0], reverse=True):
        with_copies.insert(position, line)
    before = _report(lines, BY_TENANT_DAY)
    after = _report(with_copies, BY_TENANT_DAY)
    assert _without_duplicates(after) == _without_duplicates(before)
    assert _total(after, "duplicate_events") == _total(before, "duplicate_events") + copies


def _total(report: dict[str, Any], counter: str) -> int:
    return sum(row[counter] for row in report["rows"])


def _without_duplicates(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows without the `duplicate_events` key, dropping rows that only had duplicates."""
    rows = []
    for row in report["rows"]:
        trimmed = {k: v for k, v in row.items() if k != "duplicate_events"}
        numbers = [v for k, v in trimmed.items() if k not in BY_TENANT_DAY.by]
        if any(v["count"] if isinstance(v, dict) else v for v in numbers):
            rows.append(trimmed)
    return rows
