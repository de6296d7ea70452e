"""`replay_lines` itself: what it leaves behind in the process (SPEC §5 replay)."""

from __future__ import annotations

import dataclasses
import gc

from livemetrics import events
from livemetrics.aggregate.query import ReportQuery
from livemetrics.aggregate.store import AggregateStore, _cell_to_state
from livemetrics.config import parse_config
from livemetrics.engine.engine import Engine
from livemetrics.engine.outputs import Observation, Output
from livemetrics.events import Rejection, decode_line
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


def test_observations_folded_straight_into_the_store_equal_those_of_the_output_list() -> None:
    """Replay folds the observations nobody keeps straight into its store
    (`Engine.fold_into`); the engine without a folder lists every one of them.
    Both must leave the same cells and attributes, and replay must leave the
    engine listing again."""
    lines = generate_stream(11, conversations=300)
    config = parse_config(STREAM_CONFIG)
    folded = replay_lines(lines, config)

    engine, store = Engine(config), AggregateStore()
    out: list[Output] = []
    for line in lines:
        item = decode_line(line)
        if isinstance(item, Rejection):
            engine.reject(item, out)
        elif item is not None:
            engine.process(item, out)
    store.apply(out)
    observations = sum(isinstance(item, Observation) for item in out)
    assert observations > 20 * len(folded.engine.conversations), "too few to compare"

    assert folded.store.cells.keys() == store.cells.keys()  # the order of making differs
    assert all(
        _cell_to_state(cell) == _cell_to_state(store.cells[key])
        for key, cell in folded.store.cells.items()
    )
    assert folded.store.attributes == store.attributes
    after: list[Output] = []
    folded.engine.advance(folded.engine.clock_us + 10**12, after)
    assert any(isinstance(item, Observation) for item in after), "still folding after replay"


def test_attributes_kept_by_the_store_read_as_those_the_engine_last_sent() -> None:
    """A folding engine hands the store a conversation whose attributes changed, and
    the store reads them when its attributes are read. Read after any event, they must
    be those an engine sends to an output list, in the same order."""
    lines = generate_stream(5, conversations=120)
    config = parse_config(STREAM_CONFIG)
    listing, listed = Engine(config), AggregateStore()
    folding, folded = Engine(config), AggregateStore()
    folding.fold_into(folded)
    reads = 0
    for number, line in enumerate(lines):
        item = decode_line(line)
        out: list[Output] = []
        folding_out: list[Output] = []
        if isinstance(item, Rejection):
            listing.reject(item, out)
            folding.reject(item, folding_out)
        elif item is not None:
            listing.process(item, out)
            folding.process(item, folding_out)
        listed.apply(out)
        folded.apply(folding_out)
        if number % 97 == 0:
            reads += 1
            assert list(folded.attributes.items()) == list(listed.attributes.items()), number
    assert reads > 10 and len(listed.attributes) == 120
    assert list(folded.attributes.items()) == list(listed.attributes.items())


def test_the_engine_finds_conversations_by_tenant_as_it_keeps_them() -> None:
    """`Engine.process` looks conversations up by tenant, then id; that index must
    follow `conversations` through starts, drops after retention, unloads and loads."""
    config = dataclasses.replace(parse_config(STREAM_CONFIG), retention_days=0.02)
    result = replay_lines(generate_stream(3, conversations=200), config)
    engine = result.engine
    assert engine.dropped, "the stream should outlive the retention of some conversations"

    def indexed() -> dict:
        return {
            (tenant, conversation_id): conv
            for tenant, of_tenant in engine._by_tenant.items()
            for conversation_id, conv in of_tenant.items()
        }

    assert indexed() == engine.conversations
    moved = list(engine.conversations.values())[:5]
    for conv in moved:
        engine.unload(conv.key)
    assert indexed() == engine.conversations
    for conv in moved:
        engine.load(conv)
    assert indexed() == engine.conversations


def test_a_platform_field_on_every_event_changes_no_number() -> None:
    """SPEC §7 [3]: fields a type does not declare are ignored. A platform that adds one
    to every event gets the same reports; past a run of such events its name is learned
    (`events._ExtraFields`), so those events keep the fast path."""
    events._EXTRA_FIELDS.forget()
    lines = generate_stream(11, conversations=150)
    with_field = []
    for line in lines:
        body = line.rstrip(b"\n")
        if body.startswith(b"{") and body.endswith(b"}"):
            body = body[:-1] + b',"platform_ref":{"region":"eu-1","shard":7}}'
        with_field.append(body + b"\n")
    config = parse_config(STREAM_CONFIG)
    plain = replay_lines(lines, config)
    events._EXTRA_FIELDS.forget()
    extended = replay_lines(with_field, config)
    assert "platform_ref" in events._EXTRA_FIELDS.names
    assert dataclasses.asdict(extended.counts) == dataclasses.asdict(plain.counts)
    for by in ("tenant", "agent,day", "conversation"):
        query = ReportQuery(by=tuple(by.split(",")))
        assert extended.report(config, query) == plain.report(config, query)
    events._EXTRA_FIELDS.forget()
