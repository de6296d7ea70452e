"""Laws of the distribution aggregate: exact nearest rank for small n, 1 %
accuracy above (SPEC §7 [20]), removal (SPEC §7 [16]), merge and state."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from livemetrics.aggregate.distribution import EXACT_LIMIT, Distribution

PERCENTILES = (0, 1, 5, 10, 25, 50, 75, 90, 95, 99, 99.9, 100)


def nearest_rank(values: Sequence[float], p: float) -> float:
    """The oracle: sorted[ceil(p*n/100) - 1], p=0 the minimum."""
    ordered = sorted(values)
    if p == 0:
        return ordered[0]
    return ordered[math.ceil(p * len(ordered) / 100) - 1]


def assert_within_one_percent(estimate: float | None, exact: float, what: str) -> None:
    assert estimate is not None, what
    if exact == 0:
        assert estimate == 0, f"{what}: {estimate} for exact 0"
    else:
        assert abs(estimate - exact) <= 0.01 * abs(exact), f"{what}: {estimate} vs {exact}"


def assert_sum_close(total: float, values: Sequence[float], scale: Sequence[float]) -> None:
    tolerance = 1e-9 * max(1.0, math.fsum(abs(v) for v in scale))
    assert abs(total - math.fsum(values)) <= tolerance


def assert_matches(dist: Distribution, values: Sequence[float], scale: Sequence[float]) -> None:
    """``dist`` describes ``values``: count exact, sum close, quantiles within 1 %."""
    assert dist.count == len(values)
    assert_sum_close(dist.total, values, scale)
    if not values:
        assert dist.is_empty()
        assert dist.quantile(50) is None
        return
    for p in PERCENTILES:
        assert_within_one_percent(dist.quantile(p), nearest_rank(values, p), f"p{p}")
    assert_within_one_percent(dist.min, min(values), "min")
    assert_within_one_percent(dist.max, max(values), "max")


def distribution_of(values: Sequence[float]) -> Distribution:
    dist = Distribution()
    for value in values:
        dist.add(value)
    return dist


# Value shapes seen in production: durations (heavy tail, many zeros), scores,
# and money amounts of both signs (refunds).
SHAPES: dict[str, Callable[[random.Random], float]] = {
    "lognormal_durations": lambda rng: rng.lognormvariate(2, 2),
    "durations_with_zeros": lambda rng: 0.0 if rng.random() < 0.3 else rng.expovariate(0.01),
    "integer_scores": lambda rng: float(rng.randint(1, 5)),
    "amounts_with_refunds": lambda rng: round(rng.uniform(-500, 2000), 2),
    "wide_magnitudes_mixed_sign": lambda rng: rng.choice((-1, 1, 0)) * 10 ** rng.uniform(-6, 9),
    "ties_and_zeros_mixed_sign": lambda rng: float(rng.choice((-3, -1, 0, 0, 0, 2, 7, 7))),
}


@st.composite
def large_samples(draw: st.DrawFn) -> list[float]:
    """100..5000 values: a seeded shape, or floats hypothesis picks itself."""
    if draw(st.booleans()):
        shape = SHAPES[draw(st.sampled_from(sorted(SHAPES)))]
        rng = random.Random(draw(st.integers(0, 2**32)))
        return [shape(rng) for _ in range(draw(st.integers(100, 5000)))]
    magnitudes = st.floats(min_value=0, max_value=1e9, allow_subnormal=False)
    if draw(st.booleans()):
        magnitudes = st.floats(min_value=-1e9, max_value=1e9, allow_subnormal=False)
    return draw(st.lists(magnitudes | st.just(0.0), min_size=100, max_size=400))


@pytest.mark.parametrize(
    ("p", "expected"),
    [(0, 1.0), (10, 1.0), (11, 2.0), (50, 5.0), (51, 6.0), (90, 9.0), (99, 10.0), (100, 10.0)],
)
def test_small_distribution_uses_exact_nearest_rank(p: float, expected: float) -> None:
    dist = distribution_of([7.0, 3.0, 10.0, 1.0, 5.0, 9.0, 2.0, 8.0, 4.0, 6.0])
    assert dist.quantile(p) == expected


@pytest.mark.parametrize("p", [0, 1, 50, 90, 99, 100])
def test_single_value_is_every_percentile(p: float) -> None:
    assert distribution_of([42.5]).quantile(p) == 42.5


def test_exact_mode_holds_up_to_the_limit_then_sketches() -> None:
    values = [float(i) for i in range(1, EXACT_LIMIT + 1)]
    dist = distribution_of(values)
    assert "v" in dist.to_state()
    n = EXACT_LIMIT
    expected = [float(math.ceil(p * n / 100)) for p in (50, 90, 99)]
    assert [dist.quantile(p) for p in (50, 90, 99)] == expected
    dist.add(65.0)
    assert "v" not in dist.to_state()
    assert_matches(dist, [*values, 65.0], [*values, 65.0])


def test_summary_has_report_shape_and_rounds_to_six_decimals() -> None:
    dist = distribution_of([0.1, 0.2, 2.5, 10.0, 1 / 3])
    assert dist.summary() == {
        "count": 5,
        "sum": 13.133333,
        "min": 0.1,
        "max": 10.0,
        "p50": 0.333333,
        "p90": 10.0,
        "p99": 10.0,
    }


def test_empty_summary_is_count_zero_sum_zero_and_nulls() -> None:
    assert Distribution().summary() == {
        "count": 0,
        "sum": 0,
        "min": None,
        "max": None,
        "p50": None,
        "p90": None,
        "p99": None,
    }
    assert Distribution().is_empty()


def test_summary_never_shows_negative_zero() -> None:
    summary = distribution_of([-0.0, -1e-9]).summary()
    for key in ("sum", "min", "max", "p50"):
        assert summary[key] == 0
        assert math.copysign(1, float(summary[key] or 1)) == 1, key


def test_percentile_outside_0_100_is_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        distribution_of([1.0]).quantile(101)
    with pytest.raises(ValueError, match="outside"):
        Distribution().quantile(-1)


@settings(max_examples=120, deadline=None)
@given(large_samples())
def test_every_quantile_is_within_one_percent_of_nearest_rank(values: list[float]) -> None:
    dist = distribution_of(values)
    assert_matches(dist, values, values)
    assert dist.min == min(values)
    assert dist.max == max(values)


def test_zero_quantiles_are_exactly_zero_in_sketch_mode() -> None:
    values = [0.0] * 700 + [float(i) for i in range(1, 301)]
    dist = distribution_of(values)
    assert dist.quantile(50) == 0.0
    assert dist.quantile(70) == 0.0
    assert_within_one_percent(dist.quantile(71), nearest_rank(values, 71), "p71")


def test_re_rating_replaces_the_earlier_score() -> None:
    dist = distribution_of([5.0, 4.0, 1.0])
    dist.remove(1.0)
    dist.add(3.0)
    assert dist.summary() == distribution_of([5.0, 4.0, 3.0]).summary()


def test_removing_a_value_never_added_is_refused() -> None:
    with pytest.raises(ValueError, match="not added"):
        distribution_of([1.0, 2.0]).remove(3.0)
    sketch = distribution_of([float(i) for i in range(1, 200)])
    with pytest.raises(ValueError, match="not added"):
        sketch.remove(1e6)
    with pytest.raises(ValueError):
        sketch.remove(0.0)


def test_removing_every_value_of_a_sketch_leaves_an_empty_distribution() -> None:
    values = [float(i) for i in range(-50, 150)]
    dist = distribution_of(values)
    for value in values:
        dist.remove(value)
    assert dist.summary() == Distribution().summary()
    assert dist.to_state() == Distribution().to_state()


@settings(max_examples=80, deadline=None)
@given(large_samples(), st.integers(0, 2**32), st.floats(0, 1))
def test_add_then_remove_a_subset_describes_the_rest(
    values: list[float], seed: int, share: float
) -> None:
    rng = random.Random(seed)
    removed_at = set(rng.sample(range(len(values)), int(share * len(values))))
    dist = distribution_of(values)
    for index in rng.sample(sorted(removed_at), len(removed_at)):
        dist.remove(values[index])
    rest = [v for i, v in enumerate(values) if i not in removed_at]
    assert_matches(dist, rest, values)


SMALL_VALUES = st.sampled_from((0.0, 1.0, 2.5, -4.0, 7.0))
SMALL_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), SMALL_VALUES),
        st.tuples(st.just("remove"), SMALL_VALUES),
        st.tuples(st.just("merge"), st.lists(SMALL_VALUES, max_size=3)),
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(SMALL_STEPS)
def test_few_values_behave_as_the_list_of_them(steps: list[tuple[str, object]]) -> None:
    """Zero, one and two values in every order of add, remove and merge: exact mode
    holds one value without a list until a second comes (class doc); every answer
    and the state must be those of the plain list of the values."""
    dist, model = Distribution(), []
    for action, argument in steps:
        if action == "add":
            assert isinstance(argument, float)
            dist.add(argument)
            model.append(argument)
        elif action == "remove":
            assert isinstance(argument, float)
            if argument in model:
                dist.remove(argument)
                model.remove(argument)
            else:
                with pytest.raises(ValueError, match="was not added"):
                    dist.remove(argument)
        else:
            assert isinstance(argument, list)
            other = distribution_of(argument)
            dist.merge(other)
            assert other.to_state() == {"s": math.fsum(argument), "v": argument}
            model.extend(argument)
        assert dist.count == len(model)
        assert dist.total == math.fsum(model)
        assert dist.to_state() == {"s": dist.total, "v": model}
        assert (dist.min, dist.max) == ((min(model), max(model)) if model else (None, None))
        for p in (0, 50, 100):
            assert dist.quantile(p) == (nearest_rank(model, p) if model else None)
        restored = Distribution.from_state(orjson.loads(orjson.dumps(dist.to_state())))
        assert restored.summary() == dist.summary()


def test_remove_in_exact_mode_keeps_quantiles_exact() -> None:
    dist = distribution_of([1.0, 2.0, 3.0, 4.0, 100.0])
    dist.remove(100.0)
    dist.remove(1.0)
    assert (dist.min, dist.max, dist.quantile(50), dist.total) == (2.0, 4.0, 3.0, 9.0)


def split(values: list[float], rng: random.Random, parts: int) -> list[list[float]]:
    cuts = sorted(rng.randint(0, len(values)) for _ in range(parts - 1))
    bounds = [0, *cuts, len(values)]
    return [values[a:b] for a, b in itertools.pairwise(bounds)]


def assert_same_summary(left: Distribution, right: Distribution, scale: Sequence[float]) -> None:
    a, b = left.summary(), right.summary()
    assert_sum_close(float(a["sum"] or 0), [float(b["sum"] or 0)], scale)
    assert {k: v for k, v in a.items() if k != "sum"} == {k: v for k, v in b.items() if k != "sum"}


@settings(max_examples=80, deadline=None)
@given(
    st.one_of(large_samples(), st.lists(st.floats(-1e6, 1e6, allow_subnormal=False), max_size=80)),
    st.integers(0, 2**32),
    st.integers(2, 6),
)
def test_merging_parts_in_any_grouping_equals_the_whole(
    values: list[float], seed: int, parts: int
) -> None:
    rng = random.Random(seed)
    pieces = [distribution_of(piece) for piece in split(values, rng, parts)]
    states_before = [piece.to_state() for piece in pieces]

    left_to_right = Distribution()
    for piece in pieces:
        left_to_right.merge(piece)
    right_to_left = Distribution()
    for piece in reversed(pieces):
        right_to_left.merge(piece)
    shuffled = rng.sample(pieces, len(pieces))
    grouped = Distribution()
    grouped.merge(shuffled[0])
    tail = Distribution()
    for piece in shuffled[1:]:
        tail.merge(piece)
    grouped.merge(tail)

    whole = distribution_of(values)
    for merged in (left_to_right, right_to_left, grouped):
        assert_same_summary(merged, whole, values)
    assert [piece.to_state() for piece in pieces] == states_before
    if values:
        assert_matches(left_to_right, values, values)


def test_merging_two_exact_distributions_past_the_limit_sketches() -> None:
    half = EXACT_LIMIT // 2 + 8
    first = distribution_of([float(i) for i in range(half)])
    second = distribution_of([float(i) for i in range(half, 2 * half)])
    first.merge(second)
    assert "v" not in first.to_state()
    assert "v" in second.to_state()
    assert first.count == 2 * half
    assert (first.min, first.max) == (0.0, float(2 * half - 1))


def test_merge_with_itself_doubles_every_count() -> None:
    dist = distribution_of([float(i) for i in range(1, 101)])
    dist.merge(dist)
    assert_same_summary(dist, distribution_of([float(i) for i in range(1, 101)] * 2), [200.0])
    assert dist.count == 200


STATE_CASES = {
    "empty": [],
    "exact": [3.0, 0.0, -1.5, 2.25],
    "sketch_mixed_sign": [((-1) ** i) * i * 1.37 for i in range(300)] + [0.0] * 20,
}


@pytest.mark.parametrize("values", STATE_CASES.values(), ids=STATE_CASES.keys())
def test_state_round_trips_through_orjson(values: list[float]) -> None:
    original = distribution_of(values)
    if len(values) > 100:
        original.remove(min(values))
        original.remove(values[150])
    restored = Distribution.from_state(orjson.loads(orjson.dumps(original.to_state())))
    assert restored.to_state() == original.to_state()
    assert restored.summary() == original.summary()
    for dist in (original, restored):
        dist.add(12.5)
        dist.add(-7.0)
    assert restored.to_state() == original.to_state()


def test_state_of_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="must be an object"):
        Distribution.from_state([1, 2])
