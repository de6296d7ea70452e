"""The live aggregate store in Redis: absolute snapshots in, the SPEC §5 report out.

The worker writes the *absolute* current cells of every conversation and
partition a batch changed, never increments, so a redelivered or replayed
batch writes the same values again and nothing counts twice. `live_report`
reads back what a query needs and calls the same `build_report` as `replay`,
so live == replay for the same events.

    >>> store = RedisStore(redis.asyncio.Redis(port=6379))      # doctest: +SKIP
    >>> await store.write(conversations, partitions, clock_us)   # doctest: +SKIP
    >>> await live_report(client, config, ReportQuery.parse(by="agent"))  # doctest: +SKIP

Keys (`lm` is the prefix; `{t}` is the tenant id, percent-encoded, as a Redis
Cluster hash tag, so everything of one tenant lives in one slot). Key names
hold only tenant ids, dates and partition numbers; conversation and customer
ids appear only as hash fields, set members and inside values.

=========================  ======  ==============================================
key                        type    content
=========================  ======  ==============================================
``lm:{t}:c``               hash    conversation id -> conversation blob (below)
``lm:{t}:d:<YYYY-MM-DD>``  set     conversation ids with cells on that local day
                                   (a superset: entries may be stale, never missing)
``lm:{t}:days``            set     local days that have an ``lm:{t}:d:`` set
``lm:{t}:g``               hash    live gauge -> value, plus ``ts_us`` (absolute)
``lm:tenants``             set     tenant ids written so far
``lm:clock``               string  engine clock in µs; only moves forward (Lua max)
``lm:po``                  hash    partition -> last applied input offset (Lua max)
``lm:pc``                  hash    partition -> orjson counters (absolute)
``lm:m:<partition>``       hash    orjson ``[tenant, day]`` -> misc cells blob
                                   of that partition (absolute: rewritten whole)
=========================  ======  ==============================================

Blobs are compact orjson arrays (format version first):

- conversation: ``[1, partition, offset, attributes, D, A, H, V, C]``;
- misc group: ``[1, D, A, H, V, C]``.

``attributes`` is the SPEC §3 attributes as a list in `CONVERSATION_ATTRIBUTES`
order, trailing nulls dropped (a plain object if its keys differ, null if
none). The cell tables: ``D`` distinct dimension tuples without the fields the
blob already implies (tenant; conversation too in a conversation blob), the
first one whole (trailing nulls dropped), the others as ``[pos, value, ...]``
differences from the first; ``A`` distinct agent tuples (cell index 0 means no
agent, k means ``A[k-1]``); ``H`` local days; ``V`` distinct distribution
values; ``C`` one array per cell ``[time, d, a, metric, value, ...]`` where
``time = day_index * 24 + hour`` (or ``[day, hour]`` for a cell without a day),
``metric`` is a stable integer code (`_METRIC_CODES`; ``"$EUR"`` for
``transaction_amount_EUR``; an uncoded name as itself), and ``value`` is the
counter, or for a distribution an index into ``V`` (one value), a list of
indices (several values), or `Distribution.to_state()` when the sum cannot be
rebuilt from the values bit for bit (after a removal) or in sketch mode.

Atomicity: one `write` is one MULTI/EXEC. It spans tenants and global keys, so
on Redis Cluster it must be split per tenant slot (each part stays atomic and
absolute, hence still idempotent).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any
from urllib.parse import quote

import orjson
from redis.asyncio import Redis

from livemetrics.aggregate.distribution import Distribution
from livemetrics.aggregate.query import ReportQuery, range_dates
from livemetrics.aggregate.report import build_report
from livemetrics.aggregate.store import AggregateStore, Cell, CellKey
from livemetrics.config import Config
from livemetrics.engine.outputs import DIM_FIELDS, DIM_INDEX
from livemetrics.metrics import CONVERSATION_ATTRIBUTES, TRANSACTION_PREFIX, is_distribution

FORMAT_VERSION = 1
"""First element of every blob; a reader refuses blobs of another version."""

DayBounds = tuple[str | None, str | None]
"""Inclusive local-date bounds (ISO strings); None on a side means open."""

Attributes = dict[tuple[str, str], dict[str, Any]]

_TENANT = DIM_INDEX["tenant"]
_CONVERSATION = DIM_INDEX["conversation"]
_CUSTOMER = DIM_INDEX["customer"]
_HOURS = {f"{h:02d}": h for h in range(24)}
_READ_CHUNK = 1000

# Append-only: a stored blob refers to these numbers. A metric missing here is
# stored under its name (still correct, just longer).
_METRIC_NAMES: tuple[str, ...] = (
    "conversations_started",
    "conversations_resolved",
    "conversations_reopened",
    "conversations_closed",
    "customer_messages",
    "agent_messages",
    "bot_messages",
    "customer_responses",
    "agent_responses",
    "follow_on_responses",
    "agent_contacts",
    "agent_contacts_with_response",
    "conversations_attended",
    "transfers_to_agent",
    "transfers_to_group",
    "bot_handoffs",
    "live_sessions",
    "one_sided_sessions",
    "focus_count",
    "tag_count",
    "csat_satisfied",
    "csat_neutral",
    "csat_unsatisfied",
    "conversations_unrated",
    "nps_promoters",
    "nps_passives",
    "nps_detractors",
    "converted_conversations",
    "automated_conversations",
    "unanswered_conversations",
    "sla_breaches",
    "sla_breaches_first_response",
    "sla_breaches_next_response",
    "sla_breaches_resolution",
    "late_events",
    "duplicate_events",
    "invalid_events",
    "first_response_seconds",
    "first_response_business_seconds",
    "agent_first_response_seconds",
    "response_seconds",
    "response_business_seconds",
    "follow_on_response_seconds",
    "first_offline_response_seconds",
    "offline_response_seconds",
    "queue_wait_seconds",
    "resolution_seconds",
    "handle_seconds",
    "focus_seconds",
    "live_session_seconds",
    "csat_score",
    "nps_score",
    "ces_score",
)
_METRIC_CODES: dict[str, int] = {name: code for code, name in enumerate(_METRIC_NAMES)}

# Lua: keep the larger integer, so several writers (and replays) never move it back.
_MAX_STRING = """
local current = redis.call('GET', KEYS[1])
if (not current) or tonumber(ARGV[1]) > tonumber(current) then
  redis.call('SET', KEYS[1], ARGV[1])
  return 1
end
return 0
"""
_MAX_HASH_FIELD = """
local current = redis.call('HGET', KEYS[1], ARGV[1])
if (not current) or tonumber(ARGV[2]) > tonumber(current) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
"""


class StoreFormatError(ValueError):
    """A blob this version cannot read (written by a newer livemetrics, or corrupt)."""


@dataclass(frozen=True, slots=True)
class ConversationSnapshot:
    """Everything one conversation contributes to reports, absolute (replaces the previous)."""

    tenant: str
    conversation_id: str
    cells: Mapping[CellKey, Cell]
    attributes: Mapping[str, Any] | None
    source_offset: tuple[int, int]


@dataclass(frozen=True, slots=True)
class PartitionSnapshot:
    """Cells without a conversation state on one input partition, absolute, plus its progress."""

    partition: int
    cells: Mapping[CellKey, Cell]
    applied_offset: int
    counters: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class StoredConversation:
    """What the store holds of one conversation: its cells (blob and misc), attributes
    (SPEC §3, None if never written) and the input offset its blob includes."""

    tenant: str
    conversation_id: str
    cells: list[tuple[CellKey, Cell]]
    attributes: dict[str, Any] | None
    source_offset: tuple[int, int] | None


@dataclass(frozen=True, slots=True)
class _Keys:
    prefix: str

    def tenant(self, tenant: str, suffix: str) -> str:
        # quote() escapes '{', '}', ':' and '%', so a tenant id cannot break the hash tag.
        return f"{self.prefix}:{{{quote(tenant, safe='')}}}:{suffix}"

    def conversations(self, tenant: str) -> str:
        return self.tenant(tenant, "c")

    def day(self, tenant: str, day: str) -> str:
        return self.tenant(tenant, f"d:{day}")

    def days(self, tenant: str) -> str:
        return self.tenant(tenant, "days")

    def gauges(self, tenant: str) -> str:
        return self.tenant(tenant, "g")

    def misc(self, partition: int) -> str:
        return f"{self.prefix}:m:{partition}"

    @property
    def tenants(self) -> str:
        return f"{self.prefix}:tenants"

    @property
    def clock(self) -> str:
        return f"{self.prefix}:clock"

    @property
    def offsets(self) -> str:
        return f"{self.prefix}:po"

    @property
    def counters(self) -> str:
        return f"{self.prefix}:pc"


class RedisStore:
    """Absolute, idempotent writes of snapshots and the reads a report needs.

    Works with clients created with or without ``decode_responses``.
    """

    def __init__(self, client: Redis, prefix: str = "lm") -> None:
        self.client = client
        self.keys = _Keys(prefix)

    async def write(
        self,
        conversations: Sequence[ConversationSnapshot],
        partitions: Sequence[PartitionSnapshot],
        clock_us: int,
    ) -> None:
        """Write one batch in one MULTI/EXEC; writing it again changes nothing.

        A conversation's blob replaces its previous one (cells retracted since
        are gone); its days are added to the day index (older entries stay, the
        reader tolerates them). A partition's misc cells replace its previous
        ones. The clock and applied offsets only move forward.
        """
        keys = self.keys
        pipe = self.client.pipeline(transaction=True)
        blobs: dict[str, dict[str, bytes]] = {}
        day_members: dict[str, dict[str, list[str]]] = {}
        for snap in conversations:
            blob, days = encode_conversation(snap)
            blobs.setdefault(snap.tenant, {})[snap.conversation_id] = blob
            tenant_days = day_members.setdefault(snap.tenant, {})
            for day in days:
                tenant_days.setdefault(day, []).append(snap.conversation_id)
        for tenant, mapping in blobs.items():
            pipe.hset(keys.conversations(tenant), mapping=mapping)  # type: ignore[arg-type]
            tenant_days = day_members[tenant]
            for day, members in tenant_days.items():
                pipe.sadd(keys.day(tenant, day), *members)
            if tenant_days:
                pipe.sadd(keys.days(tenant), *tenant_days)
        if blobs:
            pipe.sadd(keys.tenants, *blobs)
        for part in partitions:
            misc_key = keys.misc(part.partition)
            pipe.delete(misc_key)
            groups = encode_misc(part.cells)
            if groups:
                pipe.hset(misc_key, mapping=groups)  # type: ignore[arg-type]
            pipe.hset(keys.counters, str(part.partition), orjson.dumps(dict(part.counters)))
            pipe.eval(_MAX_HASH_FIELD, 1, keys.offsets, str(part.partition), part.applied_offset)
        pipe.eval(_MAX_STRING, 1, keys.clock, clock_us)
        await pipe.execute()

    async def clock_us(self) -> int:
        """The largest clock any writer sent (the live "now", D50); 0 before any write."""
        value = await self.client.get(self.keys.clock)
        return 0 if value is None else int(value)

    async def read_cells(
        self,
        tenants: Collection[str | None] | None = None,
        day_bounds: Callable[[str | None], DayBounds] | None = None,
    ) -> tuple[list[tuple[CellKey, Cell]], Attributes]:
        """Cells and attributes a report over `tenants` and `day_bounds` needs.

        ``tenants=None`` reads every tenant (``None`` in the collection stands
        for cells without a tenant: invalid events). ``day_bounds=None`` reads
        everything, day-less cells included; otherwise it gives each tenant's
        inclusive local-date bounds and only conversations indexed on those days
        are read. The result is a superset (whole conversations, misc groups):
        `build_report` does the exact filtering.
        """
        found = await self._read(tenants, day_bounds)
        cells = list(found.cells())
        return cells, found.attributes

    async def _read(
        self,
        tenants: Collection[str | None] | None,
        day_bounds: Callable[[str | None], DayBounds] | None,
    ) -> _ReadResult:
        """Misc cells decoded, conversation blobs still compact (decoded on iteration)."""
        misc = await self._misc_cells(tenants, day_bounds)
        attributes = await self._misc_attributes(misc)
        blobs: list[tuple[str, str, bytes | str]] = []
        for tenant in await self._tenants(tenants):
            if tenant is None:
                continue
            bounds = None if day_bounds is None else day_bounds(tenant)
            for conversation_id, blob in await self._conversation_blobs(tenant, bounds):
                blobs.append((tenant, conversation_id, blob))
        return _ReadResult(misc, blobs, attributes)

    async def partition_status(self) -> dict[int, dict[str, int]]:
        """Per partition: ``applied_offset`` and the worker's counters (`livemetrics status`)."""
        offsets = await self.client.hgetall(self.keys.offsets)
        counters = await self.client.hgetall(self.keys.counters)
        status: dict[int, dict[str, int]] = {}
        for field, value in offsets.items():
            status.setdefault(int(field), {})["applied_offset"] = int(value)
        for field, value in counters.items():
            status.setdefault(int(field), {}).update(orjson.loads(value))
        return dict(sorted(status.items()))

    async def write_gauges(
        self, tenant: str, gauges: Mapping[str, float], ts_us: int, partition: int = 0
    ) -> None:
        """Replace one input partition's live gauges of a tenant (SPEC §3), taken at `ts_us`.

        Each worker writes the partitions it owns; readers combine partitions.
        """
        key = f"{self.keys.gauges(tenant)}:{partition}"
        mapping: dict[str, str] = {name: repr(float(value)) for name, value in gauges.items()}
        mapping["ts_us"] = str(ts_us)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(key)
        pipe.hset(key, mapping=mapping)  # type: ignore[arg-type]
        pipe.sadd(f"{self.keys.gauges(tenant)}:parts", partition)
        pipe.sadd(self.keys.tenants, tenant)
        await pipe.execute()

    async def read_gauges(self) -> dict[str, dict[str, float]]:
        """tenant -> gauge -> value over all partitions (sum; max for the oldest wait and ts)."""
        tenants = sorted(_text(t) for t in await self.client.smembers(self.keys.tenants))
        result: dict[str, dict[str, float]] = {}
        for tenant in tenants:
            base = self.keys.gauges(tenant)
            parts = sorted(int(p) for p in await self.client.smembers(f"{base}:parts"))
            pipe = self.client.pipeline(transaction=False)
            for part in parts:
                pipe.hgetall(f"{base}:{part}")
            combined: dict[str, float] = {}
            for found in await pipe.execute():
                for raw_name, raw_value in found.items():
                    name, value = _text(raw_name), float(raw_value)
                    if name in ("ts_us", "oldest_waiting_seconds"):
                        combined[name] = max(combined.get(name, 0.0), value)
                    else:
                        combined[name] = combined.get(name, 0.0) + value
            if combined:
                result[tenant] = combined
        return result

    async def read_conversation(
        self, tenant: str, conversation_id: str
    ) -> StoredConversation | None:
        """One conversation's cells and attributes (the HTTP API's conversation view), or
        None when the store has nothing of it.

        Besides its blob, a conversation can own misc cells (late events after its
        state was dropped, D4), so the misc groups of its tenant are read too.
        """
        blob = await self.client.hget(self.keys.conversations(tenant), conversation_id)
        cells: list[tuple[CellKey, Cell]] = []
        attributes: dict[str, Any] | None = None
        source: tuple[int, int] | None = None
        if blob is not None:
            cells, attributes, source = decode_conversation(tenant, conversation_id, blob)
        for key, cell in await self._misc_cells([tenant], None):
            if key[2][_CONVERSATION] == conversation_id:
                cells.append((key, cell))
        if blob is None and not cells:
            return None
        return StoredConversation(tenant, conversation_id, cells, attributes, source)

    async def _tenants(self, tenants: Collection[str | None] | None) -> list[str | None]:
        if tenants is not None:
            return list(tenants)
        known = await self.client.smembers(self.keys.tenants)
        return [None, *sorted(_text(t) for t in known)]

    async def _conversation_blobs(
        self, tenant: str, bounds: DayBounds | None
    ) -> list[tuple[str, bytes | str]]:
        """(id, blob) of all conversations of a tenant (HSCAN), or of those indexed
        on the days within `bounds` (SUNION of the day sets, then HMGET)."""
        key = self.keys.conversations(tenant)
        if bounds is None:
            found: dict[str, bytes | str] = {}
            async for field, value in self.client.hscan_iter(key, count=_READ_CHUNK):
                found[_text(field)] = value  # HSCAN may repeat a field; keep one
            return list(found.items())
        low, high = bounds
        days = [
            day
            for day in map(_text, await self.client.smembers(self.keys.days(tenant)))
            if (low is None or day >= low) and (high is None or day <= high)
        ]
        if not days:
            return []
        members = await self.client.sunion([self.keys.day(tenant, day) for day in days])
        ids = sorted(_text(m) for m in members)
        blobs: list[tuple[str, bytes | str]] = []
        for start in range(0, len(ids), _READ_CHUNK):
            chunk = ids[start : start + _READ_CHUNK]
            found_blobs = await self.client.hmget(key, chunk)
            blobs.extend((c, b) for c, b in zip(chunk, found_blobs, strict=True) if b is not None)
        return blobs

    async def _misc_cells(
        self,
        tenants: Collection[str | None] | None,
        day_bounds: Callable[[str | None], DayBounds] | None,
    ) -> list[tuple[CellKey, Cell]]:
        """Misc cells of every partition (a partition registers in ``po`` on its first write)."""
        wanted = None if tenants is None else set(tenants)
        cells: list[tuple[CellKey, Cell]] = []
        for partition in sorted(int(p) for p in await self.client.hkeys(self.keys.offsets)):
            groups = await self.client.hgetall(self.keys.misc(partition))
            for field, blob in groups.items():
                tenant, day = orjson.loads(field)
                if wanted is not None and tenant not in wanted:
                    continue
                if not _day_within(day, tenant, day_bounds):
                    continue
                cells.extend(decode_misc(tenant, blob))
        return cells

    async def _misc_attributes(self, misc: list[tuple[CellKey, Cell]]) -> Attributes:
        """Attributes of conversations in misc cells (late events after a drop, D4): their
        blob may lie outside the days read, yet `--by conversation` rows show them."""
        wanted: dict[str, set[str]] = {}
        for (_, _, dims, _), _ in misc:
            tenant, conversation = dims[_TENANT], dims[_CONVERSATION]
            if tenant is not None and conversation is not None:
                wanted.setdefault(tenant, set()).add(conversation)
        attributes: Attributes = {}
        for tenant, ids in wanted.items():
            ordered = sorted(ids)
            blobs = await self.client.hmget(self.keys.conversations(tenant), ordered)
            for conversation, blob in zip(ordered, blobs, strict=True):
                if blob is None:
                    continue
                data = orjson.loads(blob)
                _check_version(data)
                found = _decode_attributes(data[3])
                if found is not None:
                    attributes[(tenant, conversation)] = found
        return attributes


@dataclass(slots=True)
class _ReadResult:
    misc: list[tuple[CellKey, Cell]]
    blobs: list[tuple[str, str, bytes | str]]
    attributes: Attributes

    def cells(self) -> Iterator[tuple[CellKey, Cell]]:
        """Every cell, decoding one conversation at a time; fills `attributes` on the way.

        Lazy on purpose: a report over months holds compact blobs, not
        millions of decoded cells. `build_report` reads attributes only after
        it consumed the cells (the equality tests would catch a change).
        """
        yield from self.misc
        attributes = self.attributes
        for tenant, conversation_id, blob in self.blobs:
            cells, found, _ = decode_conversation(tenant, conversation_id, blob)
            if found is not None:
                attributes[(tenant, conversation_id)] = found
            yield from cells


async def live_report(
    client: Redis, config: Config, query: ReportQuery, prefix: str = "lm"
) -> dict[str, Any]:
    """The SPEC §5 report from the live store: exactly what `replay` gives for the same events.

    "now" (for named ranges) is the stored clock; only the tenants a
    ``--where tenant=`` names and the days a range needs are read.
    """
    store = RedisStore(client, prefix)
    now_us = await store.clock_us()
    unbounded = query.range_name in (None, "all") and not (query.date_from or query.date_to)
    day_bounds = None if unbounded else _bounds_function(config, query, now_us)
    found = await store._read(_query_tenants(query), day_bounds)
    return build_report(found.cells(), found.attributes, config, query, now_us)


async def live_reports(
    client: Redis, config: Config, queries: Sequence[ReportQuery], prefix: str = "lm"
) -> tuple[list[dict[str, Any]], int]:
    """Several reports over one read of the store, and the clock they were built at.

    For views that need a few groupings of the same data at once (the wall
    board: by tenant, team and channel): the cells are read and decoded once,
    then each report is `build_report` over them, exactly as `live_report`
    would give it. The queries must agree on range and tenant filter (they
    decide what is read); ValueError otherwise.
    """
    if not queries:
        return [], await RedisStore(client, prefix).clock_us()
    first = queries[0]
    scope = (first.range_name, first.date_from, first.date_to, _query_tenants(first))
    for query in queries[1:]:
        if (query.range_name, query.date_from, query.date_to, _query_tenants(query)) != scope:
            raise ValueError("live_reports needs queries with the same range and tenant filter")
    store = RedisStore(client, prefix)
    now_us = await store.clock_us()
    unbounded = first.range_name in (None, "all") and not (first.date_from or first.date_to)
    day_bounds = None if unbounded else _bounds_function(config, first, now_us)
    found = await store._read(_query_tenants(first), day_bounds)
    cells = list(found.cells())  # fills found.attributes; each report walks the list
    reports = [build_report(cells, found.attributes, config, q, now_us) for q in queries]
    return reports, now_us


def snapshots_from_store(
    store: AggregateStore, partition_of: Callable[[str, str], int]
) -> tuple[list[ConversationSnapshot], list[PartitionSnapshot]]:
    """Split an in-memory store (e.g. from `replay`) into snapshots, for tests and `resync`.

    Cells with a tenant and a conversation go to that conversation (partition
    ``partition_of(tenant, conversation_id)``); the others are misc cells of
    partition ``partition_of(tenant or "", "")``. Offsets are unknown here:
    conversations get ``(partition, -1)``, partitions ``applied_offset=-1`` and
    no counters.
    """
    per_conversation: dict[tuple[str, str], dict[CellKey, Cell]] = {}
    per_partition: dict[int, dict[CellKey, Cell]] = {}
    for key, cell in store.items():
        dims = key[2]
        tenant, conversation = dims[_TENANT], dims[_CONVERSATION]
        if tenant is not None and conversation is not None:
            per_conversation.setdefault((tenant, conversation), {})[key] = cell
        else:
            per_partition.setdefault(partition_of(tenant or "", ""), {})[key] = cell
    for pair in store.attributes:
        per_conversation.setdefault(pair, {})
    conversations = [
        ConversationSnapshot(
            tenant=tenant,
            conversation_id=conversation,
            cells=cells,
            attributes=store.attributes.get((tenant, conversation)),
            source_offset=(partition_of(tenant, conversation), -1),
        )
        for (tenant, conversation), cells in per_conversation.items()
    ]
    partitions = [
        PartitionSnapshot(partition=p, cells=cells, applied_offset=-1, counters={})
        for p, cells in sorted(per_partition.items())
    ]
    return conversations, partitions


# --- encoding ---------------------------------------------------------------


def encode_conversation(snap: ConversationSnapshot) -> tuple[bytes, list[str]]:
    """The conversation blob and the local days it has cells on (for the day index)."""
    fixed = {_TENANT: snap.tenant, _CONVERSATION: snap.conversation_id}
    tables, days = _encode_cells(snap.cells.items(), fixed)
    partition, offset = snap.source_offset
    head = [FORMAT_VERSION, partition, offset, _encode_attributes(snap.attributes)]
    return orjson.dumps(head + tables), days


def decode_conversation(
    tenant: str, conversation_id: str, blob: bytes | str
) -> tuple[list[tuple[CellKey, Cell]], dict[str, Any] | None, tuple[int, int]]:
    """Cells, attributes and source offset of a conversation blob."""
    data = orjson.loads(blob)
    _check_version(data)
    fixed = {_TENANT: tenant, _CONVERSATION: conversation_id}
    cells = _decode_cells(data[4:], fixed)
    return cells, _decode_attributes(data[3]), (data[1], data[2])


def encode_misc(cells: Mapping[CellKey, Cell]) -> dict[bytes, bytes]:
    """Misc cells grouped by (tenant, day): field ``[tenant, day]`` -> blob."""
    groups: dict[tuple[str | None, str | None], list[tuple[CellKey, Cell]]] = {}
    for key, cell in cells.items():
        groups.setdefault((key[2][_TENANT], key[0]), []).append((key, cell))
    encoded: dict[bytes, bytes] = {}
    for (tenant, day), items in groups.items():
        tables, _ = _encode_cells(items, {_TENANT: tenant})
        encoded[orjson.dumps([tenant, day])] = orjson.dumps([FORMAT_VERSION, *tables])
    return encoded


def decode_misc(tenant: str | None, blob: bytes | str) -> list[tuple[CellKey, Cell]]:
    """Cells of one misc group; the tenant comes from its field."""
    data = orjson.loads(blob)
    _check_version(data)
    return _decode_cells(data[1:], {_TENANT: tenant})


def _encode_cells(
    items: Iterable[tuple[CellKey, Cell]], fixed: Mapping[int, str | None]
) -> tuple[list[Any], list[str]]:
    """``[D, A, H, V, C]`` (see the module doc) and the days seen, in first-seen order."""
    free = [i for i in range(len(DIM_FIELDS)) if i not in fixed]
    rest_of = itemgetter(*free)  # C-speed tuple of the fields not implied by the blob
    fixed_of = itemgetter(*fixed)
    expected = tuple(fixed.values())
    fixed_expected = expected[0] if len(expected) == 1 else expected  # itemgetter's shape
    dims_index: dict[tuple[str | None, ...], int] = {}
    dims_rows: list[list[Any]] = []
    base: tuple[str | None, ...] = ()
    agents_index: dict[tuple[str, ...], int] = {(): 0}
    agents_rows: list[list[str]] = []
    day_index: dict[str, int] = {}
    value_index: dict[str, int] = {}
    values: list[float] = []
    out: list[list[Any]] = []

    def value_ref(value: float) -> int:
        token = repr(value)  # 4 and 4.0, 0.0 and -0.0 stay apart
        ref = value_index.get(token)
        if ref is None:
            ref = value_index[token] = len(values)
            values.append(value)
        return ref

    for (day, hour, dims, agents), cell in items:
        if fixed_of(dims) != fixed_expected:
            raise ValueError(f"cell dimensions {dims!r} do not match {dict(fixed)!r}")
        rest = rest_of(dims)
        d = dims_index.get(rest)
        if d is None:
            d = dims_index[rest] = len(dims_rows)
            if d == 0:
                base = rest
                dims_rows.append(_trimmed(rest))
            else:
                dims_rows.append([x for j, v in enumerate(rest) if v != base[j] for x in (j, v)])
        a = agents_index.get(agents)
        if a is None:
            a = agents_index[agents] = len(agents_rows) + 1
            agents_rows.append(list(agents))
        if day is not None and hour in _HOURS:
            di = day_index.get(day)
            if di is None:
                di = day_index[day] = len(day_index)
            when: Any = di * 24 + _HOURS[hour]
        else:
            when = [day, hour]
        row: list[Any] = [when, d, a]
        for metric, value in cell.items():
            code = _METRIC_CODES.get(metric)
            if code is not None:
                row.append(code)
            elif metric.startswith(TRANSACTION_PREFIX):
                row.append("$" + metric[len(TRANSACTION_PREFIX) :])
            else:
                row.append(metric)
            if isinstance(value, Distribution):
                value = _encode_distribution(value, value_ref)
            row.append(value)
        out.append(row)
    days = list(day_index)
    return [dims_rows, agents_rows, days, values, out], days


def _encode_distribution(dist: Distribution, value_ref: Callable[[float], int]) -> Any:
    state = dist.to_state()
    found = state.get("v")
    if found is None:
        return state
    total = 0.0
    for value in found:
        total += value  # the same accumulation as Distribution.add
    stored = state["s"]
    if total != stored or math.copysign(1.0, total) != math.copysign(1.0, stored):
        return state
    if len(found) == 1:
        return value_ref(found[0])
    return [value_ref(v) for v in found]


def _decode_cells(tables: list[Any], fixed: Mapping[int, str | None]) -> list[tuple[CellKey, Cell]]:
    dims_rows, agents_rows, days, values, rows = tables
    free = [i for i in range(len(DIM_FIELDS)) if i not in fixed]
    template: list[str | None] = [None] * len(DIM_FIELDS)
    for pos, value in fixed.items():
        template[pos] = value
    dims_table: list[tuple[str | None, ...]] = []
    base: list[Any] = []
    for k, entry in enumerate(dims_rows):
        if k == 0:
            base = list(entry) + [None] * (len(free) - len(entry))
            rest = base
        else:
            rest = list(base)
            for j in range(0, len(entry), 2):
                rest[entry[j]] = entry[j + 1]
        full = list(template)
        for pos, value in zip(free, rest, strict=True):
            full[pos] = value
        dims_table.append(tuple(full))
    agents_table: list[tuple[str, ...]] = [(), *(tuple(a) for a in agents_rows)]
    cells: list[tuple[CellKey, Cell]] = []
    for row in rows:
        when = row[0]
        if isinstance(when, int):
            day, hour = days[when // 24], f"{when % 24:02d}"
        else:
            day, hour = when
        cell: Cell = {}
        for i in range(3, len(row), 2):
            metric = _metric_name(row[i])
            raw = row[i + 1]
            cell[metric] = _decode_distribution(raw, values) if is_distribution(metric) else raw
        cells.append(((day, hour, dims_table[row[1]], agents_table[row[2]]), cell))
    return cells


def _metric_name(code: int | str) -> str:
    if isinstance(code, int):
        return _METRIC_NAMES[code]
    if code.startswith("$"):
        return TRANSACTION_PREFIX + code[1:]
    return code


def _decode_distribution(raw: Any, values: list[float]) -> Distribution:
    if isinstance(raw, dict):
        return Distribution.from_state(raw)
    found = [values[raw]] if isinstance(raw, int) else [values[i] for i in raw]
    total = 0.0
    for value in found:
        total += value
    return Distribution.from_state({"s": total, "v": found})


def _encode_attributes(attributes: Mapping[str, Any] | None) -> Any:
    if attributes is None:
        return None
    if attributes.keys() != set(CONVERSATION_ATTRIBUTES):
        return dict(attributes)
    return _trimmed(tuple(attributes[name] for name in CONVERSATION_ATTRIBUTES))


def _decode_attributes(raw: Any) -> dict[str, Any] | None:
    if raw is None or isinstance(raw, dict):
        return raw
    padded = list(raw) + [None] * (len(CONVERSATION_ATTRIBUTES) - len(raw))
    return dict(zip(CONVERSATION_ATTRIBUTES, padded, strict=True))


def _trimmed(values: tuple[Any, ...]) -> list[Any]:
    end = len(values)
    while end and values[end - 1] is None:
        end -= 1
    return list(values[:end])


def _check_version(data: Any) -> None:
    if not isinstance(data, list) or not data or data[0] != FORMAT_VERSION:
        version = data[0] if isinstance(data, list) and data else None
        raise StoreFormatError(
            f"stored blob has format {version!r}, this livemetrics reads {FORMAT_VERSION}: "
            "upgrade livemetrics or run `livemetrics resync`"
        )


# --- reading helpers --------------------------------------------------------


def _day_within(
    day: str | None, tenant: str | None, day_bounds: Callable[[str | None], DayBounds] | None
) -> bool:
    if day_bounds is None:
        return True
    if day is None:
        return False
    low, high = day_bounds(tenant)
    return (low is None or day >= low) and (high is None or day <= high)


def _query_tenants(query: ReportQuery) -> list[str | None] | None:
    """The tenants a ``--where tenant=`` allows (``tenant=`` means no tenant); None = all."""
    named = {value for name, value in query.where if name == "tenant"}
    if not named:
        return None
    if len(named) > 1:
        return []
    (value,) = named
    return [None] if value == "" else [value]


def _bounds_function(
    config: Config, query: ReportQuery, now_us: int
) -> Callable[[str | None], DayBounds]:
    """Per-tenant inclusive bounds, as `build_report` computes them (SPEC §7 [51])."""
    fixed: DayBounds = (
        query.date_from.isoformat() if query.date_from else None,
        query.date_to.isoformat() if query.date_to else None,
    )
    range_name = query.range_name
    cache: dict[str | None, DayBounds] = {}

    def bounds(tenant: str | None) -> DayBounds:
        if range_name is None:
            return fixed
        found = cache.get(tenant)
        if found is None:
            today = config.tenant(tenant or "").calendar.local_date(now_us)
            low, high = range_dates(range_name, today)
            found = cache[tenant] = (
                None if low is None else low.isoformat(),
                None if high is None else high.isoformat(),
            )
        return found

    return bounds


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
