"""How the worker keeps its input away from Faust's consumer (no broker needed)."""

from __future__ import annotations

import asyncio
from collections import namedtuple
from typing import Any

import pytest

from livemetrics.stream.input_reader import InputReader
from livemetrics.stream.settings import WorkerSettings
from livemetrics.stream.worker import create_app, keep_input_from_faust

TP = namedtuple("TP", "topic partition")
INPUT = {"chat.events", "chat.agent-status"}


class FaustConsumerStandIn:
    """The two methods of Faust's consumer the worker wraps, recording their calls."""

    def __init__(self) -> None:
        self.resumed: list[set[Any]] = []
        self.verified: list[Any] = []

    def resume_partitions(self, tps: Any) -> None:
        self.resumed.append(set(tps))

    def verify_event_path(self, now: float, tp: Any) -> None:
        self.verified.append(tp)


def test_input_partitions_stay_paused_in_faust() -> None:
    consumer = FaustConsumerStandIn()
    keep_input_from_faust(consumer, INPUT)
    keep_input_from_faust(consumer, INPUT)  # a second assignment wraps nothing twice
    changelog = TP("app-conversations-changelog", 0)
    consumer.resume_partitions([TP("chat.events", 0), TP("chat.agent-status", 1), changelog])
    assert consumer.resumed == [{changelog}]


def test_faust_checks_only_the_partitions_it_fetches() -> None:
    """Its livelock detector would report the input, which Faust no longer fetches."""
    consumer = FaustConsumerStandIn()
    keep_input_from_faust(consumer, INPUT)
    changelog = TP("app-conversations-changelog", 0)
    consumer.verify_event_path(0.0, TP("chat.events", 3))
    consumer.verify_event_path(0.0, changelog)
    assert consumer.verified == [changelog]


def test_the_worker_does_not_leave_its_group_when_faust_fetches_nothing() -> None:
    """aiokafka leaves the group after max_poll_interval without a fetch by Faust's
    consumer, which, once the tables are recovered, fetches nothing at all."""
    app = create_app(WorkerSettings())
    assert app.conf.broker_max_poll_interval >= 24 * 3600


@pytest.mark.asyncio
async def test_a_reader_without_partitions_yields_to_the_loop() -> None:
    """A worker that owns no input (more workers than partitions) must not spin."""
    reader = InputReader("127.0.0.1:1", {})
    ran = asyncio.Event()
    other = asyncio.get_running_loop().call_soon(ran.set)
    assert await reader.read(timeout_ms=20, max_records=10) == []
    assert ran.is_set()
    other.cancel()
