"""`replay_lines` itself: what it leaves behind in the process (SPEC §5 replay)."""

from __future__ import annotations

import gc

from livemetrics.config import parse_config
from livemetrics.replay import replay_lines
from livemetrics.simulate.streams import STREAM_CONFIG, generate_stream


def test_replay_leaves_no_reference_cycles() -> None:
    """Replay runs with the cycle collector paused, and a caller should not wait for a
    collection to free an engine: once the result is dropped, reference counting
    alone must free everything replay made."""
    lines = generate_stream(7, conversations=40)
    config = parse_config(STREAM_CONFIG)
    gc.collect()
    result = replay_lines(lines, config)
    assert result.engine.conversations, "the stream should leave conversations behind"
    gc.collect()  # garbage of anything else
    del result
    assert gc.collect() == 0, "replay's objects hold a reference cycle"


def test_replay_restores_the_cycle_collector() -> None:
    assert gc.isenabled()
    replay_lines(generate_stream(7, conversations=5), parse_config(STREAM_CONFIG))
    assert gc.isenabled()
