"""The TOML config (SPEC §6, §7 [14], [40]): the example parses, every refusal names its key."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from livemetrics.config import (
    POLICY_CACHE_CHANNELS,
    SLA_KINDS,
    Config,
    ConfigError,
    SlaPolicy,
    load_config,
    parse_config,
)

H = 3600
S = 1_000_000

SPEC_EXAMPLE = """
[defaults]
session_gap_seconds = 1800
store_text = false            # keep no message text anywhere unless true

[tenants.acme]
timezone = "Europe/Madrid"
holidays = ["2026-12-25"]
session_gap_seconds = 900     # optional per-tenant override

[tenants.acme.service_hours]
mon = ["07:00-17:00"]
tue = ["07:00-17:00"]
wed = ["07:00-17:00"]
thu = ["07:00-17:00"]
fri = ["07:00-13:00", "14:00-17:00"]

[[tenants.acme.sla]]
kind = "first_response"       # first_response | next_response | resolution
target_seconds = 60
business_hours = false
channel = "chat"              # optional: applies to this channel only
"""


def local_us(tz: str, *fields: int) -> int:
    """UTC microseconds of local ``(year, month, day[, hour, minute, second])``."""
    year, month, day, hour, minute, second = (*fields, 0, 0, 0)[:6]
    local = dt.datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(tz))
    return round(local.timestamp()) * S


def tenant_toml(body: str, name: str = "acme") -> str:
    return f"[tenants.{name}]\n{body}\n"


def refused(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    message = str(info.value)
    assert message.startswith("config: ")
    assert "\n" not in message
    return message


# -- the SPEC §6 example --------------------------------------------------------


def test_spec_example_parses_to_expected_values() -> None:
    config = parse_config(SPEC_EXAMPLE)
    assert config.session_gap_seconds == 1800
    assert config.store_text is False
    assert config.retention_days == 7
    assert config.prometheus_tag_allow_list == ()
    acme = config.tenant("acme")
    assert acme.name == "acme"
    assert acme.session_gap_seconds == 900
    assert acme.calendar.timezone == "Europe/Madrid"
    assert acme.calendar.has_hours
    assert acme.sla == (
        SlaPolicy(kind="first_response", target_seconds=60.0, business_hours=False, channel="chat"),
    )
    assert isinstance(acme.sla[0].target_seconds, float)


def test_spec_example_calendar_has_the_split_friday_and_the_holiday() -> None:
    cal = parse_config(SPEC_EXAMPLE).tenant("acme").calendar
    tz = "Europe/Madrid"
    friday = (2026, 11, 20)
    assert cal.business_us(local_us(tz, *friday, 0), local_us(tz, *friday, 23)) == 9 * H * S
    assert not cal.is_open(local_us(tz, *friday, 13, 30))
    assert not cal.is_open(local_us(tz, 2026, 12, 25, 10))  # Friday, holiday
    assert not cal.is_open(local_us(tz, 2026, 11, 21, 10))  # Saturday: missing day
    assert (
        cal.business_us(local_us(tz, 2026, 11, 16, 6, 59, 55), local_us(tz, 2026, 11, 16, 7, 0, 5))
        == 5 * S
    )


def test_no_path_gives_defaults() -> None:
    config = load_config(None)
    assert config == Config()
    assert config.session_gap_seconds == 1800
    assert config.store_text is False
    assert config.retention_days == 7


def test_load_config_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "livemetrics.toml"
    path.write_text(SPEC_EXAMPLE, encoding="utf-8")
    assert load_config(path).tenant("acme").session_gap_seconds == 900
    assert load_config(str(path)).tenant("acme").session_gap_seconds == 900


def test_missing_file_is_refused_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"^config: file not found: .*nope\.toml$"):
        load_config(path)


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[tenants.caf\xe9]\ntimezone = "UTC"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_empty_config_is_all_defaults() -> None:
    assert parse_config("") == Config()


def test_defaults_section_values() -> None:
    config = parse_config(
        "[defaults]\nsession_gap_seconds = 600.5\nstore_text = true\nretention_days = 0\n"
        'prometheus_tags = ["vip", "billing", "vip"]\n'
    )
    assert config.session_gap_seconds == 600.5
    assert config.store_text is True
    assert config.retention_days == 0
    assert config.prometheus_tag_allow_list == ("vip", "billing")


def test_tenant_inherits_the_default_session_gap() -> None:
    config = parse_config("[defaults]\nsession_gap_seconds = 1200\n" + tenant_toml(""))
    assert config.tenant("acme").session_gap_seconds == 1200


def test_tenant_without_timezone_runs_in_utc() -> None:
    acme = parse_config(tenant_toml("")).tenant("acme")
    assert acme.calendar.timezone == "UTC"
    assert not acme.calendar.has_hours


def test_windows_may_end_at_24_00_and_be_listed_out_of_order() -> None:
    cal = (
        parse_config(
            tenant_toml('[tenants.acme.service_hours]\nsat = ["20:00-24:00", "7:00-9:30"]')
        )
        .tenant("acme")
        .calendar
    )
    saturday = (2026, 11, 21)
    assert cal.business_us(local_us("UTC", *saturday, 0), local_us("UTC", 2026, 11, 22, 0)) == (
        (4 * H + 150 * 60) * S
    )


def test_holidays_accept_toml_dates_and_strings() -> None:
    text = tenant_toml(
        'holidays = [2026-12-25, "2027-01-01"]\n[tenants.acme.service_hours]\nfri = ["09:00-17:00"]'
    )
    cal = parse_config(text).tenant("acme").calendar
    assert not cal.is_open(local_us("UTC", 2026, 12, 25, 10))
    assert not cal.is_open(local_us("UTC", 2027, 1, 1, 10))
    assert cal.is_open(local_us("UTC", 2027, 1, 8, 10))


# -- tenants missing from the file (SPEC §6) -------------------------------------


def test_missing_tenant_runs_in_utc_without_hours_or_sla() -> None:
    config = parse_config("[defaults]\nsession_gap_seconds = 1000\n")
    other = config.tenant("globex")
    assert other.name == "globex"
    assert other.calendar.timezone == "UTC"
    assert not other.calendar.has_hours
    assert other.sla == ()
    assert other.session_gap_seconds == 1000
    assert other.sla_policy("first_response", "chat") is None
    assert config.tenant("globex") is other
    assert config.tenant("initech").name == "initech"


# -- SLA policy choice (SPEC §7 [40]) ----------------------------------------------

POLICIES = tenant_toml(
    """
[tenants.acme.service_hours]
mon = ["09:00-17:00"]

[[tenants.acme.sla]]
kind = "first_response"
target_seconds = 300

[[tenants.acme.sla]]
kind = "first_response"
target_seconds = 60
channel = "chat"

[[tenants.acme.sla]]
kind = "first_response"
target_seconds = 30
channel = "chat"

[[tenants.acme.sla]]
kind = "first_response"
target_seconds = 600

[[tenants.acme.sla]]
kind = "resolution"
target_seconds = 86400
business_hours = true
"""
)


def test_channel_policy_wins_over_general_one() -> None:
    acme = parse_config(POLICIES).tenant("acme")
    chosen = acme.sla_policy("first_response", "chat")
    assert chosen is not None
    assert chosen.target_seconds == 60  # first of the equal channel policies


def test_general_policy_applies_to_other_channels_first_listed_wins() -> None:
    acme = parse_config(POLICIES).tenant("acme")
    chosen = acme.sla_policy("first_response", "email")
    assert chosen is not None
    assert chosen.target_seconds == 300
    assert chosen.channel is None


def test_kind_without_policy_has_none() -> None:
    acme = parse_config(POLICIES).tenant("acme")
    assert acme.sla_policy("next_response", "chat") is None
    resolution = acme.sla_policy("resolution", "sms")
    assert resolution is not None
    assert resolution.business_hours is True
    assert acme.sla_policy("resolution", "sms") is resolution


def test_policies_of_unbounded_channels_keep_bounded_memory_and_stay_right() -> None:
    """Channels come from the input: the cache stops growing, the answers do not change."""
    acme = parse_config(POLICIES).tenant("acme")
    extra = 50
    channels = [f"channel-{n}" for n in range(POLICY_CACHE_CHANNELS + extra)]
    for channel in channels:
        chosen = acme.sla_policy("first_response", channel)
        assert chosen is not None and chosen.target_seconds == 300
    assert len(acme._policy_cache["first_response"]) == POLICY_CACHE_CHANNELS
    chat = acme.sla_policy("first_response", "chat")  # a channel policy past the bound
    assert chat is not None and chat.channel == "chat" and chat.target_seconds == 60
    assert len(acme._policy_cache["first_response"]) == POLICY_CACHE_CHANNELS


# -- refusals: every message names its key -----------------------------------------


def test_toml_syntax_error_names_the_line() -> None:
    message = refused("[defaults]\nstore_text = false\nsession_gap_seconds = \n")
    assert message.startswith("config: line 3: ")


def test_toml_error_at_end_of_document_names_a_line() -> None:
    message = refused('[tenants.acme]\ntimezone = "UTC')
    assert message.startswith("config: line ")


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[default]\nstore_text = true\n", "config: default: unknown section"),
        ("store_text = true\n", "config: store_text: unknown section"),
        ("[defaults]\nsession_gap = 60\n", "config: defaults.session_gap: unknown key"),
        (tenant_toml("time_zone = 'UTC'"), "config: tenants.acme.time_zone: unknown key"),
        (
            tenant_toml(
                "[[tenants.acme.sla]]\nkind = 'resolution'\ntarget_seconds = 1\ntarget = 2"
            ),
            "config: tenants.acme.sla[0].target: unknown key",
        ),
    ],
)
def test_unknown_sections_and_keys_are_refused(text: str, key: str) -> None:
    assert refused(text).startswith(key)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[defaults]\nsession_gap_seconds = 0\n", "defaults.session_gap_seconds"),
        ("[defaults]\nsession_gap_seconds = -5\n", "defaults.session_gap_seconds"),
        ("[defaults]\nsession_gap_seconds = '1800'\n", "defaults.session_gap_seconds"),
        ("[defaults]\nsession_gap_seconds = true\n", "defaults.session_gap_seconds"),
        ("[defaults]\nsession_gap_seconds = inf\n", "defaults.session_gap_seconds"),
        ("[defaults]\nstore_text = 'no'\n", "defaults.store_text"),
        ("[defaults]\nstore_text = 0\n", "defaults.store_text"),
        ("[defaults]\nretention_days = -1\n", "defaults.retention_days"),
        ("[defaults]\nprometheus_tags = 'vip'\n", "defaults.prometheus_tags"),
        ("[defaults]\nprometheus_tags = ['vip', 3]\n", "defaults.prometheus_tags[1]"),
        ("defaults = 3\n", "defaults"),
        ("tenants = 3\n", "tenants"),
        ("[tenants]\nacme = 3\n", "tenants.acme"),
        (tenant_toml("session_gap_seconds = 0"), "tenants.acme.session_gap_seconds"),
        (tenant_toml("timezone = 1"), "tenants.acme.timezone"),
        (tenant_toml("holidays = '2026-12-25'"), "tenants.acme.holidays"),
        (tenant_toml("service_hours = ['07:00-17:00']"), "tenants.acme.service_hours"),
        (
            tenant_toml('[tenants.acme.service_hours]\nmon = "07:00-17:00"'),
            "tenants.acme.service_hours.mon",
        ),
    ],
)
def test_wrong_types_are_refused(text: str, key: str) -> None:
    assert refused(text).startswith(f"config: {key}: ")


@pytest.mark.parametrize(
    "zone",
    ["Mars/Base", "", "../etc/passwd", "/etc/passwd", "Europe", "Europe/", "right/UTC", "zone.tab"],
)
def test_unknown_timezone_is_refused(zone: str) -> None:
    message = refused(tenant_toml(f'timezone = "{zone}"'))
    assert message == f"config: tenants.acme.timezone: unknown time zone {zone!r}"


def test_unknown_timezone_names_a_quoted_tenant() -> None:
    message = refused('[tenants."acme.es"]\ntimezone = "Mars/Base"\n')
    assert message.startswith('config: tenants."acme.es".timezone: ')


@pytest.mark.parametrize(
    ("window", "why"),
    [
        ("14:00-13:00", "start must be before end"),
        ("13:00-13:00", "start must be before end"),
        ("24:00-24:00", "00:00 to 24:00"),
        ("07:00-24:30", "00:00 to 24:00"),
        ("25:00-26:00", "00:00 to 24:00"),
        ("07:60-17:00", "00:00 to 24:00"),
    ],
)
def test_impossible_window_is_refused(window: str, why: str) -> None:
    text = tenant_toml(f'[tenants.acme.service_hours]\nfri = ["07:00-09:00", "{window}"]')
    message = refused(text)
    assert message.startswith(
        f"config: tenants.acme.service_hours.fri[1]: impossible window '{window}'"
    )
    assert why in message


def test_spec_style_impossible_window_message() -> None:
    text = tenant_toml('[tenants.acme.service_hours]\nfri = ["07:00-13:00", "14:00-13:00"]')
    assert refused(text) == (
        "config: tenants.acme.service_hours.fri[1]: impossible window '14:00-13:00' "
        "(start must be before end)"
    )


@pytest.mark.parametrize("window", ["7-17", "07:00", "07:00-17", "0700-1700", "morning", ""])
def test_window_syntax_is_checked(window: str) -> None:
    text = tenant_toml(f'[tenants.acme.service_hours]\nmon = ["{window}"]')
    assert refused(text).startswith(
        f"config: tenants.acme.service_hours.mon[0]: invalid window '{window}'"
    )


def test_window_that_is_not_a_string_is_refused() -> None:
    text = tenant_toml("[tenants.acme.service_hours]\nmon = [700]")
    assert refused(text).startswith("config: tenants.acme.service_hours.mon[0]: invalid window")


def test_overlapping_windows_in_one_day_are_refused() -> None:
    text = tenant_toml('[tenants.acme.service_hours]\nfri = ["12:00-15:00", "07:00-13:00"]')
    assert refused(text) == (
        "config: tenants.acme.service_hours.fri[0]: window '12:00-15:00' overlaps '07:00-13:00'"
    )


def test_touching_windows_are_accepted() -> None:
    text = tenant_toml('[tenants.acme.service_hours]\nfri = ["07:00-13:00", "13:00-17:00"]')
    assert parse_config(text).tenant("acme").calendar.has_hours


@pytest.mark.parametrize("day", ["monday", "Mon", "sat2", "weekend"])
def test_unknown_weekday_is_refused(day: str) -> None:
    text = tenant_toml(f'[tenants.acme.service_hours]\n{day} = ["07:00-17:00"]')
    assert refused(text).startswith(f"config: tenants.acme.service_hours.{day}: unknown weekday")


@pytest.mark.parametrize(
    "holiday",
    [
        '"2026-02-30"',
        '"Christmas"',
        '"2026-12-25T00:00:00"',
        '"20261225"',
        "2026-12-25T10:00:00",
        "25",
    ],
)
def test_invalid_holiday_is_refused(holiday: str) -> None:
    text = tenant_toml(f'holidays = ["2026-12-24", {holiday}]')
    assert refused(text).startswith("config: tenants.acme.holidays[1]: not a date YYYY-MM-DD")


def sla_toml(body: str, hours: bool = True) -> str:
    service_hours = '[tenants.acme.service_hours]\nmon = ["09:00-17:00"]\n' if hours else ""
    return tenant_toml(service_hours + "[[tenants.acme.sla]]\n" + body)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("kind = 'first_reply'\ntarget_seconds = 60", "tenants.acme.sla[0].kind"),
        ("target_seconds = 60", "tenants.acme.sla[0].kind"),
        ("kind = 'resolution'", "tenants.acme.sla[0].target_seconds"),
        ("kind = 'resolution'\ntarget_seconds = 0", "tenants.acme.sla[0].target_seconds"),
        ("kind = 'resolution'\ntarget_seconds = -60", "tenants.acme.sla[0].target_seconds"),
        ("kind = 'resolution'\ntarget_seconds = '60'", "tenants.acme.sla[0].target_seconds"),
        ("kind = 'resolution'\ntarget_seconds = true", "tenants.acme.sla[0].target_seconds"),
        (
            "kind = 'resolution'\ntarget_seconds = 60\nbusiness_hours = 'yes'",
            "tenants.acme.sla[0].business_hours",
        ),
        ("kind = 'resolution'\ntarget_seconds = 60\nchannel = ''", "tenants.acme.sla[0].channel"),
        ("kind = 'resolution'\ntarget_seconds = 60\nchannel = 5", "tenants.acme.sla[0].channel"),
    ],
)
def test_bad_sla_entries_are_refused(body: str, key: str) -> None:
    assert refused(sla_toml(body)).startswith(f"config: {key}: ")


def test_unknown_sla_kind_lists_the_known_ones() -> None:
    message = refused(sla_toml("kind = 'first_reply'\ntarget_seconds = 60"))
    assert all(kind in message for kind in SLA_KINDS)


def test_second_sla_entry_is_named_by_index() -> None:
    text = sla_toml(
        "kind = 'resolution'\ntarget_seconds = 60\n"
        "[[tenants.acme.sla]]\nkind = 'x'\ntarget_seconds = 1"
    )
    assert refused(text).startswith("config: tenants.acme.sla[1].kind: ")


def test_business_hours_sla_without_service_hours_is_refused() -> None:
    message = refused(
        sla_toml("kind = 'first_response'\ntarget_seconds = 60\nbusiness_hours = true", hours=False)
    )
    assert message.startswith("config: tenants.acme.sla[0].business_hours: ")
    assert "no service_hours" in message


def test_business_hours_sla_with_only_empty_days_is_refused() -> None:
    text = tenant_toml(
        "[tenants.acme.service_hours]\nmon = []\n[[tenants.acme.sla]]\n"
        "kind = 'resolution'\ntarget_seconds = 60\nbusiness_hours = true"
    )
    assert refused(text).startswith("config: tenants.acme.sla[0].business_hours: ")


def test_sla_must_be_an_array_of_tables() -> None:
    text = tenant_toml("[tenants.acme.sla]\nkind = 'resolution'\ntarget_seconds = 60")
    assert refused(text).startswith("config: tenants.acme.sla: must be an array of tables")


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)
