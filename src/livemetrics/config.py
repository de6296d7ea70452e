"""The TOML config of SPEC §6, read with ``tomllib`` into frozen dataclasses.

Every refusal is a :class:`ConfigError` whose one-line message names the key,
so a typo or an impossible window stops the start with a clear cause (SPEC §6).

    >>> parse_config('[tenants.acme]\\ntimezone = "Europe/Madrid"').tenant("acme").calendar.timezone
    'Europe/Madrid'
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from types import MappingProxyType
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from livemetrics.calendar import ServiceCalendar

__all__ = [
    "SLA_KINDS",
    "Config",
    "ConfigError",
    "SlaPolicy",
    "TenantConfig",
    "load_config",
    "parse_config",
]

SLA_KINDS = ("first_response", "next_response", "resolution")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_TOP_KEYS = ("defaults", "tenants")
_DEFAULTS_KEYS = ("session_gap_seconds", "store_text", "retention_days", "prometheus_tags")
_TENANT_KEYS = ("timezone", "holidays", "session_gap_seconds", "service_hours", "sla")
_SLA_KEYS = ("kind", "target_seconds", "business_hours", "channel")
_WINDOW = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_TOML_POSITION = re.compile(r"^(?P<msg>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$")
_TOML_END = re.compile(r"^(?P<msg>.*) \(at end of document\)$")


class ConfigError(ValueError):
    """A config the service refuses to start with; the message is one line naming the key."""


#: A clock is at risk past this fraction of its target (SPEC §4).
SLA_AT_RISK_FRACTION: Final = 0.8
#: Channels whose policy a tenant keeps per SLA kind (`TenantConfig.sla_policy`);
#: past it, the policy of a new channel is looked up at every clock start.
POLICY_CACHE_CHANNELS: Final = 4096


@dataclass(frozen=True, slots=True)
class SlaPolicy:
    """One SLA target (SPEC §4): wall or business seconds, optionally for one channel."""

    kind: str
    target_seconds: float
    business_hours: bool
    channel: str | None
    #: The target and the at-risk point (SLA_AT_RISK_FRACTION of it) in microseconds,
    #: computed once here, not at every clock start (two `round()` calls each).
    target_us: int = field(init=False, repr=False, compare=False)
    at_risk_us: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        target_us = round(self.target_seconds * 1_000_000)
        object.__setattr__(self, "target_us", target_us)
        object.__setattr__(self, "at_risk_us", round(target_us * SLA_AT_RISK_FRACTION))


@dataclass(frozen=True, slots=True)
class TenantConfig:
    """A tenant's calendar, session gap and SLA policies (SPEC §6)."""

    name: str
    calendar: ServiceCalendar
    session_gap_seconds: float
    sla: tuple[SlaPolicy, ...]
    # kind -> channel -> policy: two lookups of strings, whose hashes are kept
    # (a key of a tuple is built and hashed anew at every clock start). Channels
    # come from the input, so each kind keeps at most POLICY_CACHE_CHANNELS.
    _policy_cache: dict[str, dict[str, SlaPolicy | None]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def sla_policy(self, kind: str, channel: str) -> SlaPolicy | None:
        """The policy of ``kind`` for ``channel``, or ``None`` when there is none.

        SPEC §7 [40]: a channel policy wins over a general one of the same
        kind; among equals the first listed.
        """
        by_channel = self._policy_cache.get(kind)
        if by_channel is None:
            by_channel = self._policy_cache[kind] = {}
        elif channel in by_channel:
            return by_channel[channel]
        general: SlaPolicy | None = None
        chosen: SlaPolicy | None = None
        for policy in self.sla:
            if policy.kind != kind:
                continue
            if policy.channel == channel:
                chosen = policy
                break
            if policy.channel is None and general is None:
                general = policy
        result = chosen if chosen is not None else general
        if len(by_channel) < POLICY_CACHE_CHANNELS:
            by_channel[channel] = result
        return result


@dataclass(frozen=True, slots=True)
class Config:
    """The whole config; ``tenant()`` answers for tenants absent from the file too."""

    session_gap_seconds: float = 1800.0
    store_text: bool = False
    retention_days: float = 7.0
    tenants: Mapping[str, TenantConfig] = field(default_factory=dict)
    prometheus_tag_allow_list: tuple[str, ...] = ()
    _default_tenants: dict[str, TenantConfig] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def tenant(self, name: str) -> TenantConfig:
        """The tenant's config; one absent from the file runs in UTC, no hours, no SLA (SPEC §6)."""
        configured = self.tenants.get(name)
        if configured is not None:
            return configured
        generated = self._default_tenants.get(name)
        if generated is None:
            shared = next(iter(self._default_tenants.values()), None)
            generated = TenantConfig(
                name=name,
                calendar=ServiceCalendar("UTC") if shared is None else shared.calendar,
                session_gap_seconds=self.session_gap_seconds,
                sla=(),
            )
            self._default_tenants[name] = generated
        return generated


def load_config(path: str | os.PathLike[str] | None) -> Config:
    """Read the ``--config`` file; ``None`` gives the defaults."""
    if path is None:
        return Config()
    shown = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise ConfigError(f"config: file not found: {shown}") from None
    except OSError as exc:
        raise ConfigError(f"config: cannot read {shown}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config: {shown} is not UTF-8 text (byte {exc.start})") from None
    return parse_config(text)


def parse_config(text: str) -> Config:
    """Parse and validate config text (SPEC §6); raises :class:`ConfigError`."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(_toml_error_message(exc, text)) from None
    _check_keys(document, _TOP_KEYS, "", "section")
    defaults = _table(document.get("defaults", {}), "defaults")
    _check_keys(defaults, _DEFAULTS_KEYS, "defaults.", "key")
    gap = _positive_number(defaults, "session_gap_seconds", "defaults", 1800)
    store_text = _boolean(defaults, "store_text", "defaults", False)
    retention = _non_negative_number(defaults, "retention_days", "defaults", 7)
    tags = _tag_list(defaults.get("prometheus_tags", []), "defaults.prometheus_tags")
    tenants_table = _table(document.get("tenants", {}), "tenants")
    tenants = {
        name: _tenant(name, _table(body, _key("tenants", name)), gap)
        for name, body in tenants_table.items()
    }
    return Config(
        session_gap_seconds=gap,
        store_text=store_text,
        retention_days=retention,
        tenants=MappingProxyType(tenants),
        prometheus_tag_allow_list=tags,
    )


def _tenant(name: str, body: dict[str, Any], default_gap: float) -> TenantConfig:
    where = _key("tenants", name)
    _check_keys(body, _TENANT_KEYS, where + ".", "key")
    timezone = body.get("timezone", "UTC")
    if not isinstance(timezone, str):
        raise ConfigError(f"config: {where}.timezone: must be a string such as 'Europe/Madrid'")
    if not _is_time_zone(timezone):
        raise ConfigError(f"config: {where}.timezone: unknown time zone {timezone!r}")
    holidays = _holidays(body.get("holidays", []), f"{where}.holidays")
    weekly = _service_hours(body.get("service_hours", {}), f"{where}.service_hours")
    calendar = ServiceCalendar(timezone, weekly, holidays)
    gap = _positive_number(body, "session_gap_seconds", where, default_gap)
    sla = _sla_list(body.get("sla", []), f"{where}.sla", calendar.has_hours)
    return TenantConfig(name=name, calendar=calendar, session_gap_seconds=gap, sla=sla)


def _is_time_zone(key: str) -> bool:
    """An IANA zone that loads; ``right/`` (leap-second) and ``posix/`` copies are refused."""
    try:
        ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    known = _available_time_zones()
    return not known or key in known


@functools.cache
def _available_time_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _holidays(value: object, where: str) -> tuple[dt.date, ...]:
    """Whole local dates (SPEC §7 [14]); TOML dates or ``"YYYY-MM-DD"`` strings."""
    if not isinstance(value, list):
        raise ConfigError(f"config: {where}: must be an array of dates such as ['2026-12-25']")
    days: list[dt.date] = []
    for i, item in enumerate(value):
        if isinstance(item, dt.date) and not isinstance(item, dt.datetime):
            days.append(item)
            continue
        parsed: dt.date | None = None
        if isinstance(item, str) and _ISO_DATE.fullmatch(item):
            try:
                parsed = dt.date.fromisoformat(item)
            except ValueError:
                parsed = None
        if parsed is None:
            shown = repr(item) if isinstance(item, str) else str(item)
            raise ConfigError(f"config: {where}[{i}]: not a date YYYY-MM-DD: {shown}")
        days.append(parsed)
    return tuple(days)


def _service_hours(value: object, where: str) -> dict[int, list[tuple[int, int]]]:
    """Weekly windows ``mon`` .. ``sun`` -> ``["HH:MM-HH:MM", ...]``; missing days are closed."""
    table = _table(value, where)
    weekly: dict[int, list[tuple[int, int]]] = {}
    for day, windows in table.items():
        if day not in WEEKDAYS:
            raise ConfigError(
                f"config: {_key(where, day)}: unknown weekday (expected one of "
                f"{', '.join(WEEKDAYS)})"
            )
        day_where = f"{where}.{day}"
        if not isinstance(windows, list):
            raise ConfigError(
                f"config: {day_where}: must be an array of 'HH:MM-HH:MM' strings, "
                f"e.g. ['07:00-17:00']"
            )
        parsed = [_window(text, f"{day_where}[{i}]") for i, text in enumerate(windows)]
        order = sorted(range(len(parsed)), key=lambda i: parsed[i])
        for before, after in pairwise(order):
            if parsed[after][0] < parsed[before][1]:
                raise ConfigError(
                    f"config: {day_where}[{after}]: window {windows[after]!r} overlaps "
                    f"{windows[before]!r}"
                )
        weekly[WEEKDAYS.index(day)] = sorted(parsed)
    return weekly


def _window(text: object, where: str) -> tuple[int, int]:
    """``"HH:MM-HH:MM"`` -> local seconds of day; ``24:00`` only as an end."""
    match = _WINDOW.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(f"config: {where}: invalid window {text!r} (expected 'HH:MM-HH:MM')")
    sh, sm, eh, em = (int(part) for part in match.groups())
    start, end = sh * 3600 + sm * 60, eh * 3600 + em * 60
    if sm > 59 or em > 59 or start >= 86_400 or end > 86_400:
        raise ConfigError(
            f"config: {where}: impossible window {text!r} "
            f"(times run from 00:00 to 24:00, 24:00 only as an end)"
        )
    if start >= end:
        raise ConfigError(f"config: {where}: impossible window {text!r} (start must be before end)")
    return start, end


def _sla_list(value: object, where: str, has_hours: bool) -> tuple[SlaPolicy, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"config: {where}: must be an array of tables ([[{where}]])")
    return tuple(_sla(item, f"{where}[{i}]", has_hours) for i, item in enumerate(value))


def _sla(value: object, where: str, has_hours: bool) -> SlaPolicy:
    body = _table(value, where)
    _check_keys(body, _SLA_KEYS, where + ".", "key")
    kind = body.get("kind")
    if kind not in SLA_KINDS:
        shown = "missing" if kind is None else f"unknown kind {kind!r}"
        raise ConfigError(f"config: {where}.kind: {shown} (expected one of {', '.join(SLA_KINDS)})")
    if "target_seconds" not in body:
        raise ConfigError(f"config: {where}.target_seconds: missing (a positive number of seconds)")
    target = _positive_number(body, "target_seconds", where, 0)
    business = _boolean(body, "business_hours", where, False)
    if business and not has_hours:
        raise ConfigError(
            f"config: {where}.business_hours: true, but the tenant has no service_hours "
            f"(SPEC §7 [14])"
        )
    channel = body.get("channel")
    if channel is not None and (not isinstance(channel, str) or not channel):
        raise ConfigError(f"config: {where}.channel: must be a non-empty string such as 'chat'")
    return SlaPolicy(kind=kind, target_seconds=target, business_hours=business, channel=channel)


def _tag_list(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"config: {where}: must be an array of tag strings")
    for i, tag in enumerate(value):
        if not isinstance(tag, str) or not tag:
            raise ConfigError(f"config: {where}[{i}]: must be a non-empty string, got {tag!r}")
    return tuple(dict.fromkeys(value))


def _positive_number(body: Mapping[str, object], name: str, where: str, default: float) -> float:
    number = _number(body, name, where, default)
    if number <= 0:
        raise ConfigError(f"config: {where}.{name}: must be a positive number, got {number:g}")
    return number


def _non_negative_number(
    body: Mapping[str, object], name: str, where: str, default: float
) -> float:
    number = _number(body, name, where, default)
    if number < 0:
        raise ConfigError(f"config: {where}.{name}: must not be negative, got {number:g}")
    return number


def _number(body: Mapping[str, object], name: str, where: str, default: float) -> float:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"config: {where}.{name}: must be a number, got {value!r}")
    return float(value)


def _boolean(body: Mapping[str, object], name: str, where: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(f"config: {where}.{name}: must be true or false, got {value!r}")
    return value


def _table(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"config: {where}: must be a table, got {_toml_type(value)}")
    return value


def _check_keys(
    table: Mapping[str, object], allowed: tuple[str, ...], prefix: str, what: str
) -> None:
    """Refuse unknown keys so a typo never passes silently (SPEC §6)."""
    for key in table:
        if key not in allowed:
            shown = prefix + (key if _BARE_KEY.fullmatch(key) else _quote(key))
            raise ConfigError(
                f"config: {shown}: unknown {what} (expected one of {', '.join(allowed)})"
            )


def _key(prefix: str, name: str) -> str:
    """A dotted key as TOML would spell it (quoted when not a bare key)."""
    return f"{prefix}.{name if _BARE_KEY.fullmatch(name) else _quote(name)}"


def _quote(name: str) -> str:
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _toml_error_message(exc: tomllib.TOMLDecodeError, text: str) -> str:
    """``config: line N: <tomllib message>`` for syntax errors."""
    message = str(exc)
    positioned = _TOML_POSITION.match(message)
    if positioned:
        return (
            f"config: line {positioned['line']}: {positioned['msg']} (column {positioned['col']})"
        )
    at_end = _TOML_END.match(message)
    if at_end:
        return f"config: line {text.count(chr(10)) + 1}: {at_end['msg']} (at end of document)"
    return f"config: {message}"
