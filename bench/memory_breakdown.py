"""Where the Python heap of an open conversation goes, part by part.

    .venv/bin/python bench/memory_breakdown.py [--conversations 2000] [--events 200000] [--seed 1]

Builds the open conversations of `bench/pipeline.py` figure (f): the same
generated input, each conversation cut halfway to its first resolve or close,
the first `--conversations` of them run through `LiveProcessor` in worker-sized
batches (a flush every 2 000 events), the latest `conversations` table record
per key kept in a dict as the worker's table keeps it. All of it under
tracemalloc, so `heap_bytes_per_open_conversation` is (f)'s
`processor_heap_bytes_per_open_conversation`.

That heap is then split, per open conversation, by a deep walk
(`gc.get_referents`, `sys.getsizeof`) from each part's roots: the engine's
`Conversation` objects, the aggregate cells, the attributes, `home`/`offsets`,
the table stand-in, the engine's timers and other sets, what is not per
conversation (partition cells, counters). The walk only counts objects
allocated during the run (tracemalloc knows their traceback), so interned
strings, small ints, types and the config are never counted. Each object is
counted once: an object reachable from two parts (the tenant and conversation
id strings of the keys, for instance) goes to `shared_between_parts`, not to
either. Three things are measured by clearing them (tracemalloc before/after):
the table stand-in, because `orjson.dumps` leaves its bytes over-allocated and
`sys.getsizeof` shows only their length; the `functools` caches; the dicts and
sets of module globals and of the config that grew during the run (parse and
calendar caches). What none of these reaches is `unattributed`. Also prints the cell
count and the serialised (orjson) sizes of a conversation's cells and engine
state, to show what a compact representation could save. Prints JSON; progress
goes to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import statistics
import sys
import tracemalloc
import zlib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import (
    DEFAULT_EVENTS,
    WORKER_BATCH,
    Partitioner,
    _first_conversations,
    _table_after,
    input_lines,
    open_halves,
    rewrite,
    round_shift,
)

from livemetrics.aggregate.distribution import Distribution
from livemetrics.config import parse_config
from livemetrics.engine.state import OPEN, Conversation, conversation_to_list
from livemetrics.simulate.streams import STREAM_CONFIG
from livemetrics.stream.processor import LiveProcessor, _cells_to_state

TOP_TYPES = 8
TOP_SITES = 10
BYTES_HEADER = sys.getsizeof(b"")  # a bytes object's size beyond its length


def say(message: str) -> None:
    print(f"[memory_breakdown] {message}", file=sys.stderr, flush=True)


def _new(obj: object) -> bool:
    """Allocated while tracemalloc traced (so during the run), and not a type."""
    return not isinstance(obj, type) and tracemalloc.get_object_traceback(obj) is not None


def walk(
    roots: Iterable[object],
    *,
    within: dict[int, object] | None = None,
    claimed: set[int] | None = None,
) -> dict[int, object]:
    """Objects reachable from `roots` (id -> object): allocated during the run, or
    in `within` when given, and not in `claimed` (which this call extends)."""
    found: dict[int, object] = {}
    stack = list(roots)
    while stack:
        obj = stack.pop()
        key = id(obj)
        if key in found or (claimed is not None and key in claimed):
            continue
        if within is not None:
            if key not in within:
                continue
        elif not _new(obj):
            continue
        found[key] = obj
        stack.extend(gc.get_referents(obj))
    if claimed is not None:
        claimed.update(found)
    return found


def size(objects: Iterable[object]) -> int:
    return sum(sys.getsizeof(obj) for obj in objects)


def by_type(objects: Iterable[object], per: int) -> dict[str, float]:
    """Bytes per open conversation by object type, the largest first."""
    totals: Counter[str] = Counter()
    for obj in objects:
        totals[type(obj).__name__] += sys.getsizeof(obj)
    top = totals.most_common(TOP_TYPES)
    rest = sum(totals.values()) - sum(v for _, v in top)
    result = {name: round(value / per, 1) for name, value in top}
    if rest:
        result["other types"] = round(rest / per, 1)
    return result


def build(conversations: int, events: int, seed: int) -> list[Any]:
    """(f)'s first copy of open conversations: `memory()` in bench/pipeline.py."""
    say(f"generating {events} events (seed {seed}) ...")
    lines = input_lines(events, seed)
    shift_us = round_shift(lines)
    partition_of = Partitioner(6)
    first = [rewrite(line, "~o1", shift_us, partition_of) for line in open_halves(lines)]
    return _first_conversations(first, conversations)


def caches() -> list[Any]:
    """Every `functools` cache of the livemetrics modules."""
    found = []
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] != "livemetrics":
            continue
        for value in vars(module).values():
            if callable(getattr(value, "cache_clear", None)) and hasattr(value, "cache_info"):
                found.append(value)
    return found


def containers(config: Any) -> dict[int, tuple[dict[Any, Any] | set[Any], int]]:
    """Dicts and sets reachable from the config and the livemetrics module globals
    (through containers and livemetrics objects): id -> (container, its length now)."""
    stack: list[object] = [config]
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] == "livemetrics":
            stack.extend(vars(module).values())
    seen: set[int] = set()
    found: dict[int, tuple[dict[Any, Any] | set[Any], int]] = {}
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        kind = type(obj)
        if isinstance(obj, dict | set):
            found[id(obj)] = (obj, len(obj))
        elif not (
            kind in (list, tuple, frozenset, MappingProxyType)
            or (not isinstance(obj, type) and kind.__module__.startswith("livemetrics"))
        ):
            continue
        stack.extend(gc.get_referents(obj))
    return found


def traced() -> int:
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def field_breakdown(
    conversations: dict[Any, Conversation], engine_part: dict[int, object], per: int
) -> dict[str, float]:
    """Engine-state bytes per open conversation by `Conversation` field: the part's
    own objects, each to the first field in declaration order that reaches it."""
    shells = [conversations, *conversations.keys(), *conversations.values()]
    claimed = {id(obj) for obj in shells}
    result: dict[str, int] = {"dict slots, key tuples, Conversation objects": size(shells)}
    for item in dataclasses.fields(Conversation):
        values = [getattr(conv, item.name) for conv in conversations.values()]
        result[item.name] = size(walk(values, within=engine_part, claimed=claimed).values())
    strings = [part for key in conversations for part in key]
    result["key strings no field holds"] = size(
        walk(strings, within=engine_part, claimed=claimed).values()
    )
    ordered = sorted(result.items(), key=lambda kv: -kv[1])
    found = {name: round(value / per, 1) for name, value in ordered[:10] if value}
    others = sum(value for _, value in ordered[10:])
    if others:
        found["other fields"] = round(others / per, 1)
    return found


def table_split(table: dict[bytes, bytes], part: dict[int, object], per: int) -> dict[str, float]:
    values = sum(sys.getsizeof(v) for v in table.values() if id(v) in part)
    keys = sum(sys.getsizeof(k) for k in table if id(k) in part)
    return {
        "values (bytes objects)": round(values / per, 1),
        "keys (bytes objects)": round(keys / per, 1),
        "dict slots": round(sys.getsizeof(table) / per, 1),
    }


def cell_stats(processor: LiveProcessor, open_keys: list[Any]) -> dict[str, Any]:
    counts = [len(processor.cells.get(key, {})) for key in open_keys]
    cells = [cell for key in open_keys for cell in processor.cells.get(key, {}).values()]
    dists = [v for cell in cells for v in cell.values() if isinstance(v, Distribution)]
    keys = [k for key in open_keys for k in processor.cells.get(key, {})]
    return {
        "cells_per_open_conversation": round(statistics.fmean(counts), 2),
        "cells_per_open_conversation_median": statistics.median(counts),
        "cells_per_open_conversation_max": max(counts),
        "metrics_per_cell": round(statistics.fmean(len(c) for c in cells), 2) if cells else 0,
        "distributions_per_open_conversation": round(len(dists) / len(open_keys), 2),
        "values_per_distribution": (
            round(statistics.fmean(d.count for d in dists), 2) if dists else 0
        ),
        "distinct_dims_tuples_per_open_conversation": round(
            len({id(k[2]) for k in keys}) / len(open_keys), 2
        ),
        "distinct_dims_values_per_open_conversation": round(
            len({k[2] for k in keys}) / len(open_keys), 2
        ),
    }


def serialised(
    processor: LiveProcessor, table: dict[bytes, bytes], open_keys: list[Any]
) -> dict[str, float]:
    """Mean orjson bytes per open conversation of each piece of its state."""
    engine = processor.engine.conversations

    def mean(sizes: Iterable[int]) -> float:
        return round(statistics.fmean(sizes), 1)

    records = [table[f"{t}\x1f{c}".encode()] for t, c in open_keys]
    return {
        "engine_state": mean(len(orjson.dumps(conversation_to_list(engine[k]))) for k in open_keys),
        "engine_state_seen_ids": mean(len(orjson.dumps(sorted(engine[k].seen))) for k in open_keys),
        "cells": mean(
            len(orjson.dumps(_cells_to_state(processor.cells.get(k, {})))) for k in open_keys
        ),
        "attributes": mean(len(orjson.dumps(processor.attributes.get(k))) for k in open_keys),
        "table_record": mean(len(r) for r in records),
        "table_record_zlib_level_1": mean(len(zlib.compress(r, 1)) for r in records),
    }


def measure(records: list[Any]) -> dict[str, Any]:
    config = parse_config(STREAM_CONFIG)
    gc.collect()
    before_run = containers(config)
    tracemalloc.start(1)
    try:
        before = tracemalloc.get_traced_memory()[0]
        say(f"running {len(records)} events through LiveProcessor ...")
        processor, table = _table_after(records, config)
        heap = traced() - before
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        sites = snapshot.statistics("lineno")[:TOP_SITES]
        del snapshot
        engine = processor.engine
        open_keys = [k for k, c in engine.conversations.items() if c.status == OPEN]
        per = len(open_keys)
        if not per:
            raise SystemExit("no open conversation in the sample")
        cells = cell_stats(processor, open_keys)
        sizes = serialised(processor, table, open_keys)
        say(f"{per} open conversations; walking the parts ...")
        roots: dict[str, list[object]] = {
            "1_engine_conversations": [engine.conversations],
            "2_cells": [processor.cells],
            "3_attributes": [processor.attributes],
            "4_bookkeeping_home_offsets": [processor.home, processor.offsets],
            "5_table_stand_in": [table],
            "6a_engine_timers": [engine._timers.due, engine._timers.first, engine._timers.more],
            "6b_engine_dropped_status_presence": [
                engine.dropped,
                engine.status_ids,
                engine.presence,
            ],
            "not_per_conversation_partition_state": [processor.partitions],
            "not_per_conversation_processor_other": [
                processor.totals,
                processor.presence_ids,
                processor.presence_home,
                processor.presence_offsets,
                processor._extras,
                processor._restored_extras,
                processor._dirty,
                processor._dropped,
                processor._dirty_partitions,
                processor._dirty_presence,
                processor._messages,
                processor._out,
            ],
        }
        parts = {name: walk(objs) for name, objs in roots.items()}
        owners: dict[int, list[str]] = {}
        for name, objects in parts.items():
            for key in objects:
                owners.setdefault(key, []).append(name)
        exclusive = {
            name: {k: o for k, o in objects.items() if len(owners[k]) == 1}
            for name, objects in parts.items()
        }
        shared_objects = {k: o for objects in parts.values() for k, o in objects.items()}
        shared_objects = {k: o for k, o in shared_objects.items() if len(owners[k]) > 1}
        shared_by: Counter[str] = Counter()
        for key, obj in shared_objects.items():
            shared_by[" + ".join(owners[key])] += sys.getsizeof(obj)

        breakdown: dict[str, Any] = {}
        for name, objects in exclusive.items():
            breakdown[name] = {
                "bytes": round(size(objects.values()) / per, 1),
                "objects": round(len(objects) / per, 1),
                "by_type": by_type(objects.values(), per),
            }
        breakdown["1_engine_conversations"]["by_field"] = field_breakdown(
            engine.conversations, exclusive["1_engine_conversations"], per
        )
        breakdown["5_table_stand_in"]["split"] = table_split(
            table, exclusive["5_table_stand_in"], per
        )
        breakdown["6a_engine_timers"]["timers_per_open_conversation"] = round(
            len(engine._timers) / per, 2
        )
        breakdown["shared_between_parts"] = {
            "bytes": round(size(shared_objects.values()) / per, 1),
            "objects": round(len(shared_objects) / per, 1),
            "by_type": by_type(shared_objects.values(), per),
            "by_parts": {k: round(v / per, 1) for k, v in shared_by.most_common()},
        }
        walked = sum(size(objects.values()) for objects in exclusive.values())
        walked += size(shared_objects.values())
        table_walked = size(exclusive["5_table_stand_in"].values())
        # the walks hold references: drop them before anything is measured by removal
        del parts, exclusive, shared_objects, owners

        found = caches()
        entries = sum(c.cache_info().currsize for c in found)
        held = traced()
        for cache in found:
            cache.cache_clear()
        cache_bytes = held - traced()
        breakdown["not_per_conversation_functools_caches"] = {
            "bytes": round(cache_bytes / per, 1),
            "entries": entries,
            "method": "tracemalloc drop when cleared",
        }
        grown = [
            (obj, length)
            for key, (obj, length) in containers(config).items()
            if key in before_run and len(obj) > before_run[key][1]
        ]
        held = traced()
        for obj, _ in grown:
            obj.clear()
        module_cache_bytes = held - traced()
        breakdown["not_per_conversation_module_and_config_caches"] = {
            "bytes": round(module_cache_bytes / per, 1),
            "containers": len(grown),
            "entries": sum(length for _, length in grown),
            "method": "tracemalloc drop when the dicts and sets (module globals, config) "
            "that grew during the run are cleared",
        }
        held = traced()
        table.clear()
        table_bytes = held - traced()
        table_part = breakdown["5_table_stand_in"]
        table_part["bytes_sys_getsizeof"] = table_part["bytes"]
        table_part["bytes"] = round(table_bytes / per, 1)
        table_part["orjson_buffer_slack"] = round((table_bytes - table_walked) / per, 1)
        table_part["method"] = (
            "tracemalloc drop when cleared: orjson.dumps leaves its bytes over-allocated "
            "(sys.getsizeof shows only the length)"
        )
        per_conversation = [
            name for name in breakdown if name[0].isdigit() or name == "shared_between_parts"
        ]
        total_per = sum(breakdown[name]["bytes"] for name in per_conversation)
        # what the live objects of parts 1-4 and 6 hold: the state the table record serialises
        live = total_per - table_part["bytes"]
        walked += table_bytes - table_walked
        unattributed = heap - walked - cache_bytes - module_cache_bytes
        return {
            "open_conversations": per,
            "events_applied": len(records),
            "flush_every": WORKER_BATCH,
            "heap_bytes_per_open_conversation": round(heap / per, 1),
            "parts_bytes_per_open_conversation": breakdown,
            "unattributed_bytes_per_open_conversation": round(unattributed / per, 1),
            "total": {
                "tracemalloc_heap": round(heap / per, 1),
                "per_conversation_parts_1_to_6_plus_shared": round(total_per, 1),
                "not_per_conversation": round(
                    sum(
                        breakdown[name]["bytes"]
                        for name in breakdown
                        if name.startswith("not_per_conversation")
                    ),
                    1,
                ),
                "unattributed": round(unattributed / per, 1),
            },
            "cells": cells,
            "serialised_bytes_per_open_conversation": sizes,
            "compact_representation_bytes_per_open_conversation": {
                "live_objects_now": round(live, 1),
                "as_one_trimmed_orjson_bytes": round(sizes["table_record"] + BYTES_HEADER, 1),
                "as_one_zlib_level_1_bytes": round(
                    sizes["table_record_zlib_level_1"] + BYTES_HEADER, 1
                ),
                "table_entry_now": table_part["bytes"],
                "table_entry_with_trimmed_value": round(table_part["bytes_sys_getsizeof"], 1),
            },
            "top_allocation_sites_of_heap": [
                {
                    "site": f"{Path(s.traceback[0].filename).name}:{s.traceback[0].lineno}",
                    "bytes_per_open_conversation": round(s.size / per, 1),
                    "blocks_per_open_conversation": round(s.count / per, 2),
                }
                for s in sites
            ],
        }
    finally:
        tracemalloc.stop()


METHOD = (
    "heap: tracemalloc traced bytes after the run minus before (gc.collect() first), as (f). "
    "Parts: deep walk (gc.get_referents) from each part's roots, sys.getsizeof per object, "
    "only objects allocated during the run (tracemalloc.get_object_traceback), each object "
    "counted once: objects reachable from several parts are in shared_between_parts. "
    "by_field: engine objects given to the first Conversation field (declaration order) that "
    "reaches them. Table stand-in: tracemalloc drop when cleared (orjson over-allocates its "
    "bytes, which sys.getsizeof does not show). functools caches, and dicts/sets of module "
    "globals and config that grew: tracemalloc drop when cleared. unattributed: heap minus all "
    "of these. Objects CPython reuses from its free lists (tuples, lists, dicts, floats) "
    "were allocated before the run: neither the heap nor the walk sees them."
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=2_000)
    parser.add_argument("--events", type=int, default=DEFAULT_EVENTS, help="generated input")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    records = build(args.conversations, args.events, args.seed)
    result = {
        "method": METHOD,
        "conversations": args.conversations,
        "generated_events": args.events,
        "seed": args.seed,
        **measure(records),
    }
    print(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
