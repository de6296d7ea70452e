"""`livemetrics simulate`: realistic traffic to a file or live to Kafka, or the test streams.

Kept out of cli.py so the CLI stays a list of options; this module turns them
into one call of `traffic` (realistic) or `streams` (adversarial test traffic).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

from livemetrics.simulate.traffic import (
    SIM_CONFIG,
    SimulationCounts,
    simulate_to_file,
    simulate_to_kafka,
)


class SimulateError(ValueError):
    """An option the user got wrong; the CLI prints it as one line."""


@dataclass(frozen=True, slots=True)
class SimulateOptions:
    to: str = "file"
    output: str | None = None
    bootstrap: str | None = None
    seed: int = 1
    rate: float = 0.5
    duration: float | None = None
    start: str | None = None
    speed: float = 1.0
    config_output: str | None = None
    adversarial: bool = False
    conversations: int = 2000
    clean: bool = False


def run_simulate(options: SimulateOptions) -> int:
    if not options.rate > 0 or not options.speed > 0:
        raise SimulateError("--rate and --speed must be positive numbers")
    if options.duration is not None and not options.duration > 0:
        raise SimulateError("--duration must be a positive number of seconds")
    if options.adversarial:
        return _adversarial(options)
    if options.config_output:
        Path(options.config_output).write_text(SIM_CONFIG)
    if options.to == "file":
        return _to_file(options)
    return _to_kafka(options)


def _to_file(options: SimulateOptions) -> int:
    if not options.output:
        raise SimulateError("--to file needs --output FILE.jsonl")
    try:
        start = (
            dt.datetime.fromisoformat(options.start)
            if options.start
            else dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        )
    except ValueError:
        raise SimulateError(f"--start: not an ISO date-time: {options.start!r}") from None
    Path(options.output).parent.mkdir(parents=True, exist_ok=True)
    counts = simulate_to_file(
        options.output,
        seed=options.seed,
        duration_s=options.duration or 86_400,
        rate_per_s=options.rate,
        start=start,
    )
    print(
        f"wrote {counts.total} events ({counts.conversations} conversations) to {options.output}",
        file=sys.stderr,
    )
    return 0


def _to_kafka(options: SimulateOptions) -> int:
    from livemetrics.stack.info import resolve_bootstrap

    bootstrap = resolve_bootstrap(options.bootstrap)
    if not bootstrap:
        raise SimulateError("no broker: pass --bootstrap, set LIVEMETRICS_BOOTSTRAP or run `up`")
    last = [SimulationCounts()]

    def show(counts: SimulationCounts) -> None:
        last[0] = counts
        print(
            f"\r{counts.conversations} conversations, {counts.total} events",
            end="",
            file=sys.stderr,
            flush=True,
        )

    try:
        asyncio.run(
            simulate_to_kafka(
                bootstrap,
                seed=options.seed,
                duration_s=options.duration or 300,
                rate_per_s=options.rate,
                speed=options.speed,
                on_progress=show,
            )
        )
    finally:  # Ctrl-C: the CLI turns KeyboardInterrupt into exit 130
        print(
            f"\npublished {last[0].events} events to chat.events and "
            f"{last[0].status} to chat.agent-status",
            file=sys.stderr,
        )
    return 0


def _adversarial(options: SimulateOptions) -> int:
    """The conformance tests' streams: historical dates, invalid and duplicate lines."""
    from livemetrics.simulate.streams import STREAM_CONFIG, generate_stream

    if not options.output:
        raise SimulateError("--adversarial writes a file: add --output FILE.jsonl")
    if options.conversations < 1:
        raise SimulateError("--conversations must be at least 1")
    if options.clean:
        lines = generate_stream(
            options.seed,
            conversations=options.conversations,
            invalid_rate=0.0,
            duplicate_rate=0.0,
            late_rate=0.0,
        )
    else:
        lines = generate_stream(options.seed, conversations=options.conversations)
    Path(options.output).parent.mkdir(parents=True, exist_ok=True)
    with open(options.output, "wb") as handle:
        for line in lines:
            handle.write(line + b"\n")
    if options.config_output:
        Path(options.config_output).write_text(STREAM_CONFIG)
    print(f"wrote {len(lines)} events to {options.output}", file=sys.stderr)
    return 0
