"""The mypyc-compiled core (what standard wheels ship, `hatch_build.py`) is the pure core.

These run in the second pass of `scripts/dev test`, which sets
`LIVEMETRICS_EXPECT_COMPILED=1` and puts the compiled package
(`scripts/dev compiled`, `.build/compiled`) first on `PYTHONPATH`; that pass
also runs every other unit and conformance test on it. In the ordinary pass
they are skipped.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from livemetrics.aggregate.query import DIMENSIONS, ReportQuery
from livemetrics.config import parse_config
from livemetrics.replay import replay_lines
from livemetrics.simulate.streams import STREAM_CONFIG, generate_stream

pytestmark = pytest.mark.skipif(
    os.environ.get("LIVEMETRICS_EXPECT_COMPILED") != "1",
    reason="the compiled pass of scripts/dev test runs these",
)

COMPILED = (
    "livemetrics.engine.engine",
    "livemetrics.engine.messages",
    "livemetrics.engine.sla",
    "livemetrics.aggregate.store",
    "livemetrics.aggregate.distribution",
    "livemetrics.calendar",
    "livemetrics.config",
    "livemetrics.events",
    "livemetrics.replay",
)

PURE_REPORTS = r"""
import sys, orjson
from livemetrics.aggregate.query import ReportQuery
from livemetrics.config import parse_config
from livemetrics.replay import replay_lines
from livemetrics.simulate.streams import STREAM_CONFIG
import livemetrics.engine.engine as engine
assert engine.__file__.endswith(".py"), engine.__file__
config = parse_config(STREAM_CONFIG)
with open(sys.argv[1], "rb") as handle:
    result = replay_lines(handle, config)
reports = [result.report(config, ReportQuery(by=tuple(by.split(",")))) for by in sys.argv[2:]]
sys.stdout.buffer.write(orjson.dumps(reports))
"""


@pytest.mark.parametrize("module", COMPILED)
def test_the_compiled_pass_runs_compiled_modules(module: str) -> None:
    path = importlib.import_module(module).__file__
    assert path is not None and path.endswith(".so"), f"{module} is not compiled: {path}"


def test_compiled_replay_gives_the_pure_replays_reports(tmp_path: Path) -> None:
    """Every `--by` of SPEC §5 over adversarial traffic, compared to the pure core's."""
    lines = generate_stream(5, conversations=300)
    stream = tmp_path / "stream.jsonl"
    stream.write_bytes(b"".join(line + b"\n" for line in lines))
    bys = [*DIMENSIONS, "agent,day", "team,channel,hour"]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    pure = subprocess.run(
        [sys.executable, "-c", PURE_REPORTS, str(stream), *bys],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        check=True,
    )
    config = parse_config(STREAM_CONFIG)
    with stream.open("rb") as handle:
        result = replay_lines(handle, config)
    compiled = [result.report(config, ReportQuery(by=tuple(by.split(",")))) for by in bys]
    expected = orjson.loads(pure.stdout)
    for by, got, want in zip(bys, orjson.loads(orjson.dumps(compiled)), expected, strict=True):
        assert got == want, f"--by {by}: the compiled core's report differs"
