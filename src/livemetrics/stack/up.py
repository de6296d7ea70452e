"""`livemetrics up`: the embedded stack on free loopback ports, stopped cleanly on Ctrl-C.

Starts the Tansu broker (memory only), redis-server, creates the topics of
`topics/manifest.json`, then runs worker processes (`livemetrics worker`)
and, when asked, publishes a traffic file. Writes `.livemetrics/stack.json`
so `livemetrics produce`, `report` and `status` find the stack with no flags.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from livemetrics.kafka_admin import ensure_topics
from livemetrics.stack.broker import EmbeddedBroker
from livemetrics.stack.info import STACK_FILE, StackInfo
from livemetrics.stack.ports import free_port
from livemetrics.stack.redis_server import EmbeddedRedis

RESTART_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
STEADY_SECONDS = 30.0  # a worker up this long has its backoff reset
# Tansu accepts a shorter session than Apache Kafka's default minimum (6 s). Measured
# here: a consumer restarted after kill -9 got its partitions back after 2 s with a 3 s
# session, after 8-11 s with 4-6 s.
EMBEDDED_SESSION_TIMEOUT = 3.0


@dataclass
class Stack:
    """A running embedded stack; `stop()` ends every process it started.

    `supervise` restarts a worker that exits on its own (a crash, `kill -9`),
    on the same web port, as Kubernetes or systemd would in production: the
    new process recovers its tables and refills what they miss, so the
    numbers stay exact.
    """

    broker: EmbeddedBroker
    redis: EmbeddedRedis
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    web_urls: list[str] = field(default_factory=list)
    home: Path = Path(".livemetrics")
    config: str | None = None
    ports: list[int] = field(default_factory=list)
    started: list[float] = field(default_factory=list)
    restarts: list[int] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start_worker(self, config: str | None, index: int) -> str:
        """Start worker `index` (a new one when index == len(workers)); its web URL."""
        self.config = config
        port = free_port()
        self.workers.append(self._spawn(index, port))
        self.ports.append(port)
        self.started.append(time.monotonic())
        self.restarts.append(0)
        url = f"http://127.0.0.1:{port}"
        self.web_urls.append(url)
        return url

    def _spawn(self, index: int, port: int) -> subprocess.Popen[bytes]:
        args = [
            sys.executable,
            "-m",
            "livemetrics.cli",
            "worker",
            "--bootstrap",
            self.broker.bootstrap,
            "--redis-url",
            self.redis.url,
            "--web-port",
            str(port),
            "--data-dir",
            str(self.home / f"worker-{index}"),
            "--session-timeout",
            str(EMBEDDED_SESSION_TIMEOUT),
        ]
        if self.config:
            args += ["--config", self.config]
        log = (self.home / f"worker-{index}.log").open("ab")
        try:
            return subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            log.close()  # the child has its own descriptor

    def restart_exited(self, now: float | None = None) -> list[str]:
        """Restart every worker that exited while the stack runs (after its backoff);
        a line per restart, for the user."""
        now = time.monotonic() if now is None else now
        lines: list[str] = []
        with self.lock:
            if self.stopping.is_set():
                return lines
            for index, process in enumerate(self.workers):
                code = process.poll()
                if code is None:
                    if now - self.started[index] >= STEADY_SECONDS:
                        self.restarts[index] = 0
                    continue
                attempt = self.restarts[index]
                delay = RESTART_BACKOFF_SECONDS[min(attempt, len(RESTART_BACKOFF_SECONDS) - 1)]
                if now - self.started[index] < delay:
                    continue  # exited soon after a start: wait a little longer each time
                self.workers[index] = self._spawn(index, self.ports[index])
                self.started[index] = now
                self.restarts[index] = attempt + 1
                how = f"signal {-code}" if code < 0 else f"exit code {code}"
                lines.append(
                    f"worker {index} stopped ({how}); restarted "
                    f"(log: {self.home / f'worker-{index}.log'})"
                )
        return lines

    def supervise(self, stop: Callable[[], bool], interval: float = 0.5) -> threading.Thread:
        """Restart exited workers until `stop()` or `self.stop()`; runs in a thread."""

        def loop() -> None:
            while not stop() and not self.stopping.is_set():
                for line in self.restart_exited():
                    print(line, file=sys.stderr, flush=True)
                self.stopping.wait(interval)

        thread = threading.Thread(target=loop, name="supervisor", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        with self.lock:
            self.stopping.set()
        for process in self.workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in self.workers:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        self.redis.stop()
        self.broker.stop()
        STACK_FILE.unlink(missing_ok=True)


def start_stack(config: str | None, workers: int, home: Path = Path(".livemetrics")) -> Stack:
    """Start broker, Redis, topics and `workers` worker processes."""
    home.mkdir(parents=True, exist_ok=True)
    broker = EmbeddedBroker(log_path=home / "broker.log")
    broker.start()
    redis = EmbeddedRedis()
    try:
        redis.start()
        asyncio.run(ensure_topics(broker.bootstrap))
    except BaseException:
        redis.stop()
        broker.stop()
        raise
    stack = Stack(broker, redis, home=home)
    for index in range(workers):
        stack.start_worker(config, index)
    StackInfo(
        broker.bootstrap,
        redis.url,
        tuple(stack.web_urls),
        os.getpid(),
        str(Path(config).resolve()) if config else None,
    ).save()
    return stack


class StopFlag:
    """Set by Ctrl-C or SIGTERM; everything that loops checks it."""

    def __init__(self) -> None:
        self.stopped = False
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        self.stopped = True

    def __call__(self) -> bool:
        return self.stopped

    def wait(self) -> None:
        while not self.stopped:
            time.sleep(0.2)


@dataclass(frozen=True, slots=True)
class UpOptions:
    config: str | None = None
    workers: int = 1
    produce: str | None = None
    simulate: bool = False
    rate: float = 3.0
    speed: float = 5.0
    view: bool = False


def run_up(options: UpOptions) -> int:
    """Start the stack, feed it if asked, show the board or wait; stop everything on exit."""
    from livemetrics.config import load_config

    config_path = options.config
    if options.simulate and not config_path:
        from livemetrics.simulate.traffic import SIM_CONFIG

        config_path = ".livemetrics/simulated.toml"
        Path(".livemetrics").mkdir(exist_ok=True)
        Path(config_path).write_text(SIM_CONFIG)
    config = load_config(config_path) if config_path else None
    stop = StopFlag()
    stack = start_stack(config_path, options.workers)
    try:
        print(f"broker   {stack.broker.bootstrap}")
        print(f"redis    {stack.redis.url}")
        for url in stack.web_urls:
            print(f"worker   {url}   (wall board: {url}/wallboard, metrics: {url}/metrics)")
        print("logs     .livemetrics/*.log   (Ctrl-C stops everything)", flush=True)
        stack.supervise(stop)
        if options.produce:
            from livemetrics.produce import produce_file

            asyncio.run(produce_file(stack.broker.bootstrap, Path(options.produce)))
        if options.simulate:
            threading.Thread(
                target=_feed_live_traffic,
                args=(stack.broker.bootstrap, options.rate, options.speed, stop),
                daemon=True,
            ).start()
        if options.view:
            from livemetrics.config import Config
            from livemetrics.stack.view import run_view

            run_view(stack.redis.url, config or Config(), stop)
        else:
            stop.wait()
    finally:
        stack.stop()
    return 0


def _feed_live_traffic(bootstrap: str, rate: float, speed: float, stop: StopFlag) -> None:
    """Realistic traffic stamped with the current time until the stack stops."""
    from livemetrics.simulate.traffic import simulate_to_kafka

    async def feed() -> None:
        task = asyncio.create_task(
            simulate_to_kafka(
                bootstrap,
                seed=int(time.time()),
                duration_s=7 * 86_400,
                rate_per_s=rate,
                speed=speed,
            )
        )
        while not stop() and not task.done():
            await asyncio.sleep(0.2)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task

    asyncio.run(feed())
