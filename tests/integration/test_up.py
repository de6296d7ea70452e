"""`livemetrics up` as users run it: produce, `kill -9` the worker, and `report` == replay.

The whole embedded stack runs as one `livemetrics up` process (broker, Redis,
a supervised worker); the test drives it only through the CLI, as the README
tells users to, except for finding the worker's pid to kill.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from livemetrics.aggregate.query import ReportQuery
from livemetrics.config import parse_config
from livemetrics.replay import replay_lines
from livemetrics.simulate.streams import STREAM_CONFIG, generate_stream
from tests.integration.conftest import broker_binary_or_skip, redis_server_or_skip

BY = ("tenant", "agent", "team", "channel", "conversation", "day")
SETTLE_TIMEOUT = 150.0


def _cli(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "livemetrics.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_env(),
    )


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEMETRICS_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
    return env


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A running `livemetrics up --config stream.toml` in tmp_path; stopped with SIGTERM."""
    broker_binary_or_skip()
    redis_server_or_skip()
    (tmp_path / "stream.toml").write_text(STREAM_CONFIG)
    stderr = (tmp_path / "up.err").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "livemetrics.cli", "up", "--config", "stream.toml"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        text=True,
        env=_env(),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / ".livemetrics" / "stack.json").exists():
            assert process.poll() is None, (tmp_path / "up.err").read_text()
            assert time.monotonic() < deadline, "up did not write stack.json in 60 s"
            time.sleep(0.2)
        yield tmp_path, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        stderr.close()


def _worker_pids(home: Path) -> list[int]:
    """Pids of the `livemetrics worker` processes started in `home` (the stack's)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"livemetrics.cli" in argv and b"worker" in argv and _cwd(entry) == home.resolve():
            pids.append(int(entry.name))
    return pids


def _cwd(entry: Path) -> Path | None:
    try:
        return Path(os.readlink(entry / "cwd"))
    except OSError:
        return None


def _expected(lines: list[bytes]) -> dict[str, object]:
    config = parse_config(STREAM_CONFIG)
    result = replay_lines(lines, config)
    return {by: result.report(config, ReportQuery.parse(by=by)) for by in BY}


def _live(home: Path) -> dict[str, object]:
    out = {}
    for by in BY:
        done = _cli(home, "report", "--by", by, "--format", "json")
        assert done.returncode == 0, done.stderr
        out[by] = json.loads(done.stdout)
    return out


def test_up_restarts_a_killed_worker_and_report_equals_replay(
    up: tuple[Path, subprocess.Popen[str]],
) -> None:
    home, process = up
    lines = generate_stream(41, conversations=120)
    half = len(lines) // 2
    (home / "first.jsonl").write_bytes(b"".join(line + b"\n" for line in lines[:half]))
    (home / "second.jsonl").write_bytes(b"".join(line + b"\n" for line in lines[half:]))

    done = _cli(home, "produce", "first.jsonl")
    assert done.returncode == 0, done.stderr
    time.sleep(6)  # the worker joins its group and processes part of it
    victims = _worker_pids(home)
    assert len(victims) == 1, victims
    os.kill(victims[0], signal.SIGKILL)
    done = _cli(home, "produce", "second.jsonl")
    assert done.returncode == 0, done.stderr

    expected = _expected(lines)
    deadline = time.monotonic() + SETTLE_TIMEOUT
    live: dict[str, object] = {}
    while time.monotonic() < deadline:
        assert process.poll() is None, (home / "up.err").read_text()
        live = _live(home)
        if live == expected:
            break
        time.sleep(2)
    err = (home / "up.err").read_text()
    assert "worker 0 stopped (signal 9); restarted" in err, err
    restarted = _worker_pids(home)
    assert len(restarted) == 1 and restarted != victims, restarted
    for by in BY:
        assert live[by] == expected[by], by
