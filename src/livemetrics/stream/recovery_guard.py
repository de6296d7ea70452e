"""Faust table recovery that stops making progress: say why, and fetch again.

Seen once in the full suite after three `kill -9`s: a restarted worker's
recovery waited minutes for changelog partitions that sent no record ("No
event received for active tp ... since recovery start"), so the worker never
processed its input. Faust's recovery ends only when every active changelog
partition's offset reaches its highwater, and Faust drops records it already
fetched when a rebalance interrupts a fetch (`Consumer.getmany` stops at a
generation change, and skips partitions not active at that moment) while the
consumer's position has moved past them: nothing is fetched again, and
recovery waits forever. (The same drop leaves holes in the input stream, see
`Pipeline.process`.)

`RecoveryGuard.check` runs every few seconds. An active changelog partition
whose recovery offset has not moved for `stall_seconds` while records remain is
sought back to the record after the last one recovery applied and resumed, with
an error log naming partition, offsets and position. Records are never
skipped: the livemetrics state needs each changelog read as a prefix (the
partition record of a flush comes last, `LiveProcessor.flush`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("livemetrics.recovery")

STALL_SECONDS = 20.0


class RecoveryGuard:
    """Watches Faust's `Recovery` (offsets, highwaters) and re-seeks stalled partitions."""

    def __init__(
        self,
        recovery: Any,
        consumer: Callable[[], Any],
        *,
        stall_seconds: float = STALL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.recovery = recovery
        self.consumer = consumer  # a callable: Faust creates its consumer lazily
        self.stall_seconds = stall_seconds
        self.monotonic = monotonic
        self._seen: dict[Any, tuple[int, float]] = {}  # tp -> (offset, since)

    async def check(self) -> list[Any]:
        """Re-seek every stalled active partition; the partitions re-sought."""
        recovery = self.recovery
        if not recovery.in_recovery:
            self._seen.clear()
            return []
        now = self.monotonic()
        highwaters: Mapping[Any, int | None] = recovery.active_highwaters
        offsets: Mapping[Any, int | None] = recovery.active_offsets
        stalled = []
        for tp, highwater in list(highwaters.items()):
            offset = offsets.get(tp)
            offset = -1 if offset is None else offset
            if highwater is None or offset >= highwater:
                self._seen.pop(tp, None)
                continue
            seen = self._seen.get(tp)
            if seen is None or seen[0] != offset:
                self._seen[tp] = (offset, now)
                continue
            if now - seen[1] >= self.stall_seconds:
                stalled.append((tp, offset, highwater))
        reseeked = []
        for tp, offset, highwater in stalled:
            consumer = self.consumer()
            position = await consumer.position(tp)
            log.error(
                "table recovery of %s:%s made no progress for %.0fs (applied offset %s, "
                "highwater %s, consumer position %s): fetching again from offset %s",
                tp.topic,
                tp.partition,
                now - self._seen[tp][1],
                offset,
                highwater,
                position,
                offset + 1,
            )
            consumer.resume_partitions({tp})
            await consumer.seek(tp, offset + 1)
            self._seen[tp] = (offset, now)
            reseeked.append(tp)
        return reseeked
