"""AggregateStore folds observations into cells keyed by (day, hour, dimensions, agents)."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

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


def test_fold_lands_where_apply_does() -> None:
    """`fold` (replay's engine folds straight in) and `apply` of the same observations."""
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


# Parts of keys: equal values as distinct objects too (the store compares by
# identity first), two conversations, and a tenant count with no conversation.
_OTHER = (*DIMS[:9], "c-2", None)
_DIMS_POOL = (DIMS, tuple(list(DIMS)), _OTHER, tuple(list(_OTHER)), ("acme", *(None,) * 10))
_DAYS = ("2026-11-23", "".join(["2026-11-", "23"]), "2026-11-24")
_HOURS = ("09", "".join(["0", "9"]), "10")
_AGENTS = ((), ("ag-1",), tuple(["ag-1"]), ("ag-2",), ("ag-1", "ag-2"))

_folds = st.lists(
    st.tuples(
        st.sampled_from(("customer_messages", "agent_messages")),
        st.sampled_from((1, 1, -1)),
        st.sampled_from(_DAYS),
        st.sampled_from(_HOURS),
        st.sampled_from(_DIMS_POOL),
        st.sampled_from(_AGENTS),
    ),
    max_size=80,
)


_EMPTIED_AND_MADE_AGAIN = [
    ("customer_messages", sign, "2026-11-23", "09", DIMS, ()) for sign in (1, -1, 1)
]


@given(_folds)
@example(_EMPTIED_AND_MADE_AGAIN)
def test_folds_match_a_dictionary_of_their_keys(folds: list) -> None:
    """The reference: each fold looks its cell up by value (what `fold` saves)."""
    store = AggregateStore()
    reference: dict = {}
    for metric, sign, day, hour, dims, agents in folds:
        store.fold(metric, 1, sign, day, hour, dims, agents)
        key = (day, hour, dims, agents)
        cell = reference.setdefault(key, {})
        cell[metric] = cell.get(metric, 0) + sign
        if not cell[metric]:
            del cell[metric]
        if sign < 0 and not cell:
            del reference[key]
        assert store.cells == reference
