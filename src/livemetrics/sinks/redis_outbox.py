"""Snapshots on their way to Redis, kept while Redis is away.

Every snapshot is absolute (it replaces what Redis holds for its key), so the
latest one per conversation and per partition is all that needs to wait: the
outbox coalesces, and its size is bounded by the state the worker owns, not
by how long Redis stays away. The worker keeps consuming, producing topics
and writing its changelogs meanwhile; Redis catches up at the next write that
gets through.

What can still be lost is only what the worker no longer owns: at a
rebalance, snapshots of revoked partitions that Redis refuses are discarded
(a newer owner may write newer ones, which an old retry must not overwrite).
They are counted and logged; `livemetrics resync` rebuilds them from the
changelogs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence

from redis.exceptions import RedisError

from livemetrics.sinks.redis_store import ConversationSnapshot, PartitionSnapshot, RedisStore

log = logging.getLogger("livemetrics.redis")

RETRY_SECONDS = 1.0
LOG_EVERY_SECONDS = 30.0

ConversationId = tuple[str, str]


class RedisOutbox:
    """The latest unwritten snapshot per key, and the health of the writes."""

    def __init__(
        self,
        store: RedisStore,
        *,
        retry_seconds: float = RETRY_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.retry_seconds = retry_seconds
        self.monotonic = monotonic
        self.conversations: dict[ConversationId, ConversationSnapshot] = {}
        self.partitions: dict[int, PartitionSnapshot] = {}
        self.clock_us = 0
        self.failures = 0  # write attempts Redis refused, since start
        self.discarded = 0  # snapshots given up at a rebalance, since start
        self.down_since: float | None = None
        self._next_attempt = 0.0
        self._last_log = 0.0

    @property
    def pending(self) -> int:
        return len(self.conversations) + len(self.partitions)

    @property
    def healthy(self) -> bool:
        return self.down_since is None

    def add(
        self,
        conversations: Iterable[ConversationSnapshot],
        partitions: Iterable[PartitionSnapshot],
        clock_us: int,
    ) -> None:
        for snap in conversations:
            self.conversations[(snap.tenant, snap.conversation_id)] = snap
        for part in partitions:
            self.partitions[part.partition] = part
        self.clock_us = max(self.clock_us, clock_us)

    async def send(self, *, force: bool = False) -> bool:
        """Write everything waiting in one transaction; False when Redis refused it.

        While Redis is down, attempts are spaced by `retry_seconds` (unless
        `force`), so a batch does not wait for a refused connection each time.
        """
        if not self.pending and not self.clock_us:
            return True
        now = self.monotonic()
        if not force and self.down_since is not None and now < self._next_attempt:
            return False
        try:
            await self.store.write(
                list(self.conversations.values()), list(self.partitions.values()), self.clock_us
            )
        except (RedisError, OSError) as exc:
            self._failed(now, exc)
            return False
        if self.down_since is not None:
            log.warning(
                "Redis writes resumed after %.1fs (%d snapshots caught up)",
                now - self.down_since,
                self.pending,
            )
            self.down_since = None
        self.conversations.clear()
        self.partitions.clear()
        self.clock_us = 0
        return True

    def discard(self, input_partitions: Sequence[int]) -> int:
        """Give up the waiting snapshots of partitions this worker no longer owns."""
        numbers = set(input_partitions)
        gone = [k for k, s in self.conversations.items() if s.source_offset[0] in numbers]
        for key in gone:
            del self.conversations[key]
        parts = [n for n in self.partitions if n in numbers]
        for number in parts:
            del self.partitions[number]
        count = len(gone) + len(parts)
        if count:
            self.discarded += count
            log.error(
                "Redis missed %d snapshots of revoked partitions %s; "
                "run `livemetrics resync` once Redis is back",
                count,
                sorted(numbers),
            )
        return count

    def _failed(self, now: float, exc: Exception) -> None:
        self.failures += 1
        self._next_attempt = now + self.retry_seconds
        if self.down_since is None:
            self.down_since = now
            self._last_log = now
            log.error(
                "Redis write failed (%s); keeping %d snapshots, retrying",
                describe_error(exc),
                self.pending,
            )
        elif now - self._last_log >= LOG_EVERY_SECONDS:
            self._last_log = now
            log.error(
                "Redis still unreachable after %.0fs (%s); %d snapshots waiting",
                now - self.down_since,
                describe_error(exc),
                self.pending,
            )


def describe_error(exc: BaseException) -> str:
    """The error without the command it names: redis-py's pipeline errors quote the
    failed command ("Command # 3 (HSET lm:{t}:c <id> <blob>) of pipeline caused error:
    ..."), and a snapshot blob holds customer data, which must not reach a log line."""
    text = str(exc)
    if text.startswith("Command # "):
        _, found, cause = text.partition(" caused error: ")
        text = cause if found else "a pipelined command failed"
    return f"{type(exc).__name__}: {text}"
