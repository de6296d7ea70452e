"""AggregateStore folds observations into cells keyed by (day, hour, dimensions, agents)."""

from __future__ import annotations

from livemetrics.aggregate.store import AggregateStore
from livemetrics.engine.outputs import Observation

DIMS = ("acme", "chat", "inbound", None, None, None, None, "team-es", "cust-1", "c-1", None)


def obs(
    metric: str, dims: tuple[str | None, ...] = DIMS, agents: tuple[str, ...] = ()
) -> Observation:
    return Observation(metric, 1, 0, "2026-11-23", "09", dims, agents)


def test_consecutive_observations_of_one_cell_and_of_others_land_where_their_keys_say() -> None:
    """The cell of the previous observation is reused only for the same key."""
    store = AggregateStore()
    equal_dims = tuple(list(DIMS))  # equal, not the same object
    other_dims = (*DIMS[:9], "c-2", None)
    store.apply(
        [
            obs("customer_messages"),
            obs("customer_messages", equal_dims),
            obs("agent_messages", agents=("ag-1",)),
            obs("agent_messages", agents=("ag-2",)),
            obs("agent_messages", agents=("ag-1",)),
            obs("customer_messages", other_dims),
            obs("customer_messages"),
        ]
    )
    day_hour = ("2026-11-23", "09")
    assert store.cells == {
        (*day_hour, DIMS, ()): {"customer_messages": 3},
        (*day_hour, DIMS, ("ag-1",)): {"agent_messages": 2},
        (*day_hour, DIMS, ("ag-2",)): {"agent_messages": 1},
        (*day_hour, other_dims, ()): {"customer_messages": 1},
    }


def test_a_cell_emptied_by_a_retraction_is_dropped_and_made_again() -> None:
    store = AggregateStore()
    first = obs("customer_messages")
    store.apply([first, first.retraction(), obs("customer_messages"), obs("bot_messages")])
    assert store.cells == {
        ("2026-11-23", "09", DIMS, ()): {"customer_messages": 1, "bot_messages": 1}
    }
    store.apply([first.retraction()])
    store.apply([first.retraction().retraction()])
    assert store.cells == {
        ("2026-11-23", "09", DIMS, ()): {"customer_messages": 1, "bot_messages": 1}
    }


def test_fold_lands_where_apply_does_and_apply_forgets_the_last_cell() -> None:
    """`fold` (replay's engine folds straight in) keeps the last cell; `apply`
    starts afresh, since `cells` may have been changed in between."""
    store = AggregateStore()
    store.fold("customer_messages", 1, 1, "2026-11-23", "09", tuple(list(DIMS)), ())
    store.fold("first_response_seconds", 2.5, 1, "2026-11-23", "09", DIMS, ("ag-1",))
    store.fold("customer_messages", 1, 1, "2026-11-23", "09", DIMS, ())
    listed = AggregateStore()
    listed.apply(
        [
            obs("customer_messages"),
            Observation("first_response_seconds", 2.5, 0, "2026-11-23", "09", DIMS, ("ag-1",)),
            obs("customer_messages"),
        ]
    )
    assert store.to_state() == listed.to_state()
    store.cells.clear()
    store.apply([obs("customer_messages")])
    assert store.cells == {("2026-11-23", "09", DIMS, ()): {"customer_messages": 1}}
