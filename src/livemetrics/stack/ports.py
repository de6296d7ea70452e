"""Loopback ports and the local server processes that listen on them.

The stack (broker, Redis, Prometheus) runs as child processes on free
127.0.0.1 ports, so several stacks and test sessions never collide and nothing
listens beyond this machine. Each child gets its own process group so one
signal stops it and whatever it forked, and a Ctrl-C in the terminal reaches
only us: we stop the children in order.

    >>> 1024 <= free_port() <= 65535
    True
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["free_port", "spawn_in_group", "stop_group"]

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0).

    The port is released before the caller binds it, so another process could
    take it in between; servers started on it fail fast and say so in their log.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def spawn_in_group(
    argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start `argv` in a new process group, stdout and stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
            process_group=0,
        )


def stop_group(process: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL it after `grace` seconds; reap the child.

    Safe to call twice and on a process that already exited.
    """
    _signal_group(process, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        process.wait(timeout=grace)
    # The leader is gone; anything it forked into the group goes too.
    _signal_group(process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)
