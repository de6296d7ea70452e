"""Replay throughput, side by side with its parts, in one run (ratios, not absolutes).

    .venv/bin/python bench/replay_speed.py [--conversations 20000] [--repeat 3]

Prints JSON: events/s of `orjson.loads` alone (the floor of any Python
decoder), `decode_line` (parse + validate), and the whole `replay` (decode,
engine, aggregates), best of `--repeat`, plus the ratios between them and the
engine's serialised state size per open conversation.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Callable

import orjson

from livemetrics.config import parse_config
from livemetrics.engine.state import conversation_to_list
from livemetrics.events import decode_line
from livemetrics.replay import replay_lines
from livemetrics.simulate.streams import STREAM_CONFIG, generate_stream


def best_rate(run: Callable[[], object], events: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return events / best


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"generating {args.conversations} conversations ...", file=sys.stderr)
    lines = generate_stream(args.seed, conversations=args.conversations)
    config = parse_config(STREAM_CONFIG)
    n = len(lines)

    def loads_only() -> None:
        for line in lines:
            with contextlib.suppress(orjson.JSONDecodeError):
                orjson.loads(line)

    def decode_only() -> None:
        for line in lines:
            decode_line(line)

    rates = {
        "orjson_loads": best_rate(loads_only, n, args.repeat),
        "decode": best_rate(decode_only, n, args.repeat),
        "replay": best_rate(lambda: replay_lines(lines, config), n, args.repeat),
    }
    result = replay_lines(lines, config)
    states = [orjson.dumps(conversation_to_list(c)) for c in result.engine.conversations.values()]
    open_states = [
        orjson.dumps(conversation_to_list(c))
        for c in result.engine.conversations.values()
        if c.status == "open"
    ]
    report = {
        "events": n,
        "events_per_second": {k: round(v) for k, v in rates.items()},
        "ratios": {
            "replay/decode": round(rates["replay"] / rates["decode"], 3),
            "replay/orjson_loads": round(rates["replay"] / rates["orjson_loads"], 3),
        },
        "state_bytes_per_conversation": round(sum(map(len, states)) / max(1, len(states))),
        "state_bytes_per_open_conversation": round(
            sum(map(len, open_states)) / max(1, len(open_states))
        ),
        "aggregate_cells": len(result.store.cells),
    }
    print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
