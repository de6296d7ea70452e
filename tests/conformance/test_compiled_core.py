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

ROOT = Path(__file__).resolve().parents[2]

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

LIVE_OUTPUT_DIGEST = r"""
import hashlib, sys
sys.path.insert(0, sys.argv[3])  # the checkout, for tests.support
from livemetrics.config import parse_config
from livemetrics.simulate.streams import STREAM_CONFIG
from livemetrics.stream.processor import LiveProcessor
from tests.support.routing import offsets
import livemetrics.engine.engine as engine
assert engine.__file__.endswith(sys.argv[2]), engine.__file__
with open(sys.argv[1], "rb") as handle:
    lines = [line for line in handle.read().splitlines() if line.strip()]
processor = LiveProcessor(parse_config(STREAM_CONFIG))
digest = hashlib.sha256()

def take(flush):
    for m in flush.messages:
        digest.update(repr((m.topic, m.key, m.value)).encode())
    for r in sorted(flush.records, key=lambda r: (r.table, r.key)):
        digest.update(repr((r.table, r.partition, r.key, r.value)).encode())

for number, (topic, partition, offset, line) in enumerate(offsets(lines)):
    processor.apply(topic, partition, offset, line)
    if number % 50 == 0:
        take(processor.flush())
processor.advance(processor.engine.clock_us + 10 * 86_400_000_000)
take(processor.flush())
print(digest.hexdigest())
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


def test_live_processor_writes_the_same_bytes_compiled_and_pure(tmp_path: Path) -> None:
    """The worker's output (metric and SLA messages, table records: what Kafka and the
    changelogs get) is byte for byte the pure core's. A counter's value stays the int
    1 when compiled (a float field would be a C double, written 1.0)."""
    lines = generate_stream(1, conversations=150)
    stream = tmp_path / "stream.jsonl"
    stream.write_bytes(b"".join(line + b"\n" for line in lines))
    pure_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    # the compiled build's path made absolute: the children run in tmp_path
    search = [str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)]
    compiled_env = {**pure_env, "PYTHONPATH": os.pathsep.join(search)}
    digests = [
        subprocess.run(
            [sys.executable, "-c", LIVE_OUTPUT_DIGEST, str(stream), suffix, str(ROOT)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for env, suffix in ((pure_env, ".py"), (compiled_env, ".so"))
    ]
    assert digests[0] == digests[1], "the compiled core's live output differs from the pure one's"
