"""The engine's pending timers: session gaps, SLA at-risk and breach points, retention.

Timers fire in order of due time, then in the order they were scheduled (the
order replay and the live worker must agree on). The queue is a calendar of
buckets of 2**28 us (about 4.5 minutes): a heap orders the buckets' numbers,
a bucket keeps its timers in scheduling order until it comes first, and only
the first bucket is sorted (stably, on the due time alone). A heap of every
timer (about 4 000 pending in the bench stream) paid some 12 comparisons a
timer to take it; here each timer is compared a few times, as plain ints.

    >>> queue = TimerQueue()
    >>> queue.schedule(5, ("acme", "c-1"), 0, None)
    >>> queue.pop_due_before(6)
    (5, 0, ('acme', 'c-1'), 0, None)
"""

from __future__ import annotations

import heapq
import operator
from typing import Any, Final

#: (due, sequence, conversation key, timer kind, ref): one timer, as it sorts
#: (due time, then scheduling order; the sequence is unique, so the rest is
#: never compared). Kinds are in `context`. Typed as a tuple of any length:
#: the compiled core keeps a fixed-length tuple unboxed, as a C struct, so each
#: one read from the queue and handed on would be built anew, an allocation.
Timer = tuple[Any, ...]

#: A bucket holds the timers due in one span of 2**BUCKET_SHIFT microseconds.
BUCKET_SHIFT: Final = 28
#: `due_bound` of an empty queue: past every event time (below 2**62, a machine int compiled).
_NO_BOUND: Final = (1 << 62) - 1

# Final aliases: the compiled core calls them without a lookup in their module
_heappush: Final = heapq.heappush
_heappop: Final = heapq.heappop
_due: Final = operator.itemgetter(0)


class TimerQueue:
    """Pending timers, taken in order of due time, then of scheduling.

    Rule contexts hold the queue to schedule, the engine to fire; it holds no
    reference back to either (a bound engine method would make engine and
    contexts a reference cycle, which only the cyclic collector frees).
    """

    __slots__ = (
        "due_bound",
        "front",
        "front_bucket",
        "later",
        "later_buckets",
        "position",
        "sequence",
    )

    def __init__(self) -> None:
        # the first bucket, sorted, taken from `position` on; a timer due in it
        # or before it (a late one) is inserted in its place
        self.front: list[Timer] = []
        self.front_bucket = -1
        self.position = 0
        self.later: dict[int, list[Timer]] = {}  # bucket -> its timers, in scheduling order
        self.later_buckets: list[int] = []  # a heap of the keys of `later`
        self.sequence = 0
        # No pending timer is due before it: a lower bound, kept by `schedule` and
        # made exact when a look finds nothing due. The engine asks two or three
        # times an event whether a timer is due; most times one comparison answers.
        self.due_bound = _NO_BOUND

    def __len__(self) -> int:
        later = sum(len(timers) for timers in self.later.values())
        return len(self.front) - self.position + later

    def schedule(self, due_us: int, key: Any, kind: int, ref: Any) -> None:
        """Add a timer for conversation `key` (`(tenant, conversation_id)`; untyped, so
        the compiled core does not unpack and pack it again)."""
        sequence = self.sequence
        self.sequence = sequence + 1
        timer: Timer = (due_us, sequence, key, kind, ref)
        if due_us < self.due_bound:
            self.due_bound = due_us
        bucket = due_us >> BUCKET_SHIFT
        if bucket <= self.front_bucket:
            _insert_last_of_due(self.front, timer, due_us, self.position)
            return
        timers = self.later.get(bucket)
        if timers is None:
            self.later[bucket] = [timer]
            _heappush(self.later_buckets, bucket)
        else:
            timers.append(timer)

    def has_due_before(self, now_us: int) -> bool:
        return now_us > self.due_bound and self._first_due_before(now_us) is not None

    def pop_due_before(self, now_us: int) -> Timer | None:
        """Take the first timer due strictly before `now_us`, or None when there is none.

        One at a time: a timer fired may schedule another that is due before
        the rest (it is then taken next, as its due time says).
        """
        if now_us <= self.due_bound:
            return None
        timer = self._first_due_before(now_us)
        if timer is not None:
            self.position += 1
        return timer

    def _first_due_before(self, now_us: int) -> Timer | None:
        """The first timer when it is due before `now_us` (None otherwise, and
        `due_bound` made exact), at `position`."""
        front = self.front
        position = self.position
        if position == len(front):
            # the first bucket is spent: the next one comes first when it may be due
            buckets = self.later_buckets
            next_start = buckets[0] << BUCKET_SHIFT if buckets else _NO_BOUND
            if next_start >= now_us:
                if position:  # late timers may keep landing here: keep none taken
                    front.clear()
                    self.position = 0
                self.due_bound = next_start
                return None
            bucket = _heappop(buckets)
            front = self.later.pop(bucket)
            # a bucket lists its timers in scheduling order, so a stable sort on
            # the due time alone orders them as (due, sequence); comparing plain
            # ints takes a fifth of the instructions of comparing whole tuples
            front.sort(key=_due)
            self.front = front
            self.front_bucket = bucket
            self.position = position = 0
        timer = front[position]
        due_us: int = timer[0]
        if due_us < now_us:
            return timer
        self.due_bound = due_us
        return None


def _insert_last_of_due(timers: list[Timer], timer: Timer, due_us: int, low: int) -> None:
    """Insert the newest `timer` into the sorted `timers[low:]`, after those due at or
    before `due_us` (its sequence is the largest yet, so it sorts after equal due
    times). `bisect.insort` did this through Python's calling convention and compared
    whole tuples, about 1 500 instructions a timer; compiled, this is a loop over ints."""
    high = len(timers)
    while low < high:
        middle = (low + high) >> 1
        other_due: int = timers[middle][0]
        if due_us < other_due:
            high = middle
        else:
            low = middle + 1
    timers.insert(low, timer)
