"""Every dashboard query and recording rule returns data from a real worker.

The test starts a Tansu broker, redis-server and one `livemetrics worker`
with a known web port, publishes generated traffic, and runs Debian's
`prometheus` scraping the worker's `/metrics` every second with our rule
files loaded. Once the worker has processed the traffic and Prometheus has
scraped it a few times, every panel expression of every dashboard (template
variables set to `.*`), every template-variable query and every recording
rule goes through `/api/v1/query`: each must parse and return a non-empty
result. Alert expressions must parse (they are usually empty: nothing is
wrong). On failure the message lists every expression that returned nothing.
Everything binds 127.0.0.1 on free ports and is stopped at the end.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from livemetrics.kafka_admin import ensure_topics
from livemetrics.produce import produce_file
from livemetrics.simulate.streams import STREAM_CONFIG, generate_stream
from livemetrics.stack.broker import EmbeddedBroker
from livemetrics.stack.ports import LOOPBACK, free_port, spawn_in_group, stop_group
from livemetrics.stack.redis_server import EmbeddedRedis
from tests.integration.conftest import broker_binary_or_skip, redis_server_or_skip
from tests.integration.test_prometheus_rules import substitute
from tests.unit.test_grafana_dashboards import load_generator

ROOT = Path(__file__).resolve().parents[2]
RULES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
JOB = "livemetrics-worker"
CONVERSATIONS = 200
SCRAPES_AFTER_PROCESSING = 6  # at 1 s each: enough samples for rate() and increase()
PROCESS_TIMEOUT = 150.0  # worker start, group join and the whole stream, on a busy machine
EMPTY_RETRY_SECONDS = 30.0  # how long empty answers are asked again
NO_METRICS_GIVE_UP = 15.0  # stop waiting when /metrics answers without our series
HTTP_TIMEOUT = 10.0
_LABEL_VALUES = re.compile(r"^label_values\((.*),\s*(\w+)\)$", re.DOTALL)


def prometheus_or_skip() -> str:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip(
            "prometheus not found: run scripts/setup-system.sh (apt-get install prometheus)"
        )
    return binary


@dataclass
class Prometheus:
    """A running Prometheus server's HTTP API."""

    url: str

    def get(self, path: str, **params: str) -> dict[str, Any]:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=HTTP_TIMEOUT) as answer:
                body: dict[str, Any] = json.load(answer)
        except urllib.error.HTTPError as exc:  # 400/422: a query that does not parse
            body = json.load(exc)
        return body

    def query(self, expr: str) -> dict[str, Any]:
        return self.get("/api/v1/query", query=expr)

    def value(self, expr: str) -> float | None:
        """The single value of a scalar-like query, None when it has no result."""
        result = self.query(expr).get("data", {}).get("result", [])
        return float(result[0]["value"][1]) if result else None

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def scrape_error(self) -> str:
        targets = self.get("/api/v1/targets").get("data", {}).get("activeTargets", [])
        return "; ".join(
            f"{t['scrapeUrl']}: health {t['health']} {t.get('lastError', '')}".strip()
            for t in targets
        )


@dataclass
class LiveStack:
    prometheus: Prometheus
    worker: subprocess.Popen[bytes]
    worker_log: Path
    bootstrap: str
    home: Path

    def worker_output(self) -> str:
        return self.worker_log.read_text(errors="replace")[-3000:]


def _prometheus_config(web_port: int) -> str:
    return yaml.safe_dump(
        {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in RULES],
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "metrics_path": "/metrics",
                    "static_configs": [{"targets": [f"{LOOPBACK}:{web_port}"]}],
                }
            ],
        }
    )


def _worker_env() -> dict[str, str]:
    """This environment without LIVEMETRICS_* settings; Faust's web server on loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEMETRICS_")}
    env["WEB_BIND"] = LOOPBACK  # Faust binds 0.0.0.0 unless told (its web_bind setting)
    return env


@pytest.fixture
def live_stack(tmp_path: Path) -> Iterator[LiveStack]:
    broker_binary_or_skip()
    redis_server_or_skip()
    prometheus = prometheus_or_skip()
    config_path = tmp_path / "config.toml"
    config_path.write_text(STREAM_CONFIG)
    web_port, prometheus_port = free_port(), free_port()
    prometheus_config = tmp_path / "prometheus.yml"
    prometheus_config.write_text(_prometheus_config(web_port))
    with (
        EmbeddedBroker(log_path=tmp_path / "broker.log") as broker,
        EmbeddedRedis(log_path=tmp_path / "redis.log") as redis,
    ):
        asyncio.run(ensure_topics(broker.bootstrap, timeout=20))
        worker_log = tmp_path / "worker.log"
        worker = spawn_in_group(
            [
                sys.executable,
                "-m",
                "livemetrics.cli",
                "worker",
                "--bootstrap",
                broker.bootstrap,
                "--redis-url",
                redis.url,
                "--config",
                str(config_path),
                "--app-id",
                "livemetrics-dashboards",
                "--web-port",
                str(web_port),
                "--data-dir",
                str(tmp_path / "worker"),
            ],
            worker_log,
            _worker_env(),
        )
        server = spawn_in_group(
            [
                prometheus,
                f"--config.file={prometheus_config}",
                f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address={LOOPBACK}:{prometheus_port}",
                "--log.level=warn",
            ],
            tmp_path / "prometheus.log",
        )
        try:
            yield LiveStack(
                Prometheus(f"http://{LOOPBACK}:{prometheus_port}"),
                worker,
                worker_log,
                broker.bootstrap,
                tmp_path,
            )
        finally:
            stop_group(server)
            stop_group(worker, grace=15.0)


def _wait_until_ready(stack: LiveStack, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not stack.prometheus.ready():
        if time.monotonic() > deadline:
            log = (stack.home / "prometheus.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"prometheus not ready within {timeout:g} s:\n{log}")
        time.sleep(0.2)


def _wait_until_processed(stack: LiveStack, produced: int) -> str:
    """Wait until the scraped input counters cover everything produced; say how it ended.

    A worker still starting (joining the group, recovering tables) refuses
    connections: that is waited for, up to `PROCESS_TIMEOUT`. A worker that
    answers without the livemetrics series (no exporter yet: 404, or an empty
    page) is given up on after `NO_METRICS_GIVE_UP` seconds, so the queries
    show what is missing without a long wait.
    """
    processed_expr = f'sum(livemetrics_input_events_total{{job="{JOB}"}})'
    started = time.monotonic()
    answered_without_metrics: float | None = None
    while time.monotonic() - started < PROCESS_TIMEOUT:
        if stack.worker.poll() is not None:
            pytest.fail(f"worker exited with {stack.worker.returncode}:\n{stack.worker_output()}")
        processed = stack.prometheus.value(processed_expr)
        if processed is not None and processed >= produced:
            time.sleep(SCRAPES_AFTER_PROCESSING)
            return f"processed {processed:g} of {produced} records"
        error = stack.prometheus.scrape_error()
        answers = stack.prometheus.value(f'up{{job="{JOB}"}}') == 1 or "status 404" in error
        if processed is None and answers:
            answered_without_metrics = answered_without_metrics or time.monotonic()
            if time.monotonic() - answered_without_metrics > NO_METRICS_GIVE_UP:
                return f"/metrics answers without livemetrics series: {error}"
        else:
            answered_without_metrics = None
        time.sleep(1.0)
    last = stack.prometheus.value(processed_expr)
    return (
        f"timed out after {PROCESS_TIMEOUT:g} s: processed {last} of {produced} records; "
        f"{stack.prometheus.scrape_error()}"
    )


def _variable_query(definition: str) -> str:
    """`label_values(SELECTOR, label)` as PromQL: the label's values present in SELECTOR."""
    match = _LABEL_VALUES.match(definition)
    assert match is not None, definition
    selector, label = match.groups()
    return f"group by ({label}) ({substitute(selector)})"


def _queries_with_data() -> list[tuple[str, str]]:
    """(where, expression) of everything that must return data."""
    generator = load_generator()
    queries = []
    for name, board in generator.build_dashboards().items():
        for title, expr in generator.iter_expressions(board):
            queries.append((f"{name} {title!r}", substitute(expr)))
        for variable in board["templating"]["list"]:
            if variable["type"] == "query":
                where = f"{name} variable ${variable['name']}"
                queries.append((where, _variable_query(variable["definition"])))
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "record" in rule:
                    queries.append((f"{path.name} {rule['record']}", rule["expr"]))
    return queries


def _alert_expressions() -> list[tuple[str, str]]:
    return [
        (f"{path.name} {rule['alert']}", rule["expr"])
        for path in RULES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


@pytest.mark.timeout(300)
def test_every_dashboard_query_and_recording_rule_returns_data(live_stack: LiveStack) -> None:
    lines = generate_stream(41, conversations=CONVERSATIONS)
    events = live_stack.home / "events.jsonl"
    events.write_bytes(b"".join(line + b"\n" for line in lines))
    counts = asyncio.run(produce_file(live_stack.bootstrap, events))
    _wait_until_ready(live_stack)
    progress = _wait_until_processed(live_stack, counts.events + counts.status)

    invalid: list[str] = []
    queries = _queries_with_data()
    pending = list(queries)
    # rate() windows and rule evaluations need a few scrapes after the data arrived:
    # ask again for what is still empty, for a bounded time
    deadline = time.monotonic() + EMPTY_RETRY_SECONDS
    while True:
        still_empty = []
        for where, expr in pending:
            answer = live_stack.prometheus.query(expr)
            if answer.get("status") != "success":
                invalid.append(f"{where}: {answer.get('error')}\n    {expr}")
            elif not answer["data"]["result"]:
                still_empty.append((where, expr))
        pending = still_empty
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(2.0)
    empty = [f"{where}\n    {expr}" for where, expr in pending]
    for where, expr in _alert_expressions():
        answer = live_stack.prometheus.query(expr)
        if answer.get("status") != "success":
            invalid.append(f"{where}: {answer.get('error')}\n    {expr}")

    report = [f"worker: {progress}; scrape: {live_stack.prometheus.scrape_error()}"]
    if invalid:
        report.append(f"{len(invalid)} expressions failed to run:")
        report += [f"  {line}" for line in invalid]
    if empty:
        report.append(f"{len(empty)} of {len(queries)} expressions returned no data:")
        report += [f"  {line}" for line in empty]
    assert not invalid and not empty, "\n".join(report)
