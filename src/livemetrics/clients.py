"""Kafka and Redis clients with the environment's security settings, built in one place.

Every command that talks to a broker or Redis (worker, produce, simulate,
status, report, resync, the wall board view) takes its client options from
here, so `LIVEMETRICS_KAFKA_*` / `LIVEMETRICS_REDIS_*` (see
`livemetrics.security`) apply everywhere alike. Options are read at call time:
a bad combination fails the command at start with one line.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import redis.asyncio as aioredis

from livemetrics.security import kafka_client_options, redis_client_options


def kafka_options(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """aiokafka keyword arguments (security protocol, TLS context, SASL) from `env`."""
    return kafka_client_options(os.environ if env is None else env)


def redis_options(url: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """`redis.asyncio.from_url` keyword arguments (ACL user, TLS) for `url` from `env`."""
    return redis_client_options(os.environ if env is None else env, url)


def redis_client(url: str, env: Mapping[str, str] | None = None, **extra: Any) -> aioredis.Redis:
    """An asyncio Redis client for `url` with the security options of `env`."""
    return aioredis.from_url(url, **redis_options(url, env), **extra)
