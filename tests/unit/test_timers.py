"""The engine's timer queue: due time first, then scheduling order, one timer at a time."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from livemetrics.engine.timers import BUCKET_SHIFT, TimerQueue


def _key(n: int) -> tuple[str, str]:
    return ("acme", f"c-{n}")


def test_timers_of_one_microsecond_fire_in_scheduling_order() -> None:
    queue = TimerQueue()
    for n, due in enumerate((30, 10, 30, 20, 30, 10)):
        queue.schedule(due, _key(n), 0, None)
    assert len(queue) == 6
    taken = []
    while (payload := queue.pop_due_before(31)) is not None:
        taken.append(payload[2][1])
    assert taken == ["c-1", "c-5", "c-3", "c-0", "c-2", "c-4"]
    assert len(queue) == 0 and not queue.has_due_before(10**18)


def test_only_timers_due_strictly_before_now_are_taken() -> None:
    queue = TimerQueue()
    queue.schedule(10, _key(1), 0, None)
    assert not queue.has_due_before(10)
    assert queue.pop_due_before(10) is None
    assert queue.has_due_before(11)
    assert queue.pop_due_before(11) == (10, 0, _key(1), 0, None)


def test_a_timer_scheduled_while_firing_goes_where_its_due_time_says() -> None:
    queue = TimerQueue()
    queue.schedule(10, _key(1), 0, None)
    queue.schedule(10, _key(2), 0, None)
    assert queue.pop_due_before(100) == (10, 0, _key(1), 0, None)
    queue.schedule(10, _key(3), 0, None)  # same microsecond: after the one left
    queue.schedule(5, _key(4), 0, None)  # earlier: next
    taken = []
    while (payload := queue.pop_due_before(100)) is not None:
        taken.append(payload[2][1])
    assert taken == ["c-4", "c-2", "c-3"]


def test_a_timer_at_the_start_of_a_later_bucket_is_due_a_microsecond_after_it() -> None:
    """Finding nothing due makes the queue's bound exact: not one microsecond more."""
    queue = TimerQueue()
    start = 3 << BUCKET_SHIFT
    queue.schedule(start, _key(1), 0, None)
    queue.schedule(1, _key(2), 0, None)
    assert queue.pop_due_before(2) == (1, 1, _key(2), 0, None)  # the first bucket is spent
    assert not queue.has_due_before(start)
    assert queue.has_due_before(start + 1)
    assert queue.pop_due_before(start + 1) == (start, 0, _key(1), 0, None)
    assert not queue.has_due_before(10**18)


# A quarter bucket: the operations' times span several buckets of the queue,
# several times fall in one, and some are equal (same microsecond).
_UNIT = 1 << (BUCKET_SHIFT - 2)

# An operation: ("schedule", due) or ("pop", now); a pop is at a time a timer
# may be due at (not taken: strictly before) or just after one.
_operations = st.lists(
    st.one_of(
        st.tuples(st.just("schedule"), st.integers(0, 20).map(lambda n: n * _UNIT)),
        st.tuples(st.just("pop"), st.integers(0, 51).map(lambda n: n // 2 * _UNIT + n % 2)),
    ),
    max_size=60,
)


@given(_operations)
def test_queue_matches_a_sorted_list_of_due_time_and_sequence(operations: list) -> None:
    """The reference: every pending (due, sequence), the smallest taken first."""
    queue = TimerQueue()
    reference: list[tuple[int, int]] = []
    for sequence, (name, value) in enumerate(operations):
        if name == "schedule":
            queue.schedule(value, _key(sequence), 1, (value, sequence))
            reference.append((value, sequence))
        else:
            reference.sort()
            expected = reference.pop(0) if reference and reference[0][0] < value else None
            payload = queue.pop_due_before(value)
            assert (payload[4] if payload is not None else None) == expected
        assert len(queue) == len(reference)
        # asked at other times too: each answer may move the queue's bound
        for now in (value + 1, value, value + _UNIT, max(value - _UNIT, 0)):
            assert queue.has_due_before(now) == any(d < now for d, _ in reference)
