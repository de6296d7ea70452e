"""An embedded Redis: Debian's `redis-server` on a free 127.0.0.1 port.

The Redis sink holds live aggregates that the worker can rebuild from Kafka,
so this Redis keeps nothing on disk (`--save "" --appendonly no`): a restart
starts empty, like the embedded broker.

    with EmbeddedRedis() as redis_server:
        client = redis.asyncio.Redis.from_url(redis_server.url)
"""

from __future__ import annotations

import atexit
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from livemetrics.stack.ports import LOOPBACK, free_port, spawn_in_group, stop_group

__all__ = ["REDIS_NOT_FOUND", "EmbeddedRedis", "RedisServerError"]

REDIS_NOT_FOUND = "redis-server not found: run scripts/dev setup (or apt-get install redis-server)"
_POLL_SECONDS = 0.05


class RedisServerError(RuntimeError):
    """redis-server is missing or did not start; the message is one line."""


class EmbeddedRedis:
    """One `redis-server` on 127.0.0.1, no persistence, in its own process group.

    `start()` returns once it answers PING; `stop()` is idempotent. Also a
    context manager.
    """

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.log_path = log_path or Path(tempfile.gettempdir()) / "livemetrics" / (
            f"redis-{self.port}.log"
        )
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """`redis://127.0.0.1:PORT/0` for `redis.asyncio.Redis.from_url`."""
        return f"redis://{LOOPBACK}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id while started (also its process group id)."""
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 10) -> None:
        """Spawn redis-server and wait until it answers PING, or raise RedisServerError."""
        if self._process is not None:
            return
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerError(REDIS_NOT_FOUND)
        argv = [
            binary,
            "--port",
            str(self.port),
            "--bind",
            LOOPBACK,
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            "",
            # A working directory of its own, so no stray file lands in the caller's.
            "--dir",
            str(self.log_path.parent),
        ]
        self._process = spawn_in_group(argv, self.log_path)
        atexit.register(self.stop)
        try:
            self._wait_until_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM (Redis exits at once without saving), SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is None:
            return
        atexit.unregister(self.stop)
        stop_group(process)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_until_ready(self, timeout: float) -> None:
        import redis

        process = self._process
        assert process is not None
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        client = redis.Redis(host=LOOPBACK, port=self.port, socket_timeout=1.0)
        try:
            while True:
                code = process.poll()
                if code is not None:
                    raise RedisServerError(
                        f"redis-server exited with code {code} while starting on port "
                        f"{self.port}; see {self.log_path}"
                    )
                if time.monotonic() >= deadline:
                    raise RedisServerError(
                        f"redis-server on port {self.port} did not answer PING within "
                        f"{timeout:g} s ({last_error}); see {self.log_path}"
                    )
                try:
                    if client.ping():
                        return
                except redis.RedisError as exc:
                    last_error = f"{type(exc).__name__}: {exc}"
                time.sleep(_POLL_SECONDS)
        finally:
            client.close()
