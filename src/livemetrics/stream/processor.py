"""The live worker's core glue: input records in, state records and sink writes out.

No Faust, Kafka or Redis here, so it is tested directly. The Faust agent feeds
it batches of `(partition, offset, bytes)`; it runs the same `Engine` as
`replay`, keeps per conversation the aggregate cells that carry it, and on
`flush()` hands back everything to persist, in the order that keeps data safe:

1. sink snapshots (absolute cells per conversation / partition, for Redis),
2. topic messages (observations, SLA events, dead letters),
3. state records stamped with the source offset they include (for the table).

Every stored record carries the input offset it has applied, so an input
redelivered after a crash is skipped (offset <= applied) and a gap (a record
lost although its offset was committed) is detected and refilled.

    >>> proc = LiveProcessor(config)
    >>> proc.apply(EVENTS, partition=0, offset=41, raw=b'{"event_id": ...}')  # doctest: +SKIP
    >>> batch = proc.flush()  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import zlib
from bisect import insort
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any

import orjson

from livemetrics.aggregate.distribution import Distribution
from livemetrics.aggregate.store import Cell, CellKey, _cell_from_state, _cell_to_state, _fold
from livemetrics.calendar import NEVER_US
from livemetrics.config import Config
from livemetrics.engine.engine import Engine
from livemetrics.engine.outputs import (
    DIM_FIELDS,
    DIM_INDEX,
    ConversationAttributes,
    ConversationDropped,
    Observation,
    Output,
    SlaEvent,
)
from livemetrics.engine.state import conversation_from_list, conversation_to_list
from livemetrics.event_types import AgentStatus
from livemetrics.events import Event, Rejection, decode_event, format_ts

EVENTS = "chat.events"
STATUS = "chat.agent-status"
OBSERVATIONS = "livemetrics.observations"
SLA = "livemetrics.sla"
DLQ = "chat.events.dlq"

RECORD_VERSION = 1
#: Dead letters keep at most this much of the original (base64 grows it by a third):
#: an input over the broker's message limit must not stop the pipeline.
DLQ_ORIGINAL_LIMIT = 512 * 1024
_CONVERSATION = DIM_INDEX["conversation"]
_PRESENCE_IDS_KEPT = 256

ConversationKey = tuple[str, str]
Cells = dict[CellKey, Cell]


@dataclass(slots=True)
class PartitionState:
    """What one input partition has applied, and its cells without a conversation."""

    applied_offset: int = -1
    cells: Cells = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    # CRC-32 of the record at applied_offset (-1: unknown): lets the worker check that
    # the broker still holds what was applied (a memory-only broker forgets on restart)
    applied_crc: int = -1
    # What restored records ahead of applied_offset put outside themselves (see
    # `LiveProcessor.reconcile`), by their offset, ascending: folded into cells and
    # counters once applied_offset reaches it. Until then the partition's record (the
    # changelog) leaves it out, so its cells and counters stay those of the offsets up
    # to applied_offset: the records stay ahead of it, and a later restore adds them
    # back once; Redis gets it at once (`reported`)
    ahead: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def reach(self) -> None:
        """Fold in what records ahead put outside themselves, up to applied_offset."""
        ahead = self.ahead
        while ahead and ahead[0][0] <= self.applied_offset:
            _add_extra(self.cells, self.counters, ahead.pop(0)[1])

    def reported(self) -> tuple[Cells, dict[str, int]]:
        """Cells and counters with what the records ahead put outside themselves (a
        snapshot for Redis: the state itself is left alone)."""
        counters = dict(self.counters)
        if not self.ahead:
            return self.cells, counters
        cells = dict(self.cells)
        for _, extra in self.ahead:
            _add_extra(cells, counters, extra, shared=self.cells)
        return cells, counters


@dataclass(frozen=True, slots=True)
class TopicMessage:
    topic: str
    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True)
class StateRecord:
    """One changelog write: table, partition, key, value (None deletes)."""

    table: str
    partition: int
    key: bytes
    value: bytes | None


@dataclass(slots=True)
class ConversationSnapshotData:
    tenant: str
    conversation_id: str
    cells: Cells
    attributes: dict[str, Any] | None
    source_offset: tuple[int, int]


@dataclass(slots=True)
class PartitionSnapshotData:
    partition: int
    cells: Cells
    applied_offset: int
    counters: dict[str, int]


@dataclass(slots=True)
class Flush:
    conversations: list[ConversationSnapshotData]
    partitions: list[PartitionSnapshotData]
    messages: list[TopicMessage]
    records: list[StateRecord]
    clock_us: int

    @property
    def empty(self) -> bool:
        return not (self.conversations or self.partitions or self.messages or self.records)


class LiveProcessor:
    """An `Engine` plus what the live pipeline needs around it."""

    def __init__(
        self,
        config: Config,
        *,
        publish_observations: bool = True,
        on_observation: Callable[[Observation], None] | None = None,
    ) -> None:
        self.config = config
        self.engine = Engine(config)
        self.publish_observations = publish_observations
        self.on_observation = on_observation
        self.totals: dict[tuple[str, str], int] = {}  # (topic, outcome), this process only
        self.cells: dict[ConversationKey, Cells] = {}
        self.attributes: dict[ConversationKey, dict[str, Any]] = {}
        self.home: dict[ConversationKey, int] = {}  # conversation -> input partition
        self.offsets: dict[ConversationKey, int] = {}  # last applied input offset
        self.partitions: dict[tuple[str, int], PartitionState] = {}
        self.presence_ids: dict[tuple[str, str], list[str]] = {}
        self.presence_home: dict[tuple[str, str], int] = {}  # agent -> status partition
        self.presence_offsets: dict[tuple[str, str], int] = {}  # last applied status offset
        # What an owner's input put outside its own record in this batch (partition cells,
        # counters). Its record carries it: when the record survives a crash but the
        # partition record of the same batch does not, `reconcile` adds it back, because
        # the re-applied input is skipped for that owner (its record is ahead).
        self._extras: dict[_Owner, dict[str, Any]] = {}
        self._restored_extras: list[tuple[str, int, int, dict[str, Any]]] = []
        self._dirty: set[ConversationKey] = set()
        self._dropped: set[ConversationKey] = set()
        self._dirty_partitions: set[tuple[str, int]] = set()
        self._dirty_presence: set[tuple[str, str, int]] = set()
        self._messages: list[TopicMessage] = []
        self._out: list[Output] = []

    # -- input ---------------------------------------------------------------

    def partition(self, topic: str, number: int) -> PartitionState:
        key = (topic, number)
        state = self.partitions.get(key)
        if state is None:
            state = self.partitions[key] = PartitionState()
        return state

    def apply(self, topic: str, partition: int, offset: int, raw: bytes) -> bool:
        """Apply one input record; False when it was already applied (a redelivery)."""
        part = self.partition(topic, partition)
        if offset <= part.applied_offset:
            return False
        part.applied_offset = offset
        part.applied_crc = zlib.crc32(raw)
        if part.ahead:
            part.reach()
        self._dirty_partitions.add((topic, partition))
        item = decode_event(raw)
        out = self._out
        if isinstance(item, Rejection):
            part.count("dead_lettered")
            self._total(topic, "dead_lettered")
            self.engine.reject(item, out)
            self._dead_letter(item, topic, partition, offset)
            self._route(out, topic, partition, offset)
            return True
        if item.type == "agent.status":
            return self._apply_status(item, topic, partition, offset)
        key = (item.tenant, item.conversation_id or "")
        if self.offsets.get(key, -1) >= offset:
            return False  # its record is ahead of the partition's (written before a crash)
        duplicate = not self.engine.process(item, out)
        owner: _Owner | None = None
        if key in self.engine.conversations:
            owner = ("conversations", key[0], key[1])
            self.home[key] = partition
            self.offsets[key] = offset
            self._dirty.add(key)
        self._count_outcome(topic, part, duplicate, owner)
        self._route(out, topic, partition, offset, owner)
        return True

    def advance(self, now_us: int) -> None:
        """Move the engine clock (global clock or wall clock); route what timers fire."""
        if now_us > self.engine.clock_us:
            self.engine.advance(now_us, self._out)
            self._route(self._out, EVENTS, None, None)

    def fire_due(self) -> None:
        """Fire the timers restored conversations have due at the current clock; call
        after activating a partition (no later event may come to fire them)."""
        self.engine.fire_due(self._out)
        self._route(self._out, EVENTS, None, None)

    def _apply_status(self, event: Event, topic: str, partition: int, offset: int) -> bool:
        body = event.data
        assert isinstance(body, AgentStatus)  # routed here by its type
        agent = body.agent_id
        agent_key = (event.tenant, agent)
        if self.presence_offsets.get(agent_key, -1) >= offset:
            return False  # its record is ahead of the partition's (written before a crash)
        out = self._out
        duplicate = not self.engine.process(event, out)
        owner: _Owner = ("presence", event.tenant, agent)
        self._count_outcome(topic, self.partition(topic, partition), duplicate, owner)
        self.presence_home[agent_key] = partition
        self.presence_offsets[agent_key] = offset
        if not duplicate:
            ids = self.presence_ids.setdefault(agent_key, [])
            ids.append(event.event_id)
            del ids[:-_PRESENCE_IDS_KEPT]
        self._dirty_presence.add((event.tenant, agent, partition))
        self._route(out, topic, partition, offset, owner)
        return True

    def _count_outcome(
        self, topic: str, part: PartitionState, duplicate: bool, owner: _Owner | None = None
    ) -> None:
        """Each input has one outcome: processed, duplicate or dead_lettered."""
        name = "duplicates" if duplicate else "processed"
        part.count(name)
        self._total(topic, "duplicate" if duplicate else "processed")
        if owner is not None:
            counts = self._extra(owner)["c"]
            counts[name] = counts.get(name, 0) + 1

    def _extra(self, owner: _Owner) -> dict[str, Any]:
        extra = self._extras.get(owner)
        if extra is None:
            extra = self._extras[owner] = {"c": {}, "o": []}
        return extra

    def _total(self, topic: str, outcome: str) -> None:
        key = (topic, outcome)
        self.totals[key] = self.totals.get(key, 0) + 1

    # -- routing -------------------------------------------------------------

    def _route(
        self,
        out: list[Output],
        topic: str,
        partition: int | None,
        offset: int | None,
        owner: _Owner | None = None,
    ) -> None:
        """Fold observations into their conversation cells (else the partition); queue messages."""
        for item in out:
            if isinstance(item, Observation):
                to_partition = not self._fold(item, topic, partition)
                # the owner's own tenant-level counts (a duplicate); not timer output of
                # other conversations that the owner's event time happened to fire
                if to_partition and owner is not None and item.dims[_CONVERSATION] is None:
                    self._extra(owner)["o"].append(item.to_list())
                if self.on_observation is not None:
                    self.on_observation(item)
                if self.publish_observations:
                    self._messages.append(_observation_message(item))
            elif isinstance(item, ConversationAttributes):
                key = (item.tenant, item.conversation_id)
                self.attributes[key] = item.values
                self._dirty.add(key)
            elif isinstance(item, SlaEvent):
                self._messages.append(_sla_message(item))
            elif isinstance(item, ConversationDropped):
                key = (item.tenant, item.conversation_id)
                self._dropped.add(key)
        out.clear()

    def _fold(self, obs: Observation, topic: str, partition: int | None) -> bool:
        """True when it went to its conversation's cells, False for the partition's."""
        conversation = obs.dims[_CONVERSATION]
        key = (obs.dims[0] or "", conversation or "")
        home = self.home.get(key)
        if conversation is not None and home is not None and key in self.engine.conversations:
            self._dirty.add(key)
            _fold_into(self.cells.setdefault(key, {}), obs)
            return True
        number = partition if partition is not None else (home or 0)
        self._dirty_partitions.add((topic, number))
        _fold_into(self.partition(topic, number).cells, obs)
        return False

    def _dead_letter(self, rejection: Rejection, topic: str, partition: int, offset: int) -> None:
        value = {
            "reason": rejection.reason,
            "source_topic": topic,
            "partition": partition,
            "offset": offset,
            "original": base64.b64encode(rejection.raw[:DLQ_ORIGINAL_LIMIT]).decode(),
            "original_bytes": len(rejection.raw),
            "truncated": len(rejection.raw) > DLQ_ORIGINAL_LIMIT,
            "tenant": rejection.tenant,
            "ts": None if rejection.ts_us is None else format_ts(rejection.ts_us),
        }
        self._messages.append(TopicMessage(DLQ, None, _dumps(value)))

    # -- output --------------------------------------------------------------

    def flush(self) -> Flush:
        """Everything changed since the last flush, ready for the sinks and the table."""
        conversations = []
        records = []
        for key in self._dirty:
            partition = self.home.get(key)
            if partition is None:
                continue
            cells = self.cells.get(key, {})
            attributes = self.attributes.get(key)
            offset = self.offsets.get(key, -1)
            conversations.append(
                ConversationSnapshotData(key[0], key[1], cells, attributes, (partition, offset))
            )
            conv = self.engine.conversations.get(key)
            if conv is not None:
                value = [
                    RECORD_VERSION,
                    partition,
                    offset,
                    conversation_to_list(conv),
                    _cells_to_state(cells),
                    attributes,
                    self._extras.get(("conversations", key[0], key[1])),
                ]
                records.append(StateRecord("conversations", partition, _key(key), _dumps(value)))
        for key in self._dropped:
            partition = self.home.pop(key, None)
            self.cells.pop(key, None)
            self.attributes.pop(key, None)
            offset = self.offsets.pop(key, -1)
            if partition is not None:
                extra = self._extras.get(("conversations", key[0], key[1]))
                tombstone = _dumps([RECORD_VERSION, partition, offset, None, None, None, extra])
                records.append(StateRecord("conversations", partition, _key(key), tombstone))
        for tenant, agent, number in self._dirty_presence:
            status = self.engine.presence.get((tenant, agent))
            value = [
                RECORD_VERSION,
                status,
                self.presence_ids.get((tenant, agent), []),
                number,
                self.presence_offsets.get((tenant, agent), -1),
                self._extras.get(("presence", tenant, agent)),
            ]
            records.append(StateRecord("presence", number, _key((tenant, agent)), _dumps(value)))
        partitions = []
        for topic, number in self._dirty_partitions:
            part = self.partitions[(topic, number)]
            snapshot_number = number if topic == EVENTS else 1000 + number
            cells, counters = part.reported()
            partitions.append(
                PartitionSnapshotData(snapshot_number, cells, part.applied_offset, counters)
            )
            # last, in the same changelog as the partition's other records: a recovery
            # that stops early never restores an applied offset ahead of the state
            value = [
                RECORD_VERSION,
                part.applied_offset,
                _cells_to_state(part.cells),
                part.counters,
                part.applied_crc,
            ]
            table = "conversations" if topic == EVENTS else "presence"
            record_key = partition_key(topic, number)
            records.append(StateRecord(table, number, record_key, _dumps(value)))
        flush = Flush(conversations, partitions, self._messages, records, self.engine.clock_us)
        self._dirty = set()
        self._dropped = set()
        self._dirty_partitions = set()
        self._dirty_presence = set()
        self._messages = []
        self._extras = {}
        return flush

    # -- state in and out of partitions -------------------------------------------

    def restore(self, table: str, key: bytes, value: bytes) -> None:
        """Load one record of a recovered table (call for every record of an assigned partition)."""
        item = orjson.loads(value)
        if key.startswith(PARTITION_KEY_PREFIX):
            applied, cells, counters = item[1:4]
            crc = item[4] if len(item) > 4 else -1  # absent in records written before it
            topic, _, number = key[len(PARTITION_KEY_PREFIX) :].decode().rpartition(":")
            self.partitions[(topic, int(number))] = PartitionState(
                applied, _cells_from_state(cells), dict(counters), crc
            )
        elif table == "conversations":
            _, partition, offset, state, cells, attributes = item[:6]
            conv_key = _unkey(key)
            self.home[conv_key] = partition
            self.offsets[conv_key] = offset
            if len(item) > 6 and item[6]:
                self._restored_extras.append((EVENTS, partition, offset, item[6]))
            if state is None:
                self.engine.dropped.add(conv_key)
                return
            self.engine.load(conversation_from_list(state))
            self.cells[conv_key] = _cells_from_state(cells)
            if attributes is not None:
                self.attributes[conv_key] = attributes
        elif table == "presence":
            _, status, ids, number = item[:4]
            tenant, agent = _unkey(key)
            self.presence_home[(tenant, agent)] = number
            if len(item) > 4:  # records written before offsets were kept have none
                self.presence_offsets[(tenant, agent)] = item[4]
                if item[5]:
                    self._restored_extras.append((STATUS, number, item[4], item[5]))
            if status is not None:
                self.engine.presence[(tenant, agent)] = (status[0], status[1])
            self.presence_ids[(tenant, agent)] = list(ids)
            self.engine.status_ids.setdefault(tenant, set()).update(ids)

    def reconcile(self, topic: str | None = None, partition: int | None = None) -> int:
        """Add back what restored records ahead of their partition record put outside
        themselves (see `_extras`); call after restoring a partition's records (all
        partitions when `topic` is None). Forgets every restored extra. Returns how
        many records were ahead.

        It is added to the partition's cells and counters when its applied offset
        reaches the record's offset (the input re-read is skipped for that record's
        owner): a partition record written before then (a tick, a revoke, a batch
        short of it) leaves it out, as its applied offset does, so the records stay
        ahead of it and a later restore adds them back once. Snapshots for Redis
        carry it at once (`PartitionState.reported`).
        """
        ahead = 0
        for source, number, offset, extra in self._restored_extras:
            if topic is not None and (source, number) != (topic, partition):
                continue
            part = self.partition(source, number)
            if offset <= part.applied_offset:
                continue
            ahead += 1
            insort(part.ahead, (offset, extra), key=itemgetter(0))
            self._dirty_partitions.add((source, number))
        self._restored_extras = []
        return ahead

    def release_presence(self, partition: int) -> None:
        """Forget the agents of a status partition this worker no longer owns."""
        for agent_key in [k for k, p in self.presence_home.items() if p == partition]:
            self.presence_home.pop(agent_key, None)
            self.presence_offsets.pop(agent_key, None)
            self.presence_ids.pop(agent_key, None)
            self.engine.presence.pop(agent_key, None)
        self._dirty_presence = {d for d in self._dirty_presence if d[2] != partition}
        self.partitions.pop((STATUS, partition), None)

    @staticmethod
    def record_partition(table: str, key: bytes, value: bytes) -> int | None:
        """The input partition a stored conversation or presence record belongs to
        (None for a partition record)."""
        if key.startswith(PARTITION_KEY_PREFIX):
            return None
        item = orjson.loads(value)
        return int(item[1] if table == "conversations" else item[3])

    def gauges_by_partition(self) -> dict[int, dict[str, dict[str, float]]]:
        """Live gauges per input partition and tenant (status partitions as 1000 + n)."""
        from livemetrics.engine.gauges import live_gauges, tenant_totals

        engine = self.engine
        groups: dict[int, list[Any]] = {}
        for key, number in self.home.items():
            conv = engine.conversations.get(key)
            if conv is not None:
                groups.setdefault(number, []).append(conv)
        presence: dict[int, dict[tuple[str, str], tuple[str, str | None]]] = {}
        for agent_key, number in self.presence_home.items():
            status = engine.presence.get(agent_key)
            if status is not None:
                presence.setdefault(1000 + number, {})[agent_key] = status
        result = {
            number: tenant_totals(live_gauges(convs, {}, engine.clock_us))
            for number, convs in groups.items()
        }
        for number, agents in presence.items():
            result[number] = tenant_totals(live_gauges((), agents, engine.clock_us))
        return result

    def release(self, partition: int) -> None:
        """Forget the conversations of an input partition this worker no longer owns."""
        for key in [k for k, p in self.home.items() if p == partition]:
            self.engine.unload(key)
            self.home.pop(key, None)
            self.cells.pop(key, None)
            self.attributes.pop(key, None)
            self.offsets.pop(key, None)
            self._dirty.discard(key)
        self.partitions.pop((EVENTS, partition), None)


PARTITION_KEY_PREFIX = b"\x00partition:"

_Owner = tuple[str, str, str]
"""("conversations", tenant, conversation_id) or ("presence", tenant, agent_id)."""


def _add_extra(
    cells: Cells, counters: dict[str, int], extra: dict[str, Any], shared: Cells | None = None
) -> None:
    """Fold one record's outside observations and outcome counts (see `_extras`); a
    cell that `cells` shares with `shared` is copied first, `shared` left alone."""
    for raw in extra.get("o", ()):
        obs = Observation.from_list(raw)
        if shared is not None:
            cell_key = (obs.day, obs.hour, obs.dims, obs.agents)
            cell = cells.get(cell_key)
            if cell is not None and cell is shared.get(cell_key):
                cells[cell_key] = _cell_from_state(_cell_to_state(cell))
        _fold_into(cells, obs)
    for name, count in extra.get("c", {}).items():
        counters[name] = counters.get(name, 0) + count


def _fold_into(cells: Cells, obs: Observation) -> None:
    cell_key = (obs.day, obs.hour, obs.dims, obs.agents)
    cell = cells.get(cell_key)
    if cell is None:
        cell = cells[cell_key] = {}
    _fold(cell, obs)
    if not cell:
        del cells[cell_key]


def _dumps(value: Any) -> bytes:
    """`orjson.dumps`, copied into bytes of their own length.

    orjson leaves its output buffer over-allocated (4 KB for a 200-byte message, 32 KB
    for a 2 KB record). The worker keeps a batch's messages until the broker
    acknowledged them and a table record until the next write: kept as orjson returns
    them, 200 000 messages took 6.8 us each, copied 1.3 us (the copy included); the
    table held 5.4 KB of slack per open conversation (`bench/memory_breakdown.py`).
    """
    return memoryview(orjson.dumps(value)).tobytes()


def partition_key(topic: str, number: int) -> bytes:
    """Table key of a partition's record (never a conversation key: it starts with NUL)."""
    return PARTITION_KEY_PREFIX + f"{topic}:{number}".encode()


def _key(key: tuple[str, str]) -> bytes:
    return f"{key[0]}\x1f{key[1]}".encode()


def _unkey(raw: bytes) -> tuple[str, str]:
    tenant, _, rest = raw.decode().partition("\x1f")
    return (tenant, rest)


def _cells_to_state(cells: Cells) -> list[Any]:
    return [
        [day, hour, list(dims), list(agents), _cell_to_state(cell)]
        for (day, hour, dims, agents), cell in cells.items()
    ]


def _cells_from_state(items: Iterable[Any]) -> Cells:
    return {
        (day, hour, tuple(dims), tuple(agents)): _cell_from_state(cell)
        for day, hour, dims, agents, cell in items
    }


def _observation_message(obs: Observation) -> TopicMessage:
    """One `livemetrics.observations` message (SPEC §3 "Downstream topics"), key = tenant.

    On the worker's hot path (about 4 per input event): the dimensions object is
    built once per distinct dims tuple and the timestamp once per event time.
    """
    dims = obs.dims
    tenant = dims[0]
    message = {
        "metric": obs.metric,
        "value": obs.value,
        "ts": _message_ts(obs.ts_us) if obs.ts_us else None,
        "tenant": tenant,
        "dimensions": _message_dimensions(dims),
        "agents": obs.agents,
        "conversation_id": dims[_CONVERSATION],
        "event_id": obs.event_id,
        "retraction": obs.sign < 0,
        "day": obs.day,
        "hour": obs.hour,
    }
    key = tenant.encode() if tenant else None
    return TopicMessage(OBSERVATIONS, key, _dumps(message))


@lru_cache(maxsize=4096)
def _message_dimensions(dims: tuple[str | None, ...]) -> dict[str, str | None]:
    """The dimensions a message lists (shared, read-only: orjson only reads it)."""
    return {name: dims[index] for index, name in _MESSAGE_DIMS if dims[index] is not None}


_message_ts = lru_cache(maxsize=256)(format_ts)


_MESSAGE_DIMS: tuple[tuple[int, str], ...] = tuple(
    (i, name) for i, name in enumerate(DIM_FIELDS) if name not in ("tenant", "conversation")
)
"""The dimensions a message lists under `dimensions` (tenant and conversation are fields)."""


def _sla_message(event: SlaEvent) -> TopicMessage:
    value = {
        "kind": event.kind,
        "sla_kind": event.sla_kind,
        "tenant": event.tenant,
        "conversation_id": event.conversation_id,
        "channel": event.channel,
        "turn": event.turn,
        "started_at": format_ts(event.started_us),
        "deadline": None if event.deadline_us >= NEVER_US else format_ts(event.deadline_us),
        "detected_at": format_ts(event.detected_us),
        "team": event.team,
        "agent": event.agent,
    }
    return TopicMessage(SLA, event.tenant.encode(), _dumps(value))


__all__ = ["Distribution", "Flush", "LiveProcessor", "StateRecord", "TopicMessage"]
