"""The baseline for `bench/pipeline.py` figure (b): a naive Faust agent, one table write per event.

    .venv/bin/python bench/naive_faust.py --bootstrap 127.0.0.1:PORT --events N \
        --result FILE [--app-id ID] [--data-dir DIR]

Consumes `chat.events` from the start with a fresh consumer group, decodes
each value with orjson (as the raw consumer of figure (a) does) and writes it
to a changelog-backed table, `table[key] = value`: what a first Faust
implementation of the worker would do, with no batching. When it has seen
`--events` events it writes `{"events", "first", "last"}` (perf_counter
seconds of the first and last event, this process) to `--result` and keeps
running until SIGTERM. App settings are the worker's (`stream/worker.py`), so
the two differ only in what they do per event.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import faust
import orjson

EVENTS = "chat.events"
EVENTS_PARTITIONS = 6  # topics/manifest.json; a Faust table is co-partitioned with its source


def create_app(args: argparse.Namespace) -> faust.App:
    app = faust.App(
        args.app_id,
        broker=f"kafka://{args.bootstrap}",
        store="memory://",
        datadir=args.data_dir,
        web_enabled=False,
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        table_standby_replicas=0,
        topic_allow_declare=True,
        topic_disable_leader=True,
        stream_wait_empty=False,
    )
    topic = app.topic(
        EVENTS,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=EVENTS_PARTITIONS,
    )
    table = app.Table("events", key_type=bytes, value_type=bytes, partitions=EVENTS_PARTITIONS)
    result = Path(args.result)
    target: int = args.events

    @app.agent(topic)
    async def write_each_event(stream: Any) -> None:
        seen = 0
        first = 0.0
        not_json = 0
        async for key, value in stream.items():
            try:
                orjson.loads(value)
            except orjson.JSONDecodeError:
                not_json += 1
            table[key or b""] = value
            seen += 1
            if seen == 1:
                first = time.perf_counter()
            if seen == target:
                last = time.perf_counter()
                _write_result(
                    result, {"events": seen, "first": first, "last": last, "not_json": not_json}
                )

    return app


def _write_result(path: Path, result: dict[str, Any]) -> None:
    """Write then rename, so the reader never sees half a file."""
    partial = path.with_suffix(".partial")
    partial.write_bytes(orjson.dumps(result))
    os.replace(partial, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--events", type=int, required=True, help="events to wait for")
    parser.add_argument("--result", required=True, help="JSON file written once all are seen")
    parser.add_argument("--app-id", default=f"bench-naive-{os.getpid()}")
    parser.add_argument("--data-dir", default=f".livemetrics/bench-naive-{os.getpid()}")
    args = parser.parse_args()
    app = create_app(args)
    worker = faust.Worker(app, loglevel="warning", quiet=True)
    worker.execute_from_commandline()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
