"""Prometheus exposition: `livemetrics_<metric>` with bounded labels (SPEC §3 "Names").

Counters and histograms count what happened in this process (SPEC §7 [53]:
a re-rating counts again, a retracted breach stays counted); gauges are read
from the engine's state on every scrape, so a worker shows only the
partitions it owns and gauges of partitions moved away disappear at once.
An explicit registry (no globals), a custom collector that reads on scrape.

    >>> sink = PrometheusSink(config, processor)
    >>> body = sink.exposition()  # doctest: +SKIP
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from livemetrics.config import Config
from livemetrics.engine.gauges import live_gauges
from livemetrics.engine.outputs import DIM_INDEX, Observation
from livemetrics.metrics import COUNTERS, DISTRIBUTIONS, SLA_KINDS, TRANSACTION_PREFIX

SECONDS_BUCKETS = (
    5,
    10,
    15,
    30,
    45,
    60,
    90,
    120,
    180,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    14400,
    28800,
    86400,
)
SCORE_BUCKETS = tuple(range(11))
AMOUNT_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000)
KNOWN_CHANNELS = frozenset(
    ("chat", "email", "sms", "whatsapp", "messenger", "voice", "phone", "unknown")
)
INPUT_TOPICS = ("chat.events", "chat.agent-status")
MAX_TENANTS = 200
MAX_TEAMS = 500
OTHER = "other"
_TEAM = DIM_INDEX["team"]
_TAG = DIM_INDEX["tag"]
_SCORES = frozenset(("csat_score", "nps_score", "ces_score"))
_PLAIN_COUNTERS = tuple(
    c for c in COUNTERS if c != "tag_count" and not c.startswith("sla_breaches")
)

Labels = tuple[str, ...]


class LabelLimiter:
    """Keeps label values bounded: allow-lists and a cap per label, the rest is `other`."""

    def __init__(self, tag_allow_list: tuple[str, ...]) -> None:
        self.tags = frozenset(tag_allow_list)
        self.tenants: set[str] = set()
        self.teams: set[str] = set()

    def tenant(self, value: str | None) -> str:
        return _capped(value, self.tenants, MAX_TENANTS)

    def team(self, value: str | None) -> str:
        return _capped(value, self.teams, MAX_TEAMS)

    @staticmethod
    def channel(value: str | None) -> str:
        if value is None:
            return ""
        return value if value in KNOWN_CHANNELS else OTHER

    def tag(self, value: str | None) -> str:
        return value if value in self.tags else OTHER


def _capped(value: str | None, seen: set[str], limit: int) -> str:
    if value is None:
        return ""
    if value in seen:
        return value
    if len(seen) >= limit:
        return OTHER
    seen.add(value)
    return value


class _Histogram:
    __slots__ = ("bounds", "buckets", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        # the first bound >= value (Prometheus' `le`); past the last: the +Inf bucket
        self.buckets[bisect_left(self.bounds, value)] += 1
        self.total += value

    def cumulative(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip(self.bounds, self.buckets, strict=False):
            running += count
            out.append((_le(bound), running))
        out.append(("+Inf", running + self.buckets[-1]))
        return out


def _le(bound: float) -> str:
    return str(float(bound))


class PrometheusSink:
    """What one worker exposes on `/metrics`."""

    def __init__(
        self,
        config: Config,
        state: Any,
        *,
        lag: Callable[[], Mapping[tuple[str, int], int]] | None = None,
        owned: Callable[[], Mapping[str, int]] | None = None,
        redis: Callable[[], Mapping[str, float]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.state = state  # a LiveProcessor: .engine, .totals
        self.lag = lag or (lambda: {})
        self.owned = owned or (lambda: {})
        self.redis = redis or (lambda: {})
        self.clock = clock
        self.labels = LabelLimiter(config.prometheus_tag_allow_list)
        self.counters: dict[tuple[str, Labels], int] = {}
        self.histograms: dict[tuple[str, Labels], _Histogram] = {}
        self.batch = _Histogram((0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        ProcessCollector(registry=self.registry)
        self._seen_labels: set[Labels] = set()

    # -- feeding ---------------------------------------------------------------

    def observe(self, obs: Observation) -> None:
        """Count one observation; retractions are not subtracted (SPEC §7 [53])."""
        if obs.sign < 0:
            return
        dims = obs.dims
        base = (
            self.labels.tenant(dims[0]),
            self.labels.channel(dims[1]),
            self.labels.team(dims[_TEAM]),
        )
        if base not in self._seen_labels:
            self._seed(base)
        metric = obs.metric
        key: tuple[str, Labels]
        if metric.startswith(TRANSACTION_PREFIX):
            key = ("transaction_amount", (*base, metric[len(TRANSACTION_PREFIX) :]))
            self._histogram(key, AMOUNT_BUCKETS).observe(obs.value)
        elif metric in _SCORES:
            self._histogram((metric, base), SCORE_BUCKETS).observe(obs.value)
        elif metric in _DISTRIBUTION_SET:
            self._histogram((metric, base), SECONDS_BUCKETS).observe(obs.value)
        elif metric.startswith("sla_breaches_"):
            key = ("sla_breaches", (*base, metric[len("sla_breaches_") :]))
            self.counters[key] = self.counters.get(key, 0) + 1
        elif metric == "tag_count":
            key = ("tag_count", (*base, self.labels.tag(dims[_TAG])))
            self.counters[key] = self.counters.get(key, 0) + 1
        else:
            key = (metric, base)
            self.counters[key] = self.counters.get(key, 0) + 1

    def _seed(self, base: Labels) -> None:
        """Start every counter of a new label set at 0, so `rate()` sees its first increase."""
        self._seen_labels.add(base)
        for name in _PLAIN_COUNTERS:
            self.counters.setdefault((name, base), 0)
        for kind in SLA_KINDS:
            self.counters.setdefault(("sla_breaches", (*base, kind)), 0)

    def observe_batch(self, seconds: float) -> None:
        self.batch.observe(seconds)

    def _histogram(self, key: tuple[str, Labels], bounds: tuple[float, ...]) -> _Histogram:
        histogram = self.histograms.get(key)
        if histogram is None:
            histogram = self.histograms[key] = _Histogram(bounds)
        return histogram

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    # -- scrape ------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        yield from self._counters()
        yield from self._histograms()
        yield from self._gauges()
        yield from self._config_gauges()
        yield from self._pipeline()

    def _counters(self) -> Iterator[Metric]:
        families: dict[str, CounterMetricFamily] = {}
        base = ["tenant", "channel", "team"]
        for name in _PLAIN_COUNTERS:
            families[name] = CounterMetricFamily(
                f"livemetrics_{name}", f"SPEC counter {name}", labels=base
            )
        families["sla_breaches"] = CounterMetricFamily(
            "livemetrics_sla_breaches", "SLA breaches by kind (SPEC §4)", labels=[*base, "kind"]
        )
        families["tag_count"] = CounterMetricFamily(
            "livemetrics_tag_count",
            "Tags applied (allow-listed tags, else other)",
            labels=[*base, "tag"],
        )
        for (name, labels), value in self.counters.items():
            family = families.get(name)
            if family is not None:
                family.add_metric(list(labels), value)
        yield from families.values()

    def _histograms(self) -> Iterator[Metric]:
        families: dict[str, HistogramMetricFamily] = {}
        base = ["tenant", "channel", "team"]
        for name in DISTRIBUTIONS:
            families[name] = HistogramMetricFamily(
                f"livemetrics_{name}", f"SPEC distribution {name}", labels=base
            )
        families["transaction_amount"] = HistogramMetricFamily(
            "livemetrics_transaction_amount",
            "Transaction amounts per currency",
            labels=[*base, "currency"],
        )
        for (name, labels), histogram in self.histograms.items():
            families[name].add_metric(
                list(labels), histogram.cumulative(), sum_value=histogram.total
            )
        yield from families.values()

    def _gauges(self) -> Iterator[Metric]:
        engine = self.state.engine
        now_us = engine.clock_us
        values = live_gauges(engine.conversations.values(), engine.presence, now_us)
        per_conversation = (
            "open_conversations",
            "waiting_first_response",
            "awaiting_agent_reply",
            "unassigned_conversations",
            "oldest_waiting_seconds",
            "sla_at_risk",
        )
        families = {
            name: GaugeMetricFamily(
                f"livemetrics_{name}", f"Live gauge {name}", labels=["tenant", "team", "channel"]
            )
            for name in per_conversation
        }
        for name in ("agents_online", "agent_active_conversations"):
            families[name] = GaugeMetricFamily(
                f"livemetrics_{name}", f"Live gauge {name}", labels=["tenant", "team"]
            )
        grouped: dict[tuple[str, Labels], float] = {}
        for key, value in values.items():
            tenant = self.labels.tenant(key.tenant)
            team = self.labels.team(key.team)
            if key.name in ("agents_online", "agent_active_conversations"):
                labels: Labels = (tenant, team)
            else:
                labels = (tenant, team, self.labels.channel(key.channel))
            slot = (key.name, labels)
            if key.name == "oldest_waiting_seconds":
                grouped[slot] = max(grouped.get(slot, 0.0), value)
            else:
                grouped[slot] = grouped.get(slot, 0.0) + value
        for (name, labels), value in grouped.items():
            families[name].add_metric(list(labels), value)
        yield from families.values()

    def _config_gauges(self) -> Iterator[Metric]:
        targets = GaugeMetricFamily(
            "livemetrics_sla_target_seconds",
            "SLA targets from the config (SPEC §4)",
            labels=["tenant", "channel", "kind", "business"],
        )
        service_open = GaugeMetricFamily(
            "livemetrics_service_open",
            "1 while the tenant's service hours are open",
            labels=["tenant"],
        )
        now_us = int(self.clock() * 1_000_000)
        for name, tenant in self.config.tenants.items():
            for channel, policy in _effective_policies(tenant.sla):
                targets.add_metric(
                    [
                        name,
                        "*" if channel is None else self.labels.channel(channel),
                        policy.kind,
                        "true" if policy.business_hours else "false",
                    ],
                    policy.target_seconds,
                )
            if tenant.calendar.has_hours:
                service_open.add_metric([name], 1.0 if tenant.calendar.is_open(now_us) else 0.0)
        yield targets
        yield service_open

    def _pipeline(self) -> Iterator[Metric]:
        events = CounterMetricFamily(
            "livemetrics_input_events", "Input records by outcome", labels=["topic", "outcome"]
        )
        totals = dict.fromkeys(
            ((t, o) for t in INPUT_TOPICS for o in ("processed", "duplicate", "dead_lettered")), 0
        )
        totals.update(self.state.totals)
        for (topic, outcome), value in sorted(totals.items()):
            events.add_metric([topic, outcome], value)
        yield events
        lag = GaugeMetricFamily(
            "livemetrics_consumer_lag",
            "Records behind the end of the partition",
            labels=["topic", "partition"],
        )
        for (topic, partition), value in sorted(self.lag().items()):
            lag.add_metric([topic, str(partition)], value)
        yield lag
        clock = GaugeMetricFamily(
            "livemetrics_event_clock_seconds", "The worker's event clock (unix seconds)"
        )
        clock.add_metric([], self.state.engine.clock_us / 1e6)
        yield clock
        owned = GaugeMetricFamily(
            "livemetrics_owned_partitions", "Input partitions this worker owns", labels=["topic"]
        )
        for topic, count in sorted(self.owned().items()):
            owned.add_metric([topic], count)
        yield owned
        batch = HistogramMetricFamily("livemetrics_batch_seconds", "Time to process one batch")
        batch.add_metric([], self.batch.cumulative(), sum_value=self.batch.total)
        yield batch
        yield from self._redis_health()

    def _redis_health(self) -> Iterator[Metric]:
        health = self.redis()
        if not health:
            return
        for family, name, help_text, key in _REDIS_HEALTH:
            metric = family(name, help_text)
            metric.add_metric([], health[key])
            yield metric


_REDIS_HEALTH: tuple[tuple[Any, str, str, str], ...] = (
    (
        GaugeMetricFamily,
        "livemetrics_redis_up",
        "1 while the worker's Redis writes get through",
        "up",
    ),
    (
        GaugeMetricFamily,
        "livemetrics_redis_pending_snapshots",
        "Snapshots waiting for Redis (latest per conversation and partition)",
        "pending",
    ),
    (
        CounterMetricFamily,
        "livemetrics_redis_write_failures",
        "Redis write attempts that failed",
        "failures",
    ),
    (
        CounterMetricFamily,
        "livemetrics_redis_discarded_snapshots",
        "Snapshots of revoked partitions Redis never got (run livemetrics resync)",
        "discarded",
    ),
)
"""Worker health on its Redis writes (`RedisOutbox`): family, name, help, key of the stats."""


def _effective_policies(policies: Any) -> list[tuple[str | None, Any]]:
    """The policy that applies per (channel or general, kind): the first listed (SPEC §7 [40])."""
    chosen: dict[tuple[str | None, str], Any] = {}
    for policy in policies:
        chosen.setdefault((policy.channel, policy.kind), policy)
    return [(channel, policy) for (channel, _), policy in chosen.items()]


_DISTRIBUTION_SET = frozenset(DISTRIBUTIONS)
__all__ = ["SLA_KINDS", "PrometheusSink"]
