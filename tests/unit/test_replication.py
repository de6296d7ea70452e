"""Topics on a replicated Kafka: LIVEMETRICS_REPLICATION_FACTOR reaches every topic created."""

from __future__ import annotations

import pytest

from livemetrics import kafka_admin
from livemetrics.kafka_admin import REPLICATION_ENV, replication_factor
from livemetrics.stream.settings import WorkerSettings
from livemetrics.stream.worker import create_app
from livemetrics.topics import load_manifest


def test_one_replica_by_default_for_the_embedded_single_node_broker() -> None:
    assert replication_factor({}) == 1
    spec = load_manifest()["chat.events"]
    topic = kafka_admin._new_topic(spec, spec.partitions)
    assert topic.replication_factor == 1
    assert "min.insync.replicas" not in topic.topic_configs


@pytest.mark.parametrize("raw", ["0", "-1", "three", "2.5"])
def test_a_bad_factor_is_refused_naming_the_variable(raw: str) -> None:
    with pytest.raises(ValueError, match=f"{REPLICATION_ENV} must be a positive integer"):
        replication_factor({REPLICATION_ENV: raw})


def test_manifest_topics_get_the_factor_and_all_but_one_in_sync(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(REPLICATION_ENV, "3")
    for spec in load_manifest().values():
        topic = kafka_admin._new_topic(spec, spec.partitions)
        assert topic.replication_factor == 3, spec.name
        assert topic.topic_configs["min.insync.replicas"] == "2", spec.name
        assert topic.topic_configs["cleanup.policy"] == spec.cleanup_policy


def test_worker_changelogs_get_the_factor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REPLICATION_ENV, "3")
    app = create_app(WorkerSettings())
    assert app.conf.topic_replication_factor == 3
    for name in ("conversations", "presence"):
        assert app.tables[name].changelog_topic.config["min.insync.replicas"] == "2"
