"""A mergeable, retractable distribution: count, sum, min, max, percentiles.

Reports need count, sum, min, max, p50, p90 and p99 of every distribution
metric (SPEC §3), with percentiles within 1 % of the exact nearest-rank value
(SPEC §7 [20]), mergeable across buckets and partitions (replay and live must
agree, SPEC §5) and able to *remove* a value, because a re-rating replaces the
earlier score (SPEC §7 [16]) and a retracted breach takes its value back.

Two modes:

- **exact** while ``count <= EXACT_LIMIT`` (128): the values themselves; a
  quantile is the exact nearest-rank ``sorted[ceil(p*n/100) - 1]``.
- **sketch** beyond that: log-spaced buckets as in DDSketch, relative accuracy
  ``RELATIVE_ACCURACY`` (0.5 %), so every quantile is within 0.5 % of the
  exact nearest-rank value. Positive values go to bucket
  ``ceil(log(v) / log(GAMMA))``, negative values (refunds) to the same key of
  ``-v`` in a separate store, and zeros (common: durations clamp at 0) to a
  zero count, so a quantile that is 0 is exactly 0.

    >>> d = Distribution(); d.add(2.5); d.add(10.0)
    >>> d.summary()["p90"]
    10.0

Approximations, on purpose:

- ``total`` is a plain float accumulation, in add/merge order (a compensated
  sum would put more float work on the hot path); it differs from
  ``math.fsum`` of the values by a few ulps of the magnitudes involved,
  invisible after the 6-decimal rounding of D62.
- ``min``/``max`` are exact under ``add`` and ``merge`` (so p0 and p100 are
  exact). A ``remove`` in sketch mode of the current min (max) can only
  recompute it from the buckets, so it becomes the lowest (highest) bucket's
  estimate, within 0.5 % of the true value. A sketch never returns to exact
  mode (the values are gone) except when it becomes empty: a sketch whose
  count fell to 128 or less still answers within 0.5 %, not exactly.
- ``remove`` of a value that was never added raises ``ValueError`` when it can
  tell (exact mode, or an empty bucket); in sketch mode a value that shares a
  bucket with added values cannot be told apart and is removed from it.

Values must be finite (the event decoder rejects non-finite numbers).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, Final

EXACT_LIMIT: Final = 128
"""Largest count kept as exact values."""

RELATIVE_ACCURACY: Final = 0.005
"""Relative error bound of a sketch quantile (alpha)."""

GAMMA: Final = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA: Final = math.log(GAMMA)
_ESTIMATE_FACTOR: Final = 2 / (1 + GAMMA)

SUMMARY_PERCENTILES: Final = (50, 90, 99)

_log: Final = math.log
_ceil: Final = math.ceil
_inf: Final = math.inf


def bucket_key(magnitude: float) -> int:
    """Key of the bucket ``(GAMMA**(key-1), GAMMA**key]`` holding ``magnitude > 0``."""
    return _ceil(_log(magnitude) / _LOG_GAMMA)


def bucket_estimate(key: int) -> float:
    """The value within ``RELATIVE_ACCURACY`` of every value in bucket ``key``."""
    return GAMMA**key * _ESTIMATE_FACTOR


def nearest_rank(p: float, n: int) -> int:
    """0-based nearest rank ``ceil(p*n/100) - 1`` (SPEC §7 [20]); p=0 gives the min."""
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p!r} is outside [0, 100]")
    return min(n - 1, max(0, _ceil(p * n / 100) - 1))


class _LogBuckets:
    """The sketch stores: bucket key -> count, for positive and negative values.

    Each store is a flat ``{key: count}`` map so it maps one to one onto a
    Redis hash (``HINCRBY <hash> p:<key> 1``), see ``Distribution.to_state``.
    """

    __slots__ = ("negative", "positive", "zero")

    def __init__(self) -> None:
        self.zero = 0
        self.positive: dict[int, int] = {}
        self.negative: dict[int, int] = {}

    def add(self, value: float) -> None:
        if value > 0:
            key = _ceil(_log(value) / _LOG_GAMMA)
            self.positive[key] = self.positive.get(key, 0) + 1
        elif value < 0:
            key = _ceil(_log(-value) / _LOG_GAMMA)
            self.negative[key] = self.negative.get(key, 0) + 1
        else:
            self.zero += 1

    def remove(self, value: float) -> None:
        if value == 0:
            if not self.zero:
                raise ValueError("cannot remove 0: no zero value was added")
            self.zero -= 1
            return
        store = self.positive if value > 0 else self.negative
        key = bucket_key(abs(value))
        held = store.get(key, 0)
        if not held:
            raise ValueError(f"cannot remove {value!r}: it was not added")
        if held == 1:
            del store[key]
        else:
            store[key] = held - 1

    def holds(self, value: float) -> bool:
        """Whether the bucket ``value`` falls in has a count."""
        if value > 0:
            return bucket_key(value) in self.positive
        if value < 0:
            return bucket_key(-value) in self.negative
        return self.zero > 0

    def merge(self, other: _LogBuckets) -> None:
        self.zero += other.zero
        for store, incoming in ((self.positive, other.positive), (self.negative, other.negative)):
            for key, count in incoming.items():
                store[key] = store.get(key, 0) + count

    def ascending(self) -> Iterator[tuple[int, int | None, int]]:
        """(sign, key, count) of every non-empty bucket, lowest values first.

        The zero count comes as sign 0, key None; estimates are left to the
        caller so a walk computes only the ones it returns.
        """
        negative, positive = self.negative, self.positive
        for key in sorted(negative, reverse=True):
            yield -1, key, negative[key]
        if self.zero:
            yield 0, None, self.zero
        for key in sorted(positive):
            yield 1, key, positive[key]

    def lowest(self) -> float:
        if self.negative:
            return -bucket_estimate(max(self.negative))
        if self.zero:
            return 0.0
        return bucket_estimate(min(self.positive))

    def highest(self) -> float:
        if self.positive:
            return bucket_estimate(max(self.positive))
        if self.zero:
            return 0.0
        return -bucket_estimate(min(self.negative))

    def values_at(self, ranks: Sequence[int]) -> list[float]:
        """Estimates at ascending 0-based ranks: walk until cumulative count > rank."""
        found: list[float] = []
        pending = iter(ranks)
        rank = next(pending, None)
        cumulative = 0
        for sign, key, count in self.ascending():
            cumulative += count
            while rank is not None and cumulative > rank:
                found.append(0.0 if key is None else sign * bucket_estimate(key))
                rank = next(pending, None)
            if rank is None:
                break
        return found


class Distribution:
    """Count, sum, min, max and percentiles of observed values; see the module doc.

    Exact mode is ``_buckets is None``: the values are in ``_values`` and min
    and max are computed from them when asked (keeping ``add`` short). Sketch
    mode keeps ``_values`` empty, counts in ``_buckets`` and tracks the
    extremes in ``_lo``/``_hi``.

    Most distributions hold one value (a store cell is per conversation and
    hour): until a second comes, ``_values`` is None and the value is in
    ``_lo`` (``_exact_values`` reads both forms; once there is a list, exact
    mode never reads ``_lo``). That spares a list and a float object per
    distribution, most of replay's distributions.
    """

    __slots__ = ("_buckets", "_hi", "_lo", "_values", "count", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self._lo = _inf
        self._hi = -_inf
        self._values: list[float] | None = None  # None: at most one value, in `_lo`
        self._buckets: _LogBuckets | None = None

    @property
    def min(self) -> float | None:
        """Smallest value (an estimate after some sketch-mode removals); None when empty."""
        if not self.count:
            return None
        return min(self._exact_values()) if self._buckets is None else self._lo

    @property
    def max(self) -> float | None:
        """Largest value (an estimate after some sketch-mode removals); None when empty."""
        if not self.count:
            return None
        return max(self._exact_values()) if self._buckets is None else self._hi

    def is_empty(self) -> bool:
        return self.count == 0

    def add(self, value: float) -> None:
        """Observe ``value``; the hot path, a handful of attribute operations."""
        buckets = self._buckets
        if buckets is None:
            values = self._values
            if values is None:
                if not self.count:  # the first value: kept alone (class doc)
                    self._lo = value
                    self.count = 1
                    self.total += value
                    return
                values = self._values = [self._lo]
            if len(values) < EXACT_LIMIT:
                values.append(value)
                self.count += 1
                self.total += value
                return
            buckets = self._sketch()
        buckets.add(value)
        self.count += 1
        self.total += value
        if value < self._lo:
            self._lo = value
        if value > self._hi:
            self._hi = value

    def remove(self, value: float) -> None:
        """Take back a value that was added (a re-rating or a retraction, SPEC §7 [16])."""
        buckets = self._buckets
        if buckets is None:
            values = self._values
            if values is None:
                if not self.count or self._lo != value:
                    raise ValueError(f"cannot remove {value!r}: it was not added")
            else:
                try:
                    values.remove(value)
                except ValueError:
                    raise ValueError(f"cannot remove {value!r}: it was not added") from None
            self._forget(value)
            return
        buckets.remove(value)
        self._forget(value)
        if self.count == 0:
            self._buckets = None
            self.total = 0.0
            return
        # A tracked extreme may be a bucket estimate (from an earlier removal)
        # that lies beyond the values of its bucket, so recompute also when its
        # bucket just emptied. Clamping to the old extreme keeps it exact
        # while copies of it remain and within RELATIVE_ACCURACY otherwise.
        if value <= self._lo or not buckets.holds(self._lo):
            self._lo = max(buckets.lowest(), self._lo)
        if value >= self._hi or not buckets.holds(self._hi):
            self._hi = min(buckets.highest(), self._hi)

    def merge(self, other: Distribution) -> None:
        """Add ``other``'s observations to this one, in place; ``other`` is unchanged."""
        if other.count == 0:
            return
        if other is self:
            other = Distribution.from_state(self.to_state())
        incoming = other._buckets
        if incoming is None and self._buckets is None and self.count + other.count <= EXACT_LIMIT:
            values = self._values = self._exact_values()
            values.extend(other._exact_values())
            self.count += other.count
            self.total += other.total
            return
        buckets = self._sketch()
        if incoming is None:
            for value in other._exact_values():
                buckets.add(value)
        else:
            buckets.merge(incoming)
        self.count += other.count
        self.total += other.total
        other_lo, other_hi = other.min, other.max
        assert other_lo is not None and other_hi is not None
        self._lo = min(self._lo, other_lo)
        self._hi = max(self._hi, other_hi)

    def quantile(self, p: float) -> float | None:
        """Nearest-rank p-th percentile, p in [0, 100] (SPEC §7 [20]); None when empty."""
        if self.count == 0:
            nearest_rank(p, 1)
            return None
        return self._quantiles((p,))[0]

    def summary(self) -> dict[str, float | int | None]:
        """The report shape of SPEC §5, floats rounded to 6 decimals (D62, SPEC §7 [50])."""
        if self.count == 0:
            return {
                "count": 0,
                "sum": 0.0,
                "min": None,
                "max": None,
                "p50": None,
                "p90": None,
                "p99": None,
            }
        lowest, p50, p90, p99, highest = self._quantiles((0, *SUMMARY_PERCENTILES, 100))
        return {
            "count": self.count,
            "sum": _rounded(self.total),
            "min": _rounded(lowest),
            "max": _rounded(highest),
            "p50": _rounded(p50),
            "p90": _rounded(p90),
            "p99": _rounded(p99),
        }

    def to_state(self) -> dict[str, Any]:
        """Compact, orjson-serialisable state; ``from_state`` restores it bit for bit.

        Exact mode: ``{"s": total, "v": [values...]}``. Sketch mode:
        ``{"n": count, "s": total, "lo": min, "hi": max, "z": zeros,
        "p": {"<key>": count}, "m": {"<key>": count}}`` ("p"/"m" = positive /
        negative store, omitted when empty; keys are ``bucket_key`` of the
        magnitude, as strings). The sketch is flat by design: in a Redis hash
        it is fields ``n s lo hi z`` plus one ``p:<key>`` / ``m:<key>`` field per
        bucket, so an add is ``HINCRBY`` on a bucket and ``n`` and
        ``HINCRBYFLOAT`` on ``s`` (``lo``/``hi`` need a compare: a Lua script
        or a single writer). The bucket layout depends on
        ``RELATIVE_ACCURACY``: changing it invalidates stored sketches.
        """
        buckets = self._buckets
        if buckets is None:
            return {"s": self.total, "v": list(self._exact_values())}
        state: dict[str, Any] = {
            "n": self.count,
            "s": self.total,
            "lo": self._lo,
            "hi": self._hi,
            "z": buckets.zero,
        }
        if buckets.positive:
            state["p"] = {str(key): count for key, count in buckets.positive.items()}
        if buckets.negative:
            state["m"] = {str(key): count for key, count in buckets.negative.items()}
        return state

    @classmethod
    def from_state(cls, state: Any) -> Distribution:
        """Rebuild a distribution from ``to_state()`` output (also after a JSON round trip)."""
        if not isinstance(state, dict):
            raise ValueError(f"distribution state must be an object, not {type(state).__name__}")
        restored = cls()
        restored.total = state["s"]
        if "v" in state:
            values = list(state["v"])
            restored._values = values
            restored.count = len(values)
            return restored
        buckets = _LogBuckets()
        buckets.zero = int(state["z"])
        buckets.positive = {int(key): int(count) for key, count in state.get("p", {}).items()}
        buckets.negative = {int(key): int(count) for key, count in state.get("m", {}).items()}
        restored._buckets = buckets
        restored.count = int(state["n"])
        restored._lo = state["lo"]
        restored._hi = state["hi"]
        return restored

    def __repr__(self) -> str:
        mode = "exact" if self._buckets is None else "sketch"
        return f"<Distribution {mode} count={self.count} sum={self.total!r}>"

    def _sketch(self) -> _LogBuckets:
        """The bucket stores, moving the exact values into them on first use."""
        buckets = self._buckets
        if buckets is None:
            buckets = self._buckets = _LogBuckets()
            values = self._exact_values()
            for value in values:
                buckets.add(value)
            self._lo = min(values, default=_inf)
            self._hi = max(values, default=-_inf)
            self._values = []
        return buckets

    def _exact_values(self) -> list[float]:
        """The values of exact mode as a list: the kept list, or a new one of the one
        value (or of none) held in `_lo` (class doc)."""
        values = self._values
        if values is not None:
            return values
        return [self._lo] if self.count else []

    def _forget(self, value: float) -> None:
        self.count -= 1
        self.total -= value

    def _quantiles(self, percentiles: Sequence[float]) -> list[float]:
        """Values at ascending percentiles of a non-empty distribution, one sort or walk."""
        n = self.count
        ranks = [nearest_rank(p, n) for p in percentiles]
        buckets = self._buckets
        if buckets is None:
            ordered = sorted(self._exact_values())
            return [float(ordered[rank]) for rank in ranks]
        estimates = buckets.values_at(ranks)
        lo, hi = self._lo, self._hi
        found: list[float] = []
        for rank, estimate in zip(ranks, estimates, strict=True):
            if rank == 0:
                found.append(float(lo))
            elif rank == n - 1:
                found.append(float(hi))
            else:
                found.append(float(min(max(estimate, lo), hi)))
        return found


def _rounded(value: float) -> float:
    """6 decimals (D62); ``+ 0.0`` turns -0.0 into 0.0 so JSON never shows ``-0.0``."""
    return round(float(value), 6) + 0.0
