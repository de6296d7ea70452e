"""The deployment files agree with each other and with the code.

No Docker engine or cluster runs in tests: docker-compose.yml, the Dockerfile,
the Prometheus and Alertmanager configs and the Kubernetes manifests are
checked as files. What a typo would break at deploy time is checked here:
a mounted file that does not exist, a flag or environment variable the
worker does not read, a port or label that does not match, a config the
worker would refuse.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from livemetrics.cli import _parser
from livemetrics.config import load_config, parse_config
from livemetrics.stream.settings import WorkerSettings
from livemetrics.topics import load_manifest
from tests.unit.test_grafana_dashboards import exported_metric_names, metric_names_in

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
EXAMPLE_CONFIG = ROOT / "deploy" / "livemetrics.example.toml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
RULES = ROOT / "deploy" / "prometheus" / "rules"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "tests"
ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
KUBERNETES = ROOT / "deploy" / "kubernetes"
GRAFANA = ROOT / "grafana"

JOB = "livemetrics-worker"
WORKERS = ("worker-1", "worker-2")
SEVERITIES = ("critical", "warning")
ENV_BOOTSTRAP, ENV_REDIS, ENV_CONFIG = (
    "LIVEMETRICS_BOOTSTRAP",
    "LIVEMETRICS_REDIS_URL",
    "LIVEMETRICS_CONFIG",
)
WEB_PORT = WorkerSettings().web_port
_ENV_NAME = re.compile(r"\bLIVEMETRICS_[A-Z_]+\b")
_TOPIC_NAME = re.compile(r"(?<![\w.])(?:chat|livemetrics)\.[a-z][a-z.\-]*[a-z](?![\w.\-])")
_PARTITIONS = re.compile(r"(?<![\w.])(chat\.[a-z][a-z.\-]*[a-z])(?: has)? (\d+)\b")
_NOT_TOPICS = (".svc", ".toml", ".yml", ".yaml", ".json", ".py")


@cache
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def service(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = compose()["services"][name]
    return spec


def command(spec: dict[str, Any]) -> list[str]:
    value = spec["command"]
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def bind_mounts(spec: dict[str, Any]) -> Iterator[tuple[Path, str]]:
    """(host path, container path) of every `./host:/container[:ro]` volume."""
    for volume in spec.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("."):
            yield ROOT / source, target


@cache
def kubernetes() -> dict[str, dict[str, Any]]:
    """kind -> the one manifest of that kind in deploy/kubernetes (kustomization aside)."""
    documents: dict[str, dict[str, Any]] = {}
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            assert document["kind"] not in documents, f"two {document['kind']} manifests"
            documents[document["kind"]] = document
    return documents


def worker_container() -> dict[str, Any]:
    container: dict[str, Any] = kubernetes()["Deployment"]["spec"]["template"]["spec"][
        "containers"
    ][0]
    return container


@cache
def rule_groups(name: str) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load((RULES / name).read_text())["groups"]
    return groups


def alerts() -> list[dict[str, Any]]:
    return [r for g in rule_groups("livemetrics-alerts.yml") for r in g["rules"]]


def recording_rules() -> list[dict[str, Any]]:
    return [r for g in rule_groups("livemetrics-recording.yml") for r in g["rules"]]


def deploy_texts() -> dict[str, str]:
    paths = [COMPOSE, DOCKERFILE, PROMETHEUS, *KUBERNETES.glob("*.yaml"), KUBERNETES / "README.md"]
    return {str(p.relative_to(ROOT)): p.read_text() for p in paths}


# -- docker-compose.yml ------------------------------------------------------------


def test_compose_has_the_whole_stack() -> None:
    assert set(compose()["services"]) == {
        "kafka",
        "topics",
        "redis",
        *WORKERS,
        "simulator",
        "prometheus",
        "alertmanager",
        "grafana",
    }


def test_kafka_runs_one_broker_in_kraft_mode() -> None:
    kafka = service("kafka")
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any("ZOOKEEPER" in key for key in env)
    advertised = env["KAFKA_ADVERTISED_LISTENERS"]
    assert "kafka:9092" in advertised


def test_every_file_compose_refers_to_exists() -> None:
    missing = [
        f"{name}: {source}"
        for name, spec in compose()["services"].items()
        for source, _ in bind_mounts(spec)
        if not source.exists()
    ]
    assert not missing
    for name, spec in compose()["services"].items():
        if "build" in spec:
            assert (ROOT / spec["build"] / "Dockerfile").is_file(), name


def test_workers_run_the_cli_with_flags_it_accepts() -> None:
    for name in WORKERS:
        argv = command(service(name))
        assert argv[:2] == ["livemetrics", "worker"], name
        args = _parser().parse_args(argv[1:])
        assert args.bootstrap == "kafka:9092"
        assert args.redis_url == "redis://redis:6379/0"
        assert args.web_port == WEB_PORT
        mounted = dict((target, source) for source, target in bind_mounts(service(name)))
        assert args.config in mounted, f"{name}: --config {args.config} is not mounted"
        load_config(mounted[args.config])


def test_workers_publish_and_check_the_web_port() -> None:
    for name in WORKERS:
        spec = service(name)
        assert any(port.endswith(f":{WEB_PORT}") for port in spec["ports"])
        assert all(port.startswith("127.0.0.1:") for port in spec["ports"])
        assert f"127.0.0.1:{WEB_PORT}/'" in " ".join(spec["healthcheck"]["test"])


def test_compose_environment_is_what_the_worker_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    env = service("worker-1")["environment"]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = WorkerSettings.from_env()
    assert settings.bootstrap == env[ENV_BOOTSTRAP] == "kafka:9092"
    assert settings.redis_url == env[ENV_REDIS] == "redis://redis:6379/0"
    assert settings.config_path == env[ENV_CONFIG]


def test_every_livemetrics_variable_in_the_deploy_files_is_read_by_the_code() -> None:
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "livemetrics").rglob("*.py"))
    unread = {
        f"{path}: {name}"
        for path, text in deploy_texts().items()
        for name in _ENV_NAME.findall(text)
        if f'"{name}"' not in source
    }
    assert not unread


def test_topics_service_creates_the_manifest_topics_before_the_workers() -> None:
    argv = command(service("topics"))
    assert argv[:2] == ["python", "-c"]
    assert "from livemetrics.kafka_admin import ensure_topics" in argv[2]
    assert "ensure_topics(" in argv[2]
    compile(argv[2], "topics service", "exec")
    for name in (*WORKERS, "simulator"):
        condition = service(name)["depends_on"]["topics"]["condition"]
        assert condition == "service_completed_successfully", name
    assert service("topics")["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_simulator_publishes_live_traffic_to_the_compose_broker() -> None:
    argv = command(service("simulator"))
    parsed = _parser().parse_args(argv[1:])
    assert parsed.to == "kafka"
    assert parsed.bootstrap == "kafka:9092"
    assert parsed.rate > 0 and parsed.speed > 0


def test_topic_names_and_partition_counts_in_the_deploy_files_match_the_manifest() -> None:
    manifest = load_manifest()
    wrong = {
        f"{path}: {name}"
        for path, text in deploy_texts().items()
        for name in _TOPIC_NAME.findall(text)
        if name not in manifest and not name.endswith(_NOT_TOPICS)
    }
    mentioned = 0
    for path, text in deploy_texts().items():
        for name, count in _PARTITIONS.findall(text):
            mentioned += 1
            if name not in manifest or manifest[name].partitions != int(count):
                wrong.add(f"{path}: {name} {count} partitions")
    assert not wrong
    assert mentioned, "the replica limit should name the input partition counts"


def test_prometheus_and_grafana_get_our_config_rules_and_dashboards() -> None:
    prometheus = dict((t, s) for s, t in bind_mounts(service("prometheus")))
    assert prometheus["/etc/prometheus/prometheus.yml"] == PROMETHEUS
    assert prometheus["/etc/prometheus/rules"] == RULES
    assert "--config.file=/etc/prometheus/prometheus.yml" in service("prometheus")["command"]
    alertmanager = dict((t, s) for s, t in bind_mounts(service("alertmanager")))
    assert alertmanager["/etc/alertmanager/alertmanager.yml"] == ALERTMANAGER
    grafana = dict((t, s) for s, t in bind_mounts(service("grafana")))
    assert grafana["/etc/grafana/provisioning"] == GRAFANA / "provisioning"
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/livemetrics.yml").read_text())
    dashboards_path = provider["providers"][0]["options"]["path"]
    assert grafana[dashboards_path] == GRAFANA / "dashboards"
    assert sorted((GRAFANA / "dashboards").glob("*.json"))
    home = service("grafana")["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (GRAFANA / "dashboards" / Path(home).name).is_file()
    assert home.startswith(dashboards_path + "/")


def test_grafana_datasource_is_the_compose_prometheus() -> None:
    document = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (datasource,) = document["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert "127.0.0.1:9090:9090" in service("prometheus")["ports"]


# -- Dockerfile ----------------------------------------------------------------------


def test_dockerfile_installs_the_project_with_its_topics() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    assert "FROM python:3.11-slim AS build" in lines
    assert "FROM python:3.11-slim" in lines
    assert any(line.startswith("COPY topics") for line in lines), "wheel needs topics/"
    assert any(line.startswith("COPY src") for line in lines)
    copied = next(line for line in lines if line.startswith("COPY pyproject.toml"))
    assert "hatch_build.py" in copied.split(), "the wheel's build hook compiles the core"
    assert any("gcc" in line for line in lines), "mypyc needs a C compiler in the build stage"
    assert "RUN pip wheel --no-deps --wheel-dir /wheels ." in lines
    assert "COPY --from=build /wheels /wheels" in lines
    assert any(line.startswith("RUN pip install /wheels/") for line in lines)
    assert f"EXPOSE {WEB_PORT}" in lines
    for line in lines:
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


# -- Prometheus and Alertmanager -----------------------------------------------------


def test_prometheus_scrapes_every_compose_worker_on_the_web_port() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == JOB]
    assert job["metrics_path"] == "/metrics"
    targets = [t for static in job["static_configs"] for t in static["targets"]]
    assert targets == [f"{name}:{WEB_PORT}" for name in WORKERS]
    (alertmanagers,) = config["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"][0]["targets"] == ["alertmanager:9093"]
    assert "127.0.0.1:9093:9093" in service("alertmanager")["ports"]


def test_prometheus_rule_files_resolve_to_our_rules() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text())
    found = {p for pattern in config["rule_files"] for p in PROMETHEUS.parent.glob(pattern)}
    assert found == set(RULES.glob("*.yml"))


def test_every_alert_has_a_severity_summary_and_description() -> None:
    for alert in alerts():
        assert alert["labels"]["severity"] in SEVERITIES, alert["alert"]
        assert alert["annotations"]["summary"].strip(), alert["alert"]
        assert alert["annotations"]["description"].strip(), alert["alert"]


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS.glob("*.yml"):
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    names = {alert["alert"] for alert in alerts()}
    assert names - firing == set(), "never tested firing"
    assert names - silent == set(), "never tested silent"


def test_every_recording_rule_is_tested() -> None:
    tested = {
        check["expr"].split("{")[0]
        for path in RULE_TESTS.glob("*.yml")
        for case in yaml.safe_load(path.read_text())["tests"]
        for check in case.get("promql_expr_test", [])
    }
    assert {rule["record"] for rule in recording_rules()} - tested == set()


def test_rule_tests_load_both_rule_files() -> None:
    for path in RULE_TESTS.glob("*.yml"):
        files = yaml.safe_load(path.read_text())["rule_files"]
        assert all((path.parent / name).resolve().parent == RULES for name in files), path.name


def test_rules_read_only_exported_metrics_and_our_job() -> None:
    known = exported_metric_names() | {"up"}
    for rule in alerts() + recording_rules():
        name = rule.get("alert") or rule.get("record")
        assert metric_names_in(rule["expr"]) <= known, name
        jobs = re.findall(r'job="([^"]*)"', rule["expr"])
        assert set(jobs) <= {JOB}, name


def test_alertmanager_routes_every_severity_to_a_receiver() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text())
    receivers = {r["name"] for r in config["receivers"]}
    route = config["route"]
    assert route["receiver"] in receivers
    routed = {}
    for child in route["routes"]:
        assert child["receiver"] in receivers
        for matcher in child["matchers"]:
            label, value = (part.strip().strip('"') for part in matcher.split("="))
            if label == "severity":
                routed[value] = child["receiver"]
    assert set(routed) == set(SEVERITIES)
    for receiver in config["receivers"]:
        assert receiver["webhook_configs"][0]["url"].startswith("http")
    names = {alert["alert"] for alert in alerts()}
    for rule in config["inhibit_rules"]:
        for key in ("source_matchers", "target_matchers"):
            for matcher in rule[key]:
                label, _, pattern = matcher.partition("=~" if "=~" in matcher else "=")
                assert label.strip() == "alertname"
                assert any(re.fullmatch(pattern.strip().strip('"'), n) for n in names), matcher


# -- Kubernetes ----------------------------------------------------------------------


def test_kubernetes_manifests_parse_and_kustomization_lists_them() -> None:
    assert set(kubernetes()) == {
        "Deployment",
        "Service",
        "ServiceMonitor",
        "ConfigMap",
        "PodDisruptionBudget",
        "Kustomization",
    }
    listed = set(kubernetes()["Kustomization"]["resources"])
    assert listed == {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}


def test_deployment_selects_its_own_pods_and_stays_within_the_partitions() -> None:
    deployment = kubernetes()["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert 1 <= deployment["spec"]["replicas"] <= load_manifest()["chat.events"].partitions


def test_worker_container_reads_the_settings_env_and_serves_the_web_port() -> None:
    container = worker_container()
    assert container["command"] == ["livemetrics", "worker"]
    args = _parser().parse_args(["worker", *container["args"]])
    assert args.web_port == WEB_PORT
    env = {item["name"]: item["value"] for item in container["env"]}
    assert {ENV_BOOTSTRAP, ENV_REDIS, ENV_CONFIG} <= set(env)
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert ports == {"web": WEB_PORT}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        # `/` is Faust's status page: up once tables are recovered, open without a token.
        assert container[probe]["httpGet"] == {"path": "/", "port": "web"}, probe
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_worker_config_comes_from_the_configmap_at_the_configured_path() -> None:
    container = worker_container()
    env = {item["name"]: item["value"] for item in container["env"]}
    volumes = {
        v["name"]: v for v in kubernetes()["Deployment"]["spec"]["template"]["spec"]["volumes"]
    }
    configmap = kubernetes()["ConfigMap"]
    mounts = [m for m in container["volumeMounts"] if "configMap" in volumes[m["name"]]]
    (mount,) = mounts
    source = volumes[mount["name"]]["configMap"]
    assert source["name"] == configmap["metadata"]["name"]
    (item,) = source["items"]
    assert f"{mount['mountPath']}/{item['path']}" == env[ENV_CONFIG]
    assert item["key"] in configmap["data"]
    parse_config(configmap["data"][item["key"]])


def test_configmap_carries_the_example_config() -> None:
    assert kubernetes()["ConfigMap"]["data"]["config.toml"] == EXAMPLE_CONFIG.read_text()


def test_service_servicemonitor_and_pdb_point_at_the_worker_pods() -> None:
    pod_labels = kubernetes()["Deployment"]["spec"]["template"]["metadata"]["labels"]
    service_ = kubernetes()["Service"]
    assert service_["metadata"]["name"] == JOB, "the job label the rules and dashboards use"
    assert service_["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service_["spec"]["ports"]
    assert port["port"] == WEB_PORT
    assert port["targetPort"] in {p["name"] for p in worker_container()["ports"]}
    monitor = kubernetes()["ServiceMonitor"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service_["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == port["name"]
    assert endpoint["path"] == "/metrics"
    pdb = kubernetes()["PodDisruptionBudget"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


# -- the example config ----------------------------------------------------------------


def test_example_config_loads() -> None:
    config = load_config(EXAMPLE_CONFIG)
    assert set(config.tenants) == {"acme", "globex"}
    assert config.prometheus_tag_allow_list
    assert all(tenant.sla for tenant in config.tenants.values())
