"""The engine's pending timers: session gaps, SLA at-risk and breach points, retention.

Timers fire in order of due time, then in the order they were scheduled (the
order replay and the live worker must agree on). The queue is a heap of
distinct due times, each with its timers in scheduling order: due times are
microseconds, ints that compare as machine words, where a key that also
encodes the sequence (`due << 40 | seq`) outgrows one and turns every
comparison into a big-int operation (2.5 per event in replay).

    >>> queue = TimerQueue()
    >>> queue.schedule(5, ("acme", "c-1"), 0, None)
    >>> queue.pop_due_before(6)
    (('acme', 'c-1'), 0, None)
"""

from __future__ import annotations

import heapq
from typing import Any, Final

#: (conversation key, timer kind, ref): what a timer carries (kinds in `context`).
TimerPayload = tuple[tuple[str, str], int, Any]

# Final aliases: the compiled core calls them without a lookup in the heapq module
_heappush: Final = heapq.heappush
_heappop: Final = heapq.heappop


class TimerQueue:
    """Pending timers, taken in order of due time, then of scheduling.

    Rule contexts hold the queue to schedule, the engine to fire; it holds no
    reference back to either (a bound engine method would make engine and
    contexts a reference cycle, which only the cyclic collector frees).
    """

    __slots__ = ("due", "first", "more")

    def __init__(self) -> None:
        self.due: list[int] = []  # a heap; each due time of `first` once
        self.first: dict[int, TimerPayload] = {}  # due -> its first timer
        # due -> its later timers, in scheduling order (rare: one microsecond)
        self.more: dict[int, list[TimerPayload]] = {}

    def __len__(self) -> int:
        return len(self.first) + sum(len(timers) for timers in self.more.values())

    def schedule(self, due_us: int, key: tuple[str, str], kind: int, ref: Any) -> None:
        first = self.first
        if due_us in first:
            self.more.setdefault(due_us, []).append((key, kind, ref))
        else:
            first[due_us] = (key, kind, ref)
            _heappush(self.due, due_us)

    def has_due_before(self, now_us: int) -> bool:
        due = self.due
        return bool(due) and due[0] < now_us

    def pop_due_before(self, now_us: int) -> TimerPayload | None:
        """Take the first timer due strictly before `now_us`, or None when there is none.

        One at a time: a timer fired may schedule another that is due before
        the rest (it is then taken next, as its due time says).
        """
        due = self.due
        if not due:
            return None
        due_us = due[0]
        if due_us >= now_us:
            return None
        first = self.first
        payload = first[due_us]
        later = self.more.get(due_us) if self.more else None
        if later is None:
            del first[due_us]
            _heappop(due)
        else:
            first[due_us] = later.pop(0)
            if not later:
                del self.more[due_us]
        return payload
