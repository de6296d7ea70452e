"""The topic manifest and its schemas load, are valid draft-07, and describe real messages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from livemetrics.topics import TopicSpec, load_manifest, load_schema, topics_dir

EXPECTED_KEYS = {
    "chat.events": "conversation_id",
    "chat.agent-status": "agent_id",
    "livemetrics.observations": "tenant",
    "livemetrics.sla": "tenant",
    "livemetrics.live": "tenant",
    "chat.events.dlq": "original",
}


def validator(topic: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(load_schema(topic))


def test_manifest_lists_every_topic_with_its_key() -> None:
    manifest = load_manifest()
    assert {name: spec.key for name, spec in manifest.items()} == EXPECTED_KEYS
    for name, spec in manifest.items():
        assert isinstance(spec, TopicSpec)
        assert spec.name == name
        assert spec.partitions >= 1
        assert spec.cleanup_policy in {"delete", "compact", "compact,delete"}
        assert spec.retention_ms == -1 or spec.retention_ms > 0


def test_topics_dir_is_the_repository_topics_folder_in_a_checkout() -> None:
    assert (topics_dir() / "manifest.json").is_file()
    assert topics_dir().name in {"topics", "_topics"}


@pytest.mark.parametrize("topic", sorted(EXPECTED_KEYS))
def test_every_schema_is_valid_draft_07(topic: str) -> None:
    schema = load_schema(topic)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)


@pytest.mark.parametrize("topic", sorted(EXPECTED_KEYS))
def test_schema_version_matches_its_directory(topic: str) -> None:
    spec = load_manifest()[topic]
    assert re.fullmatch(r"schemas/v[0-9]+/[a-z.\-]+\.json", spec.schema)
    assert spec.schema.split("/")[1] == f"v{spec.schema_version}"
    assert (topics_dir() / spec.schema).is_file()


def test_every_schema_file_belongs_to_a_topic() -> None:
    used = {topics_dir() / spec.schema for spec in load_manifest().values()}
    latest = max(
        (path for path in (topics_dir() / "schemas").iterdir() if path.is_dir()),
        key=lambda path: int(path.name[1:]),
    )
    assert set(latest.glob("*.json")) <= used


def test_load_schema_returns_a_private_copy() -> None:
    load_schema("chat.events")["title"] = "changed"
    assert load_schema("chat.events")["title"] != "changed"


def test_unknown_topic_is_named_in_the_error() -> None:
    with pytest.raises(KeyError, match=r"chat\.nope"):
        load_schema("chat.nope")


def test_example_conversation_matches_the_input_schemas() -> None:
    example = Path(__file__).resolve().parents[3] / "shared" / "examples" / "one-conversation.jsonl"
    if not example.is_file():
        pytest.skip("shared/examples not present")
    import orjson

    for line in example.read_bytes().splitlines():
        event = orjson.loads(line)
        topic = "chat.agent-status" if event["type"] == "agent.status" else "chat.events"
        validator(topic).validate(event)


OUTPUT_SAMPLES: dict[str, dict[str, Any]] = {
    "livemetrics.observations": {
        "metric": "first_response_seconds",
        "value": 30.0,
        "ts": "2026-11-23T09:00:50.000000Z",
        "tenant": "acme",
        "dimensions": {"channel": "chat", "team": "team-es", "skill": None},
        "agents": ["ag-luis"],
        "conversation_id": "c-1001",
        "event_id": "9f1c0006",
        "retraction": False,
        "day": "2026-11-23",
        "hour": "10",
    },
    "livemetrics.sla": {
        "kind": "breach",
        "sla_kind": "first_response",
        "tenant": "acme",
        "conversation_id": "c-1001",
        "turn": 0,
        "started_at": "2026-11-23T09:00:20.000000Z",
        "deadline": "2026-11-23T09:01:20.000000Z",
        "detected_at": "2026-11-23T09:01:20.000001Z",
        "team": "team-es",
        "agent": None,
    },
    "livemetrics.live": {
        "tenant": "acme",
        "ts": "2026-11-23T09:01:20.000000Z",
        "gauges": {
            "open_conversations": 12,
            "oldest_waiting_seconds": 41.5,
            "agent_active_conversations": {"ag-luis": 3},
            "agents_online": {"team-es": {"chat": 4}},
        },
    },
    "chat.events.dlq": {
        "reason": "missing field 'ts'",
        "source_topic": "chat.events",
        "partition": 2,
        "offset": 1041,
        "original": "eyJ0eXBlIjoiY29udmVyc2F0aW9uLmNsb3NlZCJ9",
        "tenant": "acme",
        "ts": None,
    },
}

OUTPUT_BREAKAGES: dict[str, tuple[str, Any]] = {
    "livemetrics.observations": ("retraction", "no"),
    "livemetrics.sla": ("kind", "late"),
    "livemetrics.live": ("gauges", {"open_conversations": "twelve"}),
    "chat.events.dlq": ("original", "not base64!"),
}


@pytest.mark.parametrize("topic", sorted(OUTPUT_SAMPLES))
def test_output_schemas_accept_a_typical_message(topic: str) -> None:
    validator(topic).validate(OUTPUT_SAMPLES[topic])


@pytest.mark.parametrize("topic", sorted(OUTPUT_SAMPLES))
def test_output_schemas_reject_a_broken_message(topic: str) -> None:
    field, value = OUTPUT_BREAKAGES[topic]
    message = {**OUTPUT_SAMPLES[topic], field: value}
    assert not validator(topic).is_valid(message)
