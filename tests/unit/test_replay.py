"""`replay_lines` itself: what it leaves behind in the process (SPEC §5 replay)."""

from __future__ import annotations

import gc
import weakref

from livemetrics.config import parse_config
from livemetrics.replay import replay_lines
from livemetrics.simulate.streams import STREAM_CONFIG, generate_stream


def test_replay_leaves_no_reference_cycles() -> None:
    """Replay freezes its objects for the cycle collector, so a cycle would leak for good:
    once the result is dropped, reference counting alone must free engine and store."""
    lines = generate_stream(7, conversations=40)
    result = replay_lines(lines, parse_config(STREAM_CONFIG))
    assert result.engine.conversations, "the stream should leave conversations behind"
    engine, store = weakref.ref(result.engine), weakref.ref(result.store)
    enabled = gc.isenabled()
    gc.disable()  # only reference counting may free them here
    try:
        del result
        assert engine() is None, "the engine is held by a reference cycle"
        assert store() is None, "the aggregate store is held by a reference cycle"
    finally:
        if enabled:
            gc.enable()


def test_replay_restores_the_cycle_collector() -> None:
    assert gc.isenabled()
    replay_lines(generate_stream(7, conversations=5), parse_config(STREAM_CONFIG))
    assert gc.isenabled()
