"""The context one event is applied in: its conversation, tenant rules, clock and output list.

Rule modules (messages, sessions, sla, ...) receive a `Context` and never see
the engine, so each stays a small set of pure functions over state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from livemetrics.calendar import ServiceCalendar
from livemetrics.config import TenantConfig
from livemetrics.engine.outputs import Folder, Observation, Output
from livemetrics.engine.state import Conversation
from livemetrics.engine.timers import TimerQueue

#: Timer kinds the engine's queue knows (`timers.TimerQueue`).
TIMER_SESSION: Final = 0
TIMER_SLA_RISK: Final = 1
TIMER_SLA_BREACH: Final = 2
TIMER_RETENTION: Final = 3


@dataclass(slots=True)
class Context:
    conv: Conversation
    tenant: TenantConfig
    calendar: ServiceCalendar
    out: list[Output]
    event_id: str | None
    clock_us: int
    gap_us: int
    retention_us: int
    store_text: bool
    timers: TimerQueue  # where rules schedule (due_us, conversation key, timer kind, ref)
    folder: Folder | None  # where observations nobody keeps go, when not to `out`

    def observe(
        self,
        metric: str,
        value: int | float,  # as given (see `Observation.value`)
        ts_us: int,
        agents: tuple[str, ...] = (),
        tag: str | None = None,
        dims: tuple[str | None, ...] | None = None,
    ) -> None:
        """One observation in the bucket of `ts_us` with the current dimensions (or
        `dims`, when the caller credits other ones): to the folder when there is
        one (`outputs.Folder`), else appended to the output list."""
        day, hour = self.calendar.local_bucket(ts_us)
        if dims is None:
            dims = self.conv.dims(tag)
        folder = self.folder
        if folder is None:
            self.out.append(
                Observation(metric, value, ts_us, day, hour, dims, agents, 1, self.event_id)
            )
        else:
            folder.fold(metric, value, 1, day, hour, dims, agents)

    def observe_kept(
        self,
        metric: str,
        value: int | float,
        ts_us: int,
        agents: tuple[str, ...] = (),
        dims: tuple[str | None, ...] | None = None,
    ) -> Observation:
        """As `observe`, always appended as an `Observation`, which is returned: for
        a caller that keeps it, to retract or rename it later."""
        day, hour = self.calendar.local_bucket(ts_us)
        if dims is None:
            dims = self.conv.dims(None)
        obs = Observation(metric, value, ts_us, day, hour, dims, agents, 1, self.event_id)
        self.out.append(obs)
        return obs

    def count(self, metric: str, ts_us: int, agent: str | None = None) -> None:
        """A counter observation credited to one agent (or none)."""
        self.observe(metric, 1, ts_us, (agent,) if agent else ())

    def retract(self, obs: Observation) -> None:
        self.out.append(obs.retraction())

    def last_agent_credit(self) -> tuple[str, ...]:
        agent = self.conv.last_agent
        return (agent,) if agent else ()


def seconds(later_us: int, earlier_us: int) -> float:
    """A duration in seconds, clamped at 0 (SPEC §1 edge rules)."""
    diff = later_us - earlier_us
    return diff / 1_000_000 if diff > 0 else 0.0
