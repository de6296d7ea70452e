"""`livemetrics` command line: parse options, call one function, print.

Errors a user can cause (a missing file, a bad config, an unknown dimension)
print one line on stderr and exit 2; no tracebacks.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from livemetrics.aggregate.formats import FORMATS, render
from livemetrics.aggregate.presets import PRESETS, apply_preset, preset_query
from livemetrics.aggregate.query import DIMENSIONS, RANGES, QueryError, ReportQuery
from livemetrics.config import Config, ConfigError, load_config
from livemetrics.replay import replay_lines

EXIT_USAGE = 2


class UserError(Exception):
    """A mistake the user can fix; printed as one line."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USAGE
    # the client logs every refused connection at ERROR; our errors say it once, clearly
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        result: int = args.run(args)
        return result
    except (UserError, ConfigError, QueryError) as exc:
        print(f"livemetrics: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except _service_errors() as exc:
        print(f"livemetrics: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


def _service_errors() -> tuple[type[BaseException], ...]:
    """Errors of the broker, Redis and produce steps, shown as one line (exit 1)."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from livemetrics.kafka_admin import KafkaAdminError
    from livemetrics.stack.broker import BrokerError
    from livemetrics.stack.redis_server import RedisServerError

    return (BrokerError, RedisServerError, KafkaAdminError, RedisConnectionError)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livemetrics", description="Real-time metrics for customer-service chat."
    )
    commands = parser.add_subparsers(title="commands")

    replay = commands.add_parser(
        "replay", help="compute a report offline from a JSONL file of events"
    )
    replay.add_argument(
        "--events", required=True, metavar="FILE.jsonl", help="events, one JSON per line"
    )
    _add_report_options(replay)
    replay.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    replay.set_defaults(run=_run_replay)

    simulate = commands.add_parser(
        "simulate", help="realistic contact-centre traffic, to a JSONL file or live to Kafka"
    )
    simulate.add_argument("--to", choices=("file", "kafka"), default="file")
    simulate.add_argument("--output", "-o", metavar="FILE.jsonl", help="--to file: where")
    simulate.add_argument("--bootstrap", metavar="HOST:PORT", help="--to kafka: the broker")
    simulate.add_argument("--seed", type=int, default=1)
    simulate.add_argument(
        "--rate",
        type=float,
        default=0.5,
        metavar="PER_S",
        help="conversation starts per second at the daily peak, all tenants",
    )
    simulate.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="simulated seconds for a file (default 86400), wall seconds for kafka (300)",
    )
    simulate.add_argument("--start", metavar="YYYY-MM-DDTHH:MM:SSZ", help="--to file: start")
    simulate.add_argument("--speed", type=float, default=1.0, help="--to kafka: clock speed-up")
    simulate.add_argument("--config-output", metavar="F.toml", help="also write the config")
    simulate.add_argument(
        "--adversarial",
        action="store_true",
        help="the test streams instead: historical, with invalid/duplicate/late lines",
    )
    simulate.add_argument("--conversations", type=int, default=2000, help="--adversarial: how many")
    simulate.add_argument("--clean", action="store_true", help="--adversarial: no bad lines")
    simulate.set_defaults(run=_run_simulate)

    worker = commands.add_parser("worker", help="run a Faust worker (the live pipeline)")
    worker.add_argument("--bootstrap", help="Kafka bootstrap (LIVEMETRICS_BOOTSTRAP)")
    worker.add_argument("--redis-url", help="Redis URL (LIVEMETRICS_REDIS_URL)")
    worker.add_argument("--config", metavar="FILE", help="TOML config (SPEC §6)")
    worker.add_argument("--app-id", help="consumer group and table prefix")
    worker.add_argument("--web-port", type=int, help="HTTP port of the worker (default 6066)")
    worker.add_argument("--data-dir", help="Faust data directory")
    worker.add_argument(
        "--session-timeout",
        type=float,
        metavar="SECONDS",
        help="consumer group session: how soon a dead worker's partitions move "
        "(LIVEMETRICS_SESSION_TIMEOUT; default 6, Apache Kafka's least by default; "
        "`up` runs 3 on the embedded broker)",
    )
    worker.add_argument(
        "--loglevel",
        default=os.environ.get("LIVEMETRICS_LOGLEVEL", "warning"),
        choices=("debug", "info", "warning", "error"),
        type=str.lower,
        help="log level (LIVEMETRICS_LOGLEVEL; default warning)",
    )
    worker.set_defaults(run=_run_worker)

    up = commands.add_parser("up", help="start broker, Redis and workers on this machine")
    up.add_argument("--config", metavar="FILE", help="TOML config (SPEC §6)")
    up.add_argument("--workers", type=int, default=1)
    up.add_argument("--produce", metavar="FILE.jsonl", help="publish this file once up")
    up.add_argument(
        "--simulate", action="store_true", help="feed realistic live traffic (now, real time)"
    )
    up.add_argument("--rate", type=float, default=3.0, help="--simulate: starts/s at peak")
    up.add_argument("--speed", type=float, default=5.0, help="--simulate: clock speed-up")
    up.add_argument("--view", action="store_true", help="show a live wall board in the terminal")
    up.set_defaults(run=_run_up)

    produce = commands.add_parser("produce", help="publish a JSONL file of events to Kafka")
    produce.add_argument("file", metavar="FILE.jsonl")
    produce.add_argument("--bootstrap", help="Kafka bootstrap (default: the running `up`)")
    produce.set_defaults(run=_run_produce)

    report = commands.add_parser("report", help="a report from the live store (Redis)")
    report.add_argument("--redis-url", help="Redis URL (default: LIVEMETRICS_REDIS_URL or `up`)")
    _add_report_options(report)
    report.set_defaults(run=_run_report)

    status = commands.add_parser("status", help="lag per partition; processed, dead letters")
    status.add_argument("--bootstrap", help="Kafka bootstrap (default: the running `up`)")
    status.add_argument("--redis-url", help="Redis URL (default: the running `up`)")
    status.add_argument("--app-id", default="livemetrics")
    status.set_defaults(run=_run_status)

    resync = commands.add_parser(
        "resync", help="rebuild the Redis store from the workers' changelogs"
    )
    resync.add_argument("--bootstrap", help="Kafka bootstrap (default: the running `up`)")
    resync.add_argument("--redis-url", help="Redis URL (default: the running `up`)")
    resync.add_argument("--app-id", default="livemetrics")
    resync.add_argument("--config", metavar="FILE", help="TOML config (SPEC §6)")
    resync.set_defaults(run=_run_resync)

    validate = commands.add_parser("validate", help="check a JSONL file of events")
    validate.add_argument("file", metavar="FILE.jsonl")
    validate.add_argument("--max-reasons", type=int, default=20, help="invalid lines to list")
    validate.set_defaults(run=_run_validate)
    return parser


def _add_report_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="TOML config (SPEC §6)")
    parser.add_argument(
        "--by",
        default=None,
        metavar="DIM[,DIM]",
        help=f"group by (default tenant): {', '.join(DIMENSIONS)}",
    )
    parser.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        help="a ready-made report (sets --by): " + ", ".join(PRESETS),
    )
    parser.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="first local day")
    parser.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="last local day")
    parser.add_argument("--range", dest="range_name", choices=RANGES, help="named date range")
    parser.add_argument(
        "--where", action="append", default=[], metavar="DIM=VALUE", help="filter (repeatable)"
    )
    parser.add_argument("--format", default="json", choices=FORMATS)
    parser.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")


def _run_replay(args: argparse.Namespace) -> int:
    config = _load_config(args.config)
    query = _query(args)
    _check_binary_output(args)
    path = _existing_file(args.events, "--events")
    with _progress(path, enabled=not args.no_progress) as on_progress, path.open("rb") as lines:
        result = replay_lines(lines, config, on_progress=on_progress)
    report = _finish(result.report(config, query), args)
    with _output(args.output) as out:
        render(report, args.format, out)
    return 0


def _run_worker(args: argparse.Namespace) -> int:
    from livemetrics.stack.info import resolve_bootstrap, resolve_config, resolve_redis_url
    from livemetrics.stream.settings import WorkerSettings
    from livemetrics.stream.worker import run_worker

    config_path = resolve_config(args.config)
    if config_path:
        load_config(config_path)  # refuse a bad config before anything starts
    settings = WorkerSettings.from_env(
        bootstrap=resolve_bootstrap(args.bootstrap),
        redis_url=resolve_redis_url(args.redis_url),
        config_path=config_path,
        app_id=args.app_id,
        web_port=args.web_port,
        data_dir=args.data_dir,
        session_timeout=_session_timeout(args.session_timeout),
    )
    return run_worker(settings, loglevel=args.loglevel)


def _session_timeout(flag: float | None) -> float | None:
    """--session-timeout, else LIVEMETRICS_SESSION_TIMEOUT; at least 2 heartbeats (1 s)."""
    if flag is not None:
        value, name = flag, "--session-timeout"
    else:
        raw = os.environ.get("LIVEMETRICS_SESSION_TIMEOUT")
        if not raw:
            return None
        name = "LIVEMETRICS_SESSION_TIMEOUT"
        try:
            value = float(raw)
        except ValueError:
            raise UserError(f"{name} must be a number of seconds, not {raw!r}") from None
    if not value >= 2.0:
        raise UserError(f"{name} must be at least 2 seconds (heartbeats go every second)")
    return value


def _run_up(args: argparse.Namespace) -> int:
    from livemetrics.stack.up import UpOptions, run_up

    if args.config:
        load_config(args.config)
    if args.produce:
        _existing_file(args.produce, "--produce")
    if args.simulate and not (args.rate > 0 and args.speed > 0):
        raise UserError("--rate and --speed must be positive numbers")
    return run_up(
        UpOptions(
            config=args.config,
            workers=args.workers,
            produce=args.produce,
            simulate=args.simulate,
            rate=args.rate,
            speed=args.speed,
            view=args.view,
        )
    )


def _run_produce(args: argparse.Namespace) -> int:
    from livemetrics.stack.info import resolve_bootstrap

    bootstrap = resolve_bootstrap(args.bootstrap)
    if not bootstrap:
        raise UserError("no broker: pass --bootstrap, set LIVEMETRICS_BOOTSTRAP or run `up`")
    _produce(bootstrap, _existing_file(args.file, "file"))
    return 0


def _produce(bootstrap: str, path: Path) -> None:
    import asyncio

    from livemetrics.produce import produce_file

    try:
        counts = asyncio.run(produce_file(bootstrap, path))
    except ValueError as exc:
        raise UserError(str(exc)) from None
    print(
        f"produced {counts.events} events to chat.events and {counts.status} to "
        f"chat.agent-status from {path}",
        file=sys.stderr,
    )


def _run_report(args: argparse.Namespace) -> int:
    import asyncio

    from livemetrics.clients import redis_client
    from livemetrics.sinks.redis_store import live_report
    from livemetrics.stack.info import resolve_redis_url

    config = _load_config(args.config, from_stack=True)
    query = _query(args)
    _check_binary_output(args)
    url = resolve_redis_url(args.redis_url)
    if not url:
        raise UserError("no Redis: pass --redis-url, set LIVEMETRICS_REDIS_URL or run `up`")

    async def fetch() -> dict:
        client = redis_client(url)
        try:
            return await live_report(client, config, query)
        finally:
            await client.aclose()

    try:
        report = _finish(asyncio.run(fetch()), args)
    except (OSError, *_service_errors()) as exc:  # type: ignore[misc]
        raise UserError(f"cannot reach Redis at {url}: {exc}") from None
    with _output(args.output) as out:
        render(report, args.format, out)
    return 0


def _run_resync(args: argparse.Namespace) -> int:
    import asyncio

    from livemetrics.clients import kafka_options, redis_options
    from livemetrics.stack.info import resolve_bootstrap, resolve_redis_url
    from livemetrics.stream.resync import ResyncError, resync

    bootstrap, url = resolve_bootstrap(args.bootstrap), resolve_redis_url(args.redis_url)
    if not bootstrap or not url:
        raise UserError("no stack: pass --bootstrap and --redis-url, or run `up`")
    try:
        counts = asyncio.run(
            resync(
                bootstrap,
                url,
                args.app_id,
                config=_load_config(args.config, from_stack=True),
                kafka_options=kafka_options(),
                redis_options=redis_options(url),
            )
        )
    except ResyncError as exc:
        raise UserError(str(exc)) from None
    print(
        f"resync: {counts.conversations} conversations, {counts.partitions} partitions written, "
        f"{counts.skipped} already current, {counts.dropped} dropped conversations not rebuildable",
        file=sys.stderr,
    )
    return 0


def _run_status(args: argparse.Namespace) -> int:
    from livemetrics.stack.status import print_status

    return print_status(args.bootstrap, args.redis_url, args.app_id)


def _run_simulate(args: argparse.Namespace) -> int:
    from livemetrics.simulate.command import SimulateError, SimulateOptions, run_simulate

    fields = SimulateOptions.__dataclass_fields__
    try:
        return run_simulate(SimulateOptions(**{k: v for k, v in vars(args).items() if k in fields}))
    except SimulateError as exc:
        raise UserError(str(exc)) from None


def _run_validate(args: argparse.Namespace) -> int:
    from livemetrics.events import Rejection, decode_line

    path = _existing_file(args.file, "file")
    valid = invalid = blank = 0
    reasons: list[str] = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            item = decode_line(line)
            if item is None:
                blank += 1
            elif isinstance(item, Rejection):
                invalid += 1
                if len(reasons) < args.max_reasons:
                    reasons.append(f"line {number}: {item.reason}")
            else:
                valid += 1
    print(f"{path}: {valid} valid, {invalid} invalid, {blank} blank")
    for reason in reasons:
        print(f"  {reason}")
    if invalid > len(reasons):
        print(f"  ... and {invalid - len(reasons)} more invalid lines")
    return 1 if invalid else 0


def _check_binary_output(args: argparse.Namespace) -> None:
    if args.format == "xlsx" and not args.output and sys.stdout.isatty():
        raise UserError("xlsx is binary: add --output FILE.xlsx (or redirect stdout)")


def _query(args: argparse.Namespace) -> ReportQuery:
    """The report options shared by `replay` and `report` (SPEC §5)."""
    query = ReportQuery.parse(
        by=args.by,
        where=args.where,
        date_from=args.date_from,
        date_to=args.date_to,
        range_name=args.range_name,
    )
    if args.preset and args.by:
        raise UserError("--preset sets --by itself: drop --by")
    return preset_query(args.preset, query) if args.preset else query


def _finish(report: dict, args: argparse.Namespace) -> dict:
    return apply_preset(args.preset, report) if args.preset else report


def _load_config(path: str | None, *, from_stack: bool = False) -> Config:
    """The flag's config, else LIVEMETRICS_CONFIG's; with `from_stack` (commands that
    read the running stack) else the stack's, else the defaults."""
    if from_stack:
        from livemetrics.stack.info import resolve_config

        path = resolve_config(path)
    else:
        path = path or os.environ.get("LIVEMETRICS_CONFIG")
    return load_config(path) if path else Config()


def _existing_file(name: str, option: str) -> Path:
    path = Path(name)
    if not path.is_file():
        raise UserError(f"{option}: no such file: {name}")
    return path


@contextmanager
def _output(name: str | None) -> Iterator[BinaryIO]:
    if name is None:
        yield sys.stdout.buffer
        sys.stdout.flush()
        return
    with open(name, "wb") as handle:
        yield handle


@contextmanager
def _progress(path: Path, *, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr, in bytes of the file, for files worth waiting on."""
    size = path.stat().st_size
    if not enabled or size < 8 * 1024 * 1024 or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(f"replay {path.name}", total=size)
        yield lambda done: progress.update(task, completed=done)


if __name__ == "__main__":
    raise SystemExit(main())
