"""The topic manifest and value schemas shipped in `topics/` (SPEC §1, §3).

The topology (what flows where, under which key and schema) is declared as data
apart from the code, so the stack, the decoder and the docs read one source.

    >>> load_manifest()["chat.events"].key
    'conversation_id'
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = ["TopicSpec", "load_manifest", "load_schema", "topics_dir"]

_MANIFEST = "manifest.json"


@dataclass(slots=True, frozen=True)
class TopicSpec:
    """One topic of the manifest; `schema` is the schema file relative to `topics_dir()`."""

    name: str
    key: str
    partitions: int
    cleanup_policy: str
    retention_ms: int
    schema: str
    schema_version: int = 1


@functools.cache
def topics_dir() -> Path:
    """Where `manifest.json` lives: inside the installed wheel, else the repo's `topics/`.

    The wheel force-includes the repo's `topics/` as `livemetrics/_topics`
    (see pyproject.toml); a source checkout reads it in place.
    """
    package_dir = Path(__file__).resolve().parent
    for candidate in (package_dir / "_topics", package_dir.parents[1] / "topics"):
        if (candidate / _MANIFEST).is_file():
            return candidate
    raise FileNotFoundError(
        f"no topics/{_MANIFEST} found next to {package_dir}; reinstall livemetrics "
        "or run from the repository"
    )


@functools.cache
def _read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc


_FIELDS: dict[str, type] = {
    "name": str,
    "key": str,
    "partitions": int,
    "cleanup_policy": str,
    "retention_ms": int,
    "schema": str,
    "schema_version": int,
}


def _topic_spec(entry: Any, index: int) -> TopicSpec:
    if not isinstance(entry, dict):
        raise ValueError(f"{_MANIFEST}: topics[{index}] must be an object")
    for field, kind in _FIELDS.items():
        value = entry.get(field)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(
                f"{_MANIFEST}: topics[{index}].{field} must be a {kind.__name__}, got {value!r}"
            )
    return TopicSpec(**{field: entry[field] for field in _FIELDS})


@functools.cache
def load_manifest() -> dict[str, TopicSpec]:
    """Every topic by name, in manifest order. Raises ValueError naming a bad key."""
    document = _read_json(topics_dir() / _MANIFEST)
    entries = document.get("topics") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{_MANIFEST}: 'topics' must be a list")
    specs = [_topic_spec(entry, index) for index, entry in enumerate(entries)]
    by_name = {spec.name: spec for spec in specs}
    if len(by_name) != len(specs):
        raise ValueError(f"{_MANIFEST}: a topic name appears twice")
    return by_name


def load_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of topic `name`'s values (a fresh copy, safe to change).

    >>> load_schema("chat.events")["$schema"]
    'http://json-schema.org/draft-07/schema#'
    """
    spec = load_manifest().get(name)
    if spec is None:
        known = ", ".join(load_manifest())
        raise KeyError(f"unknown topic {name!r}; known topics: {known}")
    schema = _read_json(topics_dir() / spec.schema)
    if not isinstance(schema, dict):
        raise ValueError(f"{spec.schema}: a schema must be a JSON object")
    return copy.deepcopy(schema)
