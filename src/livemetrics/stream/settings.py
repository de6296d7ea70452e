"""Worker settings: where the broker and Redis are, batching and timing knobs."""

from __future__ import annotations

import os
from dataclasses import dataclass

from livemetrics.security import api_token


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    config_path: str | None = None
    app_id: str = "livemetrics"
    web_port: int = 6066
    web_host: str = "127.0.0.1"
    batch_size: int = 2000
    batch_within: float = 0.1  # seconds a batch waits to fill
    tick_seconds: float = 0.5  # clock and idle flushes
    gauges_seconds: float = 2.0  # live gauge snapshots to Redis and livemetrics.live
    input_check_seconds: float = 5.0  # read back applied records (stream/input_check.py)
    session_timeout: float = 6.0  # broker_session_timeout: Tansu joins in ~half of it
    live_window_seconds: float = 120.0  # events this close to the wall clock count as live
    data_dir: str = ".livemetrics/worker"
    api_token: str | None = None  # when set, /metrics and the HTTP API need it (Bearer)

    @classmethod
    def from_env(cls, **overrides: object) -> WorkerSettings:
        """Defaults, then LIVEMETRICS_* environment variables, then explicit overrides."""
        env = {
            "bootstrap": os.environ.get("LIVEMETRICS_BOOTSTRAP"),
            "redis_url": os.environ.get("LIVEMETRICS_REDIS_URL"),
            "config_path": os.environ.get("LIVEMETRICS_CONFIG"),
            "app_id": os.environ.get("LIVEMETRICS_APP_ID"),
            "api_token": api_token(os.environ),  # refused when too short to protect
            "web_host": os.environ.get("LIVEMETRICS_WEB_HOST"),
        }
        values: dict[str, object] = {k: v for k, v in env.items() if v}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]
