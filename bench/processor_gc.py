"""The live processor's share of time in Python's cyclic garbage collector, side by side.

    .venv/bin/python bench/processor_gc.py [--events 40000] [--repeat 2]

Runs `LiveProcessor` (with the Prometheus sink, flushing every 2 000 events as
the worker does) over the same generated events, alternating the default
collector thresholds (700, 10, 10) and the worker's `GC_THRESHOLDS`. Prints JSON:
events/s, the share of time spent in collections (`gc.callbacks`) and the number
of collections per generation, for each run.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import STREAM_CONFIG, input_lines

from livemetrics.config import parse_config
from livemetrics.sinks.prometheus import PrometheusSink
from livemetrics.stream.processor import EVENTS, LiveProcessor
from livemetrics.stream.worker import GC_THRESHOLDS

DEFAULT_THRESHOLDS = (700, 10, 10)
FLUSH_EVERY = 2_000


class CollectorClock:
    """Time spent inside collections, through `gc.callbacks`."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started
            self.collections[info["generation"]] += 1


def run_once(lines: list[bytes], thresholds: tuple[int, int, int]) -> dict[str, Any]:
    config = parse_config(STREAM_CONFIG)
    gc.collect()
    gc.set_threshold(*thresholds)
    clock = CollectorClock()
    gc.callbacks.append(clock)
    try:
        sink = PrometheusSink(config, None)
        processor = LiveProcessor(config, on_observation=sink.observe)
        started = time.perf_counter()
        for offset, line in enumerate(lines):
            processor.apply(EVENTS, offset % 6, offset, line)
            if offset % FLUSH_EVERY == FLUSH_EVERY - 1:
                processor.flush()
        processor.flush()
        seconds = time.perf_counter() - started
    finally:
        gc.callbacks.remove(clock)
        gc.set_threshold(*DEFAULT_THRESHOLDS)
    return {
        "thresholds": list(thresholds),
        "events_per_second": round(len(lines) / seconds),
        "gc_share_of_time": round(clock.seconds / seconds, 4),
        "collections_per_generation": clock.collections,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=40_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    lines = input_lines(args.events, 1)
    runs = [
        run_once(lines, thresholds)
        for _ in range(args.repeat)
        for thresholds in (DEFAULT_THRESHOLDS, GC_THRESHOLDS)
    ]
    print(orjson.dumps({"events": args.events, "runs": runs}, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
