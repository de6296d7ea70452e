"""The Faust adapter: topics and tables in, `LiveProcessor` in the middle, sinks out.

Topology (declared here, computed in `processor.py`):

    chat.events        --(key conversation_id)--> InputReader --+
    chat.agent-status  --(key agent_id)---------> (aiokafka)   --+--> LiveProcessor
                                                                  |
      table `conversations` (changelog): engine state + cells + source offset per
        conversation; per input partition its applied offset and the cells without
        a conversation, written last in each batch
      table `presence`      (changelog): agent presence and recent event ids; the
        status partitions' applied offsets
                                                                  |
      Redis (absolute cells, attributes, clock) <- 1. written first (an outbox keeps
        them while Redis is away)
      livemetrics.observations / .sla / chat.events.dlq <- 2. produced in batches;
        `WorkerOutput.flush` waits for the broker's acknowledgement
      changelogs stamped with the applied offsets <- 3. produced by Faust; the tick
        flushes Faust's producer before it commits the applied offsets (4.), so a
        committed offset is always covered by durable state. The commit is for
        Kafka's lag tools: input is read from the state's applied offsets.

Input records do not go through Faust's per-message path: Faust runs the group
and recovers the tables, and `InputReader` (stream/input_reader.py) reads each
owned partition from the state's applied offset + 1 once its tables are
recovered. A changelog recovered short after kill -9 therefore reads those
records again (skipped per conversation where the state has them), and a
reassignment never drops fetched records. Should a record still arrive past
the state's end (a hole), the missing offsets are read straight from the
broker and applied first, in order.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

import faust
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.types import TP
from prometheus_client import CONTENT_TYPE_LATEST
from redis.exceptions import RedisError

from livemetrics.clients import kafka_options, redis_client
from livemetrics.config import Config, load_config
from livemetrics.events import format_ts
from livemetrics.kafka_admin import replication_configs, replication_factor
from livemetrics.security import faust_broker_credentials, web_ssl_context
from livemetrics.sinks.prometheus import PrometheusSink
from livemetrics.sinks.redis_outbox import RedisOutbox
from livemetrics.sinks.redis_store import ConversationSnapshot, PartitionSnapshot, RedisStore
from livemetrics.stream.input_check import AppliedRecord, BrokerLostInput, InputCheck
from livemetrics.stream.input_reader import InputReader
from livemetrics.stream.output import WorkerOutput
from livemetrics.stream.processor import (
    EVENTS,
    STATUS,
    Flush,
    LiveProcessor,
    PartitionState,
    partition_key,
)
from livemetrics.stream.recovery_guard import RecoveryGuard
from livemetrics.stream.settings import WorkerSettings
from livemetrics.topics import load_manifest
from livemetrics.web.api import register_web

log = logging.getLogger("livemetrics.worker")
LIVE = "livemetrics.live"
REFILL_TIMEOUT = 60.0
IDLE_SECONDS = 0.05  # the input loop's pause while a rebalance is in progress
MAX_POLL_INTERVAL_SECONDS = 7 * 24 * 3600.0  # see create_app
RECOVERY_CHECK_SECONDS = 5.0
REDIS_TIMEOUT = 5.0  # a blackholed Redis must not hold a batch longer than this

TABLES = ("conversations", "presence")
# The cyclic collector's default first threshold (700 allocations) ran it about 400
# times per 40k events and took 12-14 % of the processor's time; the worker's garbage
# is freed by reference counting, cycles are rare. At 50 000: 3-4 % (bench/README.md).
GC_THRESHOLDS = (50_000, 20, 10)


class Pipeline:
    """Owns the processor, the sinks and the table writes; one lock keeps batches whole."""

    def __init__(self, app: faust.App, settings: WorkerSettings, config: Config) -> None:
        self.app = app
        self.settings = settings
        self.config = config
        self.metrics = PrometheusSink(
            config, None, lag=self.lag, owned=self.owned, redis=self.redis_health
        )
        self.processor = LiveProcessor(config, on_observation=self.metrics.observe)
        self.metrics.state = self.processor
        self.lock = asyncio.Lock()
        self.tables: dict[str, Any] = {}
        self.active: set[tuple[str, int]] = set()
        # True from the end of a rebalance's table recovery until the next revoke: only
        # then do the assignor's partitions and the recovered tables belong together
        # (Faust's `recovery.completed` stays set after the first recovery)
        self.settled = False
        # input partitions of the current assignment (Faust's signals); a batch fetched
        # before a revoke may still hold records of partitions another worker now owns
        self.assigned: set[tuple[str, int]] = set()
        self.redis: RedisStore | None = None
        self.outbox: RedisOutbox | None = None
        self.last_event_wall = 0.0
        self.last_event_ts_us = 0
        self.live = False
        self.gauges_written: dict[int, set[str]] = {}
        self.last_gauges = 0.0
        self.input_check = InputCheck(settings.bootstrap, kafka_options())
        self.reader = InputReader(settings.bootstrap, kafka_options())
        # set whenever the reader's positions may no longer follow the state (a
        # rebalance, records fetched across one): the next read seeks them again
        self.reader_stale = True
        self.committed: dict[tuple[str, int], int] = {}  # what this worker committed
        manifest = load_manifest()
        self.output = WorkerOutput(
            settings.bootstrap,
            kafka_options(),
            {name: spec.partitions for name, spec in manifest.items()},
        )
        self.last_input_check = time.monotonic()

    # -- input ------------------------------------------------------------------

    async def run_input(self) -> None:
        """Read the owned input partitions and process them, batch by batch, forever."""
        reader = self.reader
        await reader.start()
        try:
            while True:
                if not self.settled or self.app.rebalancing:
                    self.reader_stale = True
                    await asyncio.sleep(IDLE_SECONDS)
                    continue
                async with self.lock:
                    await self._activate_assigned()
                    if self.reader_stale or reader.positions.keys() != self.active:
                        reader.assign(self._positions())
                        self.reader_stale = False
                records = await reader.read(
                    int(self.settings.batch_within * 1000), self.settings.batch_size
                )
                if not records:
                    continue
                if self.reader_stale or not self.settled or self.app.rebalancing:
                    continue  # fetched across a rebalance: read again from the state
                await self.process(records)
        finally:
            await reader.stop()

    def _positions(self) -> dict[tuple[str, int], int]:
        processor = self.processor
        return {
            (topic, partition): processor.partition(topic, partition).applied_offset + 1
            for topic, partition in self.active
        }

    # -- batches ----------------------------------------------------------------

    async def process(self, records: Sequence[Any]) -> None:
        """Apply a batch of input records (anything with topic, partition, offset and
        value: aiokafka's records, Faust's messages) and flush what it changed."""
        started = time.perf_counter()
        async with self.lock:
            processor = self.processor
            apply = processor.apply
            assigned = self.assigned
            # per partition of the batch: its state, or None when another worker owns it
            # now (a batch fetched before a revoke); looked up once per partition
            states: dict[tuple[str, int], PartitionState | None] = {}
            not_owned = 0
            for record in records:
                topic, partition, offset = record.topic, record.partition, record.offset
                key = (topic, partition)
                if key in states:
                    state = states[key]
                elif key in assigned and self.settled and not self.app.rebalancing:
                    # (only once its tables are recovered; otherwise the reader reads
                    # the records again after the rebalance)
                    await self._activate(topic, partition)
                    state = states[key] = processor.partition(topic, partition)
                else:
                    state = states[key] = None
                if state is None:
                    not_owned += 1
                    continue
                if offset > state.applied_offset + 1:
                    # Checked per record: the reader starts at the state's position,
                    # but a batch fetched before a reassignment, or Faust delivering
                    # after all, may start past it or leave a hole inside
                    await self._refill(topic, partition, state.applied_offset + 1, offset)
                apply(topic, partition, offset, record.value or b"")
            if not_owned:
                log.warning("%d records of partitions no longer owned left alone", not_owned)
            self._note_clock()
            await self._flush()
        self.metrics.observe_batch(time.perf_counter() - started)

    def lag(self) -> dict[tuple[str, int], int]:
        """Records behind the partition end, per owned input partition."""
        out = {}
        for topic, partition in self.active:
            highwater = self.reader.highwater(topic, partition)
            if highwater is None:  # no fetch yet for this partition
                continue
            applied = self.processor.partition(topic, partition).applied_offset
            out[(topic, partition)] = max(0, highwater - applied - 1)
        return out

    def owned(self) -> dict[str, int]:
        counts = {EVENTS: 0, STATUS: 0}
        for topic, _ in self.active:
            counts[topic] = counts.get(topic, 0) + 1
        return counts

    def redis_health(self) -> dict[str, float]:
        outbox = self.outbox
        if outbox is None:
            return {}
        return {
            "up": 1.0 if outbox.healthy else 0.0,
            "pending": float(outbox.pending),
            "failures": float(outbox.failures),
            "discarded": float(outbox.discarded),
        }

    def attach_redis(self, store: RedisStore) -> None:
        self.redis = store
        self.outbox = RedisOutbox(store)

    async def tick(self) -> None:
        """Advance the clock (global max, or the wall clock for live traffic); flush."""
        async with self.lock:
            await self._activate_assigned()
            try:
                if self.redis is not None:
                    self.processor.advance(await self.redis.clock_us())
            except RedisError as exc:  # Redis away: keep running, the next tick tries again
                log.error("Redis unreachable (%s); retrying", exc)
                return
            if self.live and self._caught_up():
                elapsed = time.time() - self.last_event_wall
                self.processor.advance(self.last_event_ts_us + int(elapsed * 1_000_000))
            await self._flush()
            if time.monotonic() - self.last_gauges >= self.settings.gauges_seconds:
                self.last_gauges = time.monotonic()
                await self._publish_gauges()
            applied = self._applied_records()
            to_commit = self._offsets_to_commit()
        await self._commit(to_commit)
        # outside the lock: records at applied offsets never change on a healthy broker
        if time.monotonic() - self.last_input_check >= self.settings.input_check_seconds:
            self.last_input_check = time.monotonic()
            try:
                await self.input_check.verify(applied)
            except BrokerLostInput as exc:
                log.critical("%s", exc)
                raise

    def _offsets_to_commit(self) -> dict[tuple[str, int], int]:
        offsets = {}
        for key in self.active:
            offset = self.processor.partition(*key).applied_offset + 1
            if offset > 0 and self.committed.get(key) != offset:
                offsets[key] = offset
        return offsets

    async def _commit(self, offsets: dict[tuple[str, int], int]) -> None:
        """Commit applied offsets to the group, for Kafka's lag tools (the reader's
        position is the state's): once Faust's producer has flushed the changelog
        records that carry them, so a committed offset is always durable state."""
        if not offsets or not self.settled or self.app.rebalancing:
            return  # a commit while the group rebalances is refused and forces a rejoin
        try:
            await self.app.producer.flush()
            # the flush awaited: a rebalance may have begun or given partitions away, and
            # Faust's `_commit` crashes the worker on an empty commit (aiokafka refuses it)
            consumer = self.app.consumer
            assignment = consumer.assignment()
            tps = {TP(topic, partition): offset for (topic, partition), offset in offsets.items()}
            tps = {tp: offset for tp, offset in tps.items() if tp in assignment}
            if not tps or not self.settled or self.app.rebalancing:
                return
            done = await consumer._commit(tps)  # type: ignore[attr-defined]
        except Exception as exc:  # a broker away: the next tick tries again
            log.warning("input offsets not committed (%s); retrying", exc)
            return
        if done:
            self.committed.update(offsets)

    def _applied_records(self) -> list[AppliedRecord]:
        out = []
        for topic, partition in sorted(self.active):
            state = self.processor.partition(topic, partition)
            out.append(AppliedRecord(topic, partition, state.applied_offset, state.applied_crc))
        return out

    async def _publish_gauges(self) -> None:
        """Gauge snapshots of the owned partitions to Redis and `livemetrics.live`."""
        owned = {p if t == EVENTS else 1000 + p for t, p in self.active}
        snapshots = self.processor.gauges_by_partition()
        clock_us = self.processor.engine.clock_us
        ts = format_ts(clock_us) if clock_us else None
        redis_ok = self.outbox is None or self.outbox.healthy
        for number in owned:
            tenants = snapshots.get(number, {})
            stale = self.gauges_written.get(number, set()) - tenants.keys()
            for tenant in stale:
                tenants[tenant] = {}
            written = redis_ok
            for tenant, gauges in tenants.items():
                if written and self.redis is not None:
                    try:
                        await self.redis.write_gauges(tenant, gauges, clock_us, number)
                    except (RedisError, OSError) as exc:  # rewritten at the next snapshot
                        log.warning("live gauges not written to Redis (%s)", exc)
                        written = redis_ok = False
                if ts is not None:
                    value = {"tenant": tenant, "ts": ts, "partition": number, "gauges": gauges}
                    self.output.add(LIVE, tenant.encode(), orjson.dumps(value))
            nonempty = {t for t, g in tenants.items() if g}
            # after a failed write, remember every tenant so the next round clears stale ones
            self.gauges_written[number] = nonempty if written else set(tenants)
        await self.output.flush()

    def _note_clock(self) -> None:
        clock = self.processor.engine.clock_us
        if clock != self.last_event_ts_us:
            self.last_event_ts_us = clock
            self.last_event_wall = time.time()
            lag_us = abs(time.time() * 1_000_000 - clock)
            self.live = lag_us < self.settings.live_window_seconds * 1_000_000

    def _caught_up(self) -> bool:
        return time.time() - self.last_event_wall > self.settings.batch_within * 2

    async def _flush(self) -> None:
        flush = self.processor.flush()
        if flush.empty:
            if self.outbox is not None and self.outbox.pending:
                await self.outbox.send()
            return
        if self.outbox is not None:
            self.outbox.add(
                [
                    ConversationSnapshot(
                        c.tenant, c.conversation_id, c.cells, c.attributes, c.source_offset
                    )
                    for c in flush.conversations
                ],
                [
                    PartitionSnapshot(p.partition, p.cells, p.applied_offset, p.counters)
                    for p in flush.partitions
                ],
                flush.clock_us,
            )
            await self.outbox.send()  # refused: kept, retried at a later flush or tick
        output = self.output
        for message in flush.messages:
            output.add(message.topic, message.key, message.value)
        # changelog records first: queued in Faust's producer with no await in between,
        # as before the metric topics were batched (the fault tests failed otherwise)
        self._write_tables(flush)
        await output.flush()  # acknowledged before the batch's input offsets are committed

    def _write_tables(self, flush: Flush) -> None:
        """Update the tables; their changelog records go through Faust's producer.

        Few per event (about 0.1-0.3), and Faust's table recovery expects its own
        writes: with changelog records in large hand-made batches, recovery on the
        embedded broker ended a whole batch short and the fault tests failed.
        """
        for record in flush.records:
            table = self.tables[record.table]
            if record.value is None:
                table.data.pop(record.key, None)
            else:
                table.data[record.key] = record.value
            table.send_changelog(record.partition, record.key, record.value)

    # -- partitions ---------------------------------------------------------------

    async def _activate_assigned(self) -> None:
        """Activate owned partitions that had no input yet (their gauges and timers)."""
        if not self.settled or self.app.rebalancing:
            return
        for topic, partition in sorted(self.assigned - self.active):
            await self._activate(topic, partition)

    async def _activate(self, topic: str, partition: int) -> None:
        """Load a newly owned partition's state from its recovered tables."""
        key = (topic, partition)
        if key in self.active:
            return
        self.active.add(key)
        processor = self.processor
        table = "conversations" if topic == EVENTS else "presence"
        part_key = partition_key(topic, partition)
        stored = self.tables[table].data.get(part_key)
        if stored is not None:
            processor.restore(table, part_key, stored)
        for k, v in list(self.tables[table].data.items()):
            if processor.record_partition(table, k, v) == partition:
                processor.restore(table, k, v)
        ahead = processor.reconcile(topic, partition)
        if ahead:
            log.warning(
                "%s:%s: %d records were ahead of the partition record (a crash between "
                "them); their outside counts are added back",
                topic,
                partition,
                ahead,
            )
        applied = processor.partition(topic, partition).applied_offset
        # the clock (set by this worker's other partitions) may be past deadlines the
        # previous owner's clock never reached: fire them now, as replay did
        processor.fire_due()
        log.info("partition %s:%s active, applied offset %s", topic, partition, applied)

    async def _refill(self, topic: str, partition: int, start: int, stop: int) -> None:
        """Apply offsets [start, stop) read directly from the broker (lost state records)."""
        log.warning(
            "refilling %s:%s offsets %s..%s missing from state", topic, partition, start, stop - 1
        )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            **kafka_options(),
        )
        tp = TopicPartition(topic, partition)
        deadline = time.monotonic() + REFILL_TIMEOUT
        await consumer.start()
        try:
            consumer.assign([tp])
            consumer.seek(tp, max(start, 0))
            while await consumer.position(tp) < stop:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"refill of {topic}:{partition} [{start}, {stop}) did not reach {stop} "
                        f"in {REFILL_TIMEOUT}s; refusing to skip input"
                    )
                batch = await consumer.getmany(tp, timeout_ms=1000, max_records=1000)
                for record in batch.get(tp, []):
                    if record.offset >= stop:
                        return
                    self.processor.apply(topic, partition, record.offset, record.value or b"")
        finally:
            await consumer.stop()

    async def release(self, revoked: Iterable[Any]) -> None:
        # Faust keeps the offsets earlier recoveries read; with Tansu's short ListOffsets
        # answer they can exceed the next highwater and crash recovery (ConsistencyError).
        # Our own applied offsets and the gap refill make them unnecessary.
        self.app.tables.recovery.active_offsets.clear()  # type: ignore[attr-defined]
        self.settled = False
        self.reader_stale = True
        revoked = list(revoked)
        self.assigned -= {(tp.topic, tp.partition) for tp in revoked}
        async with self.lock:
            await self._flush()
            outbox = self.outbox
            if outbox is not None and outbox.pending and not await outbox.send(force=True):
                # a newer owner may write newer snapshots, which a late retry must not undo
                outbox.discard(
                    [tp.partition if tp.topic == EVENTS else 1000 + tp.partition for tp in revoked]
                )
            for tp in revoked:
                key = (tp.topic, tp.partition)
                self.committed.pop(key, None)
                if key in self.active:
                    self.active.discard(key)
                    if tp.topic == EVENTS:
                        self.processor.release(tp.partition)
                    else:
                        self.processor.release_presence(tp.partition)


def create_app(settings: WorkerSettings, loglevel: str = "warning") -> faust.App:
    """The Faust app with its topics, tables, agents and timer."""
    config = load_config(settings.config_path) if settings.config_path else Config()
    manifest = load_manifest()
    # LIVEMETRICS_KAFKA_* / _REDIS_* / _WEB_SSL_* (livemetrics.security): refused here,
    # with one line, when they cannot work together
    credentials = faust_broker_credentials(os.environ)
    ssl_context = web_ssl_context(os.environ)
    redis = redis_client(
        settings.redis_url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
    )
    replication = replication_factor()
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.bootstrap}",
        store="memory://",
        datadir=settings.data_dir,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_ssl_context=ssl_context,
        broker_credentials=credentials,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=1.0,
        broker_commit_interval=1.0,
        # Faust's own consumer fetches no input (InputReader does) and, once the tables
        # are recovered, nothing at all: aiokafka counts that as idle and leaves the
        # group after max_poll_interval (Faust's default 1000 s), never to rejoin
        broker_max_poll_interval=MAX_POLL_INTERVAL_SECONDS,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        table_standby_replicas=0,
        topic_replication_factor=replication,
        topic_allow_declare=True,
        topic_disable_leader=True,
        stream_wait_empty=False,
    )
    pipeline = Pipeline(app, settings, config)
    pipeline.attach_redis(RedisStore(redis))

    def raw_topic(name: str) -> Any:
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=manifest[name].partitions,
        )

    events = raw_topic(EVENTS)
    status = raw_topic(STATUS)
    for name in ("livemetrics.observations", "livemetrics.sla", LIVE, "chat.events.dlq"):
        raw_topic(name)  # declared, so Faust creates them; WorkerOutput produces to them
    for name, source in (("conversations", EVENTS), ("presence", STATUS)):
        pipeline.tables[name] = app.Table(
            name,
            key_type=bytes,
            value_type=bytes,
            partitions=manifest[source].partitions,
            extra_topic_configs=replication_configs(replication),
        )

    # The agents subscribe the group to the input topics (so Faust assigns them with
    # their tables), but Faust delivers nothing to them: `InputReader` reads the input.
    # Should Faust deliver after all, the records go the same way (offsets already
    # applied are skipped).
    @app.agent(events)
    async def process_events(stream: Any) -> None:
        async for batch in stream.take_events(settings.batch_size, within=settings.batch_within):
            await pipeline.process([event.message for event in batch])

    @app.agent(status)
    async def process_status(stream: Any) -> None:
        async for batch in stream.take_events(settings.batch_size, within=settings.batch_within):
            await pipeline.process([event.message for event in batch])

    @app.task
    async def read_input() -> None:
        await pipeline.run_input()

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        token = settings.api_token
        if token and request.headers.get("Authorization") != f"Bearer {token}":
            return web.text("unauthorized\n", status=401)
        body = pipeline.metrics.exposition().decode()
        return web.text(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.timer(settings.tick_seconds)
    async def tick() -> None:
        await pipeline.tick()

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(app: faust.App, assigned: Any, **kwargs: Any) -> None:
        keep_input_from_faust(app.consumer, {EVENTS, STATUS})
        pipeline.settled = False  # a late signal of the previous recovery set it
        pipeline.assigned = {
            (tp.topic, tp.partition) for tp in assigned if tp.topic in (EVENTS, STATUS)
        }

    @app.on_rebalance_complete.connect  # type: ignore[arg-type]
    async def on_settled(app: faust.App, **kwargs: Any) -> None:
        pipeline.settled = True

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(app: faust.App, revoked: Any, **kwargs: Any) -> None:
        await pipeline.release(revoked)

    @app.task
    async def keep_log_level() -> None:
        # Faust's worker leaves DEBUG on for its own loggers (a spinner handler): each
        # produced message then builds a log record, about 6 % of a busy worker's time
        level = logging.getLevelName(loglevel.upper())
        for name in ("", "faust", "mode", "aiokafka"):
            logging.getLogger(name).setLevel(level)

    guard = RecoveryGuard(app.tables.recovery, lambda: app.consumer)  # type: ignore[attr-defined]

    @app.task
    async def guard_recovery() -> None:
        # Faust's recovery can wait forever for records it fetched and dropped at a
        # rebalance (stream/recovery_guard.py): fetch them again
        while True:
            await asyncio.sleep(RECOVERY_CHECK_SECONDS)
            try:
                await guard.check()
            except Exception as exc:  # never let the guard take the worker down
                log.warning("recovery guard check failed: %s", exc)

    register_web(app, pipeline)
    app.livemetrics_pipeline = pipeline  # type: ignore[attr-defined]
    return app


def keep_input_from_faust(consumer: Any, topics: set[str]) -> None:
    """Faust's consumer never fetches the input topics for delivery: it pauses every
    partition at a rebalance and resumes the non-changelog ones once the tables are
    recovered; the input ones stay paused (InputReader reads them)."""
    if getattr(consumer, "livemetrics_input_kept", False):
        return
    resume = consumer.resume_partitions

    def resume_partitions(tps: Iterable[Any]) -> None:
        resume({tp for tp in tps if tp.topic not in topics})

    # Faust's livelock detector would log an error every 2.5 s per input partition
    # that its own consumer stopped fetching (after `stream_processing_timeout`);
    # the input's liveness is the worker's (`livemetrics_consumer_lag`, status)
    verify = consumer.verify_event_path

    def verify_event_path(now: float, tp: Any) -> None:
        if tp.topic not in topics:
            verify(now, tp)

    consumer.resume_partitions = resume_partitions
    consumer.verify_event_path = verify_event_path
    consumer.livemetrics_input_kept = True


def run_worker(settings: WorkerSettings, loglevel: str = "warning") -> int:
    """Run until SIGTERM / Ctrl-C."""
    gc.set_threshold(*GC_THRESHOLDS)
    app = create_app(settings, loglevel)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
    return 0
