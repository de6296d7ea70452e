"""Input lines placed on topics, partitions and offsets, as the broker would hold them."""

from __future__ import annotations

import zlib

from livemetrics.events import Event, decode_line
from livemetrics.stream.processor import EVENTS, STATUS

PARTITIONS = 4


def route(line: bytes) -> tuple[str, int]:
    """Topic and partition as `livemetrics produce` would pick them (stable hash of the key)."""
    item = decode_line(line)
    if isinstance(item, Event) and item.type == "agent.status":
        return STATUS, zlib.crc32(item.data.agent_id.encode()) % PARTITIONS
    key = item.conversation_id if isinstance(item, Event) else None
    return EVENTS, zlib.crc32((key or "").encode()) % PARTITIONS


def offsets(lines: tuple[bytes, ...] | list[bytes]) -> list[tuple[str, int, int, bytes]]:
    """Each line with its topic, partition and offset, in line order."""
    next_offset: dict[tuple[str, int], int] = {}
    records = []
    for line in lines:
        topic, partition = route(line)
        offset = next_offset.get((topic, partition), 0)
        next_offset[(topic, partition)] = offset + 1
        records.append((topic, partition, offset, line))
    return records
