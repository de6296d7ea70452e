"""Where the running embedded stack is: `livemetrics up` writes it, other commands read it.

So `livemetrics produce FILE` and `livemetrics report` work with no flags after
`livemetrics up`. Flags and LIVEMETRICS_* environment variables win.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

STACK_FILE = Path(os.environ.get("LIVEMETRICS_HOME", ".livemetrics")) / "stack.json"


@dataclass(frozen=True, slots=True)
class StackInfo:
    bootstrap: str
    redis_url: str
    web_urls: tuple[str, ...] = ()
    pid: int = 0
    config: str | None = None  # absolute path of the stack's TOML config, if any

    def save(self, path: Path = STACK_FILE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2))

    @classmethod
    def load(cls, path: Path = STACK_FILE) -> StackInfo | None:
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        return cls(
            data["bootstrap"],
            data["redis_url"],
            tuple(data.get("web_urls", ())),
            data.get("pid", 0),
            data.get("config"),
        )


def resolve_bootstrap(flag: str | None) -> str | None:
    return _resolve(flag, "LIVEMETRICS_BOOTSTRAP", "bootstrap")


def resolve_redis_url(flag: str | None) -> str | None:
    return _resolve(flag, "LIVEMETRICS_REDIS_URL", "redis_url")


def resolve_config(flag: str | None) -> str | None:
    """The config file: the flag, LIVEMETRICS_CONFIG, else the running stack's, so a
    worker restarted by hand and `report` bucket days as the stack's workers do."""
    return _resolve(flag, "LIVEMETRICS_CONFIG", "config")


def _resolve(flag: str | None, variable: str, field: str) -> str | None:
    """The flag, else the environment variable, else the running stack's field."""
    if flag:
        return flag
    if os.environ.get(variable):
        return os.environ[variable]
    info = StackInfo.load()
    value: str | None = getattr(info, field) if info else None
    return value
