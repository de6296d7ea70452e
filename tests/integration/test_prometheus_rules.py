"""Prometheus' own tool checks our config, rules and dashboard queries.

`promtool check config` (with the rule files it names), `promtool check rules`,
`promtool test rules deploy/prometheus/tests/*.yml` (every alert firing and
not firing, the recording rules on known input), and every dashboard
expression parsed as PromQL. Skipped, with the reason, when Debian's
`promtool` is not installed (scripts/setup-system.sh installs it).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.unit.test_grafana_dashboards import load_generator

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
TIMEOUT = 120
#: What the template variables become when a dashboard query is checked.
SUBSTITUTIONS = {
    "__rate_interval": "1m",
    "__range": "1h",
    "__interval": "1m",
    "window": "15m",
    "tenant": ".*",
    "team": ".*",
    "channel": ".*",
    "instance": ".*",
}


def promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool not found: run scripts/setup-system.sh (apt-get install prometheus)")
    return binary


def run(*argv: str) -> str:
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=TIMEOUT, cwd=ROOT, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{output}"
    return output


def substitute(expr: str) -> str:
    """A dashboard expression with its template variables replaced, ready for Prometheus."""
    text = re.sub(r"\$\{?(\w+)\}?", lambda m: SUBSTITUTIONS[m.group(1)], expr)
    assert "$" not in text, text
    return text


def test_promtool_accepts_the_prometheus_config_and_its_rule_files() -> None:
    output = run(promtool(), "check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert "2 rule files found" in output


def test_promtool_accepts_the_rules() -> None:
    rules = sorted(str(p) for p in (PROMETHEUS_DIR / "rules").glob("*.yml"))
    assert len(rules) == 2
    run(promtool(), "check", "rules", *rules)


def test_rule_unit_tests_pass() -> None:
    tests = sorted(str(p) for p in (PROMETHEUS_DIR / "tests").glob("*.yml"))
    assert tests
    output = run(promtool(), "test", "rules", *tests)
    assert output.count("SUCCESS") == len(tests), output


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """Each panel expression, as a recording rule, through `promtool check rules`."""
    generator = load_generator()
    rules = [
        {"record": f"dashboard:query:{number}", "expr": substitute(expr)}
        for number, (_, expr) in enumerate(
            (
                item
                for board in generator.build_dashboards().values()
                for item in generator.iter_expressions(board)
            ),
            start=1,
        )
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    output = run(promtool(), "check", "rules", str(path))
    assert f"{len(rules)} rules found" in output


def test_amtool_accepts_the_alertmanager_example() -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool not found (Debian: apt-get install prometheus-alertmanager)")
    run(amtool, "check-config", str(ALERTMANAGER))
