"""A real worker's `/metrics`: valid exposition, and live gauges that follow ownership.

Reuses `test_pipeline`'s `LiveStack` (own Tansu broker and redis-server per
test, `livemetrics worker` processes) and `_settle` (poll until the live report
in Redis equals `replay`'s). Then:

- `promtool check metrics` (Prometheus' own parser and linter) must accept the
  exposition of a worker that processed generated traffic, with no complaint;
- with two workers and a rebalance, the live gauges summed over both workers'
  `/metrics` equal the gauges of replay's final state per tenant (a partition's
  gauges disappear from the worker that lost it: nothing counted twice), and
  again from the one worker left after the other leaves the group.

Every wait is bounded; failures show the last difference and the worker logs.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from livemetrics.engine.gauges import live_gauges, tenant_totals
from livemetrics.metrics import LIVE_GAUGES
from livemetrics.replay import replay_lines
from livemetrics.simulate.streams import generate_stream
from tests.integration.test_pipeline import (
    LiveStack,
    _config,
    _produce,
    _settle,
    _write,
    live_stack,
)

pytestmark = pytest.mark.integration

__all__ = ["live_stack"]  # the fixture, imported so pytest finds it here

GAUGE_TIMEOUT = 60.0
SCRAPE_TIMEOUT = 30.0

TenantGauges = dict[str, dict[str, float]]


# --- helpers -----------------------------------------------------------------


def _scrape(stack: LiveStack, index: int) -> str:
    """Worker `index`'s `/metrics` body (retried while its web server is not up yet)."""
    url = f"http://127.0.0.1:{stack.web_ports[index]}/metrics"
    deadline = time.monotonic() + SCRAPE_TIMEOUT
    error: Exception | None = None
    while time.monotonic() < deadline:
        assert stack.workers[index].poll() is None, f"worker {index} exited\n{stack.logs()}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError as exc:
            error = exc
            time.sleep(0.5)
    pytest.fail(f"GET {url} failed for {SCRAPE_TIMEOUT}s: {error!r}\n{stack.logs()}")


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Sample name -> [(labels, value)], parsed with prometheus_client's own parser."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return out


def _tenant_gauges(texts: list[str]) -> TenantGauges:
    """Live gauges per tenant over every scrape: summed, max for the oldest wait; no zeros.

    The same collapse as `tenant_totals`, applied to the series of all workers.
    """
    totals: TenantGauges = {}
    for text in texts:
        samples = _samples(text)
        for name in LIVE_GAUGES:
            for labels, value in samples.get(f"livemetrics_{name}", []):
                gauges = totals.setdefault(labels["tenant"], {})
                if name == "oldest_waiting_seconds":
                    gauges[name] = max(gauges.get(name, 0.0), value)
                else:
                    gauges[name] = gauges.get(name, 0.0) + value
    return {t: {k: v for k, v in g.items() if v} for t, g in totals.items() if any(g.values())}


def _replay_gauges(lines: list[bytes]) -> TenantGauges:
    """What `test_pipeline._gauges_settle` compares Redis against: replay's final state."""
    engine = replay_lines(lines, _config()).engine
    expected = tenant_totals(
        live_gauges(engine.conversations.values(), engine.presence, engine.clock_us)
    )
    return {
        t: {k: float(v) for k, v in g.items() if v} for t, g in expected.items() if any(g.values())
    }


def _owned(text: str) -> dict[str, float]:
    return {
        labels["topic"]: value
        for labels, value in _samples(text).get("livemetrics_owned_partitions", [])
    }


def _difference(got: TenantGauges, want: TenantGauges) -> str:
    lines = []
    for tenant in sorted(got.keys() | want.keys()):
        g, w = got.get(tenant, {}), want.get(tenant, {})
        for name in sorted(g.keys() | w.keys()):
            if g.get(name) != w.get(name):
                lines.append(f"{tenant}/{name}: /metrics {g.get(name)!r} replay {w.get(name)!r}")
    return "; ".join(lines) or "equal"


def _wait_for_gauges(
    stack: LiveStack,
    expected: TenantGauges,
    ownership_ok: Callable[[list[dict[str, float]]], bool],
    what: str,
) -> None:
    """Poll every worker's `/metrics` until the gauges equal `expected` and ownership settled."""
    deadline = time.monotonic() + GAUGE_TIMEOUT
    got: TenantGauges = {}
    owned: list[dict[str, float]] = []
    while time.monotonic() < deadline:
        texts = [_scrape(stack, i) for i in range(len(stack.workers))]
        got = _tenant_gauges(texts)
        owned = [_owned(text) for text in texts]
        if got == expected and ownership_ok(owned):
            return
        time.sleep(1.0)
    pytest.fail(
        f"{what}: /metrics gauges != replay's after {GAUGE_TIMEOUT}s: "
        f"{_difference(got, expected)}; owned partitions per worker {owned}\n{stack.logs()}"
    )


def _every_partition_owned_once(events: int = 6, status: int = 3) -> Callable[..., bool]:
    """Ownership settled: each worker owns some input, every partition is owned exactly once."""

    def check(owned: list[dict[str, float]]) -> bool:
        return (
            all(o.get("chat.events", 0) > 0 for o in owned)
            and sum(o.get("chat.events", 0) for o in owned) == events
            and sum(o.get("chat.agent-status", 0) for o in owned) == status
        )

    return check


# --- tests -------------------------------------------------------------------


def test_promtool_check_metrics_is_clean_on_a_worker(live_stack: LiveStack) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (Debian: apt-get install prometheus)")
    lines = generate_stream(41, conversations=150)
    live_stack.start_worker()
    _produce(live_stack, _write(live_stack.home / "events.jsonl", lines))
    _settle(live_stack, lines)
    body = _scrape(live_stack, 0)
    samples = _samples(body)
    # not vacuous: the traffic's counters, histograms and live gauges are in it
    processed = {
        labels["topic"]: value
        for labels, value in samples["livemetrics_input_events_total"]
        if labels["outcome"] == "processed"
    }
    assert processed.get("chat.events", 0) > 0, body[:2000]
    assert samples.get("livemetrics_open_conversations"), body[:2000]
    assert any(name.endswith("_bucket") for name in samples), body[:2000]
    result = subprocess.run(
        [promtool, "check", "metrics"],
        input=body.encode(),
        capture_output=True,
        timeout=60,
        check=False,
    )
    output = (result.stdout + result.stderr).decode(errors="replace").strip()
    assert result.returncode == 0 and output == "", (
        f"promtool check metrics: exit {result.returncode}\n{output}"
    )


def test_live_gauges_summed_over_workers_equal_replay_across_rebalances(
    live_stack: LiveStack,
) -> None:
    lines = generate_stream(42, conversations=150)
    half = len(lines) // 2
    live_stack.start_worker()
    _produce(live_stack, _write(live_stack.home / "first.jsonl", lines[:half]))
    _settle(live_stack, lines[:half])
    live_stack.start_worker()  # joins: partitions move
    _produce(live_stack, _write(live_stack.home / "second.jsonl", lines[half:]))
    _settle(live_stack, lines)
    expected = _replay_gauges(lines)
    assert expected, "the traffic leaves no live gauge: the comparison would be vacuous"

    _wait_for_gauges(live_stack, expected, _every_partition_owned_once(), "two workers")

    live_stack.retire(1)  # leaves the group: its partitions move back to worker 0
    _wait_for_gauges(live_stack, expected, _every_partition_owned_once(), "worker 0 alone")
