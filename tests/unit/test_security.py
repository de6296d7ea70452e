"""Security settings from the environment: Kafka, Redis, the web server, redaction.

Every supported combination gives the client settings the libraries expect
(Faust's own conversion of `faust_broker_credentials` must equal
`kafka_client_options`); every combination that cannot work is refused with
one line naming the variable; secrets never survive `redact`. The TLS
contexts are real: a throwaway CA, server and client certificates are made
with the `openssl` command, and the web context is exercised by a real aiohttp
server and client (mutual TLS refuses a client without a certificate).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from livemetrics.config import ConfigError
from livemetrics.security import (
    REDACTED,
    SecurityConfigError,
    api_token,
    faust_broker_credentials,
    kafka_client_options,
    redact,
    redis_client_options,
    web_ssl_context,
)
from tests.support.pki import Pki, make_pki

K = "LIVEMETRICS_KAFKA_"
R = "LIVEMETRICS_REDIS_"
W = "LIVEMETRICS_WEB_"
GOOD_TOKEN = "tok_9fQx2LmA7vR3sK8wZ1yB"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


# --- Kafka ------------------------------------------------------------------


def test_kafka_defaults_to_plaintext() -> None:
    assert kafka_client_options({}) == {"security_protocol": "PLAINTEXT"}
    assert kafka_client_options({f"{K}SECURITY_PROTOCOL": "plaintext"}) == {
        "security_protocol": "PLAINTEXT"
    }
    assert faust_broker_credentials({}) is None


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", None])
def test_kafka_sasl_plaintext_gives_mechanism_and_credentials(mechanism: str | None) -> None:
    env = {
        f"{K}SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        f"{K}SASL_USERNAME": "livemetrics",
        f"{K}SASL_PASSWORD": "pw-1",
    }
    if mechanism is not None:
        env[f"{K}SASL_MECHANISM"] = mechanism.lower()
    options = kafka_client_options(env)
    assert options == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism or "PLAIN",
        "sasl_plain_username": "livemetrics",
        "sasl_plain_password": "pw-1",
    }
    assert _faust_view(env) == {**options, "ssl_context": None}


def test_kafka_ssl_verifies_the_broker_with_the_given_ca(pki: Pki) -> None:
    env = {f"{K}SECURITY_PROTOCOL": "SSL", f"{K}SSL_CAFILE": str(pki.ca)}
    options = kafka_client_options(env)
    assert set(options) == {"security_protocol", "ssl_context"}
    context = options["ssl_context"]
    assert options["security_protocol"] == "SSL"
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert any(
        cert["subject"] == ((("commonName", "test-ca"),),) for cert in context.get_ca_certs()
    )
    assert _faust_view(env)["security_protocol"] == "SSL"


def test_kafka_ssl_without_a_ca_file_uses_the_system_trust_store() -> None:
    context = kafka_client_options({f"{K}SECURITY_PROTOCOL": "SSL"})["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


@pytest.mark.parametrize("combined", [False, True])
def test_kafka_mutual_tls_loads_the_client_certificate(pki: Pki, combined: bool) -> None:
    env = {
        f"{K}SECURITY_PROTOCOL": "SSL",
        f"{K}SSL_CAFILE": str(pki.ca),
        f"{K}SSL_CERTFILE": str(pki.combined if combined else pki.client_cert),
    }
    if not combined:
        env[f"{K}SSL_KEYFILE"] = str(pki.client_key)
    assert isinstance(kafka_client_options(env)["ssl_context"], ssl.SSLContext)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_kafka_sasl_ssl_gives_credentials_and_a_context(pki: Pki, mechanism: str) -> None:
    env = {
        f"{K}SECURITY_PROTOCOL": "SASL_SSL",
        f"{K}SASL_MECHANISM": mechanism,
        f"{K}SASL_USERNAME": "lm",
        f"{K}SASL_PASSWORD": "pw-2",
        f"{K}SSL_CAFILE": str(pki.ca),
    }
    options = kafka_client_options(env)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == mechanism
    assert options["sasl_plain_password"] == "pw-2"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    faust_view = _faust_view(env)
    assert faust_view["security_protocol"] == "SASL_SSL"
    assert {k: v for k, v in faust_view.items() if k != "ssl_context"} == {
        k: v for k, v in options.items() if k != "ssl_context"
    }
    assert isinstance(faust_view["ssl_context"], ssl.SSLContext)


def _faust_view(env: dict[str, str]) -> dict[str, Any]:
    """What Faust's aiokafka driver makes of our credentials object."""
    return dict(credentials_to_aiokafka_auth(faust_broker_credentials(env)))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({f"{K}SECURITY_PROTOCOL": "TLS"}, "LIVEMETRICS_KAFKA_SECURITY_PROTOCOL='TLS' is not one"),
        (
            {f"{K}SECURITY_PROTOCOL": "SASL_SSL", f"{K}SASL_PASSWORD": "x"},
            "LIVEMETRICS_KAFKA_SASL_USERNAME is required",
        ),
        (
            {f"{K}SECURITY_PROTOCOL": "SASL_PLAINTEXT", f"{K}SASL_USERNAME": "u"},
            "LIVEMETRICS_KAFKA_SASL_PASSWORD is required",
        ),
        (
            {
                f"{K}SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                f"{K}SASL_MECHANISM": "GSSAPI",
                f"{K}SASL_USERNAME": "u",
                f"{K}SASL_PASSWORD": "p",
            },
            "LIVEMETRICS_KAFKA_SASL_MECHANISM='GSSAPI' is not one",
        ),
        (
            {f"{K}SASL_USERNAME": "u", f"{K}SASL_PASSWORD": "p"},
            "LIVEMETRICS_KAFKA_SASL_USERNAME is set but LIVEMETRICS_KAFKA_SECURITY_PROTOCOL "
            "is PLAINTEXT",
        ),
        (
            {f"{K}SECURITY_PROTOCOL": "SSL", f"{K}SASL_PASSWORD": "p"},
            "LIVEMETRICS_KAFKA_SASL_PASSWORD is set but",
        ),
        (
            {f"{K}SECURITY_PROTOCOL": "SSL", f"{K}SASL_MECHANISM": "PLAIN"},
            "set it to SASL_SSL or SASL_PLAINTEXT",
        ),
        (
            {f"{K}SECURITY_PROTOCOL": "SASL_PLAINTEXT", f"{K}SSL_CAFILE": "ca.pem"},
            "LIVEMETRICS_KAFKA_SSL_CAFILE is set but LIVEMETRICS_KAFKA_SECURITY_PROTOCOL "
            "is SASL_PLAINTEXT",
        ),
        (
            {f"{K}SECURITY_PROTOCOL": "SSL", f"{K}SSL_CAFILE": "/nonexistent/ca.pem"},
            "LIVEMETRICS_KAFKA_SSL_CAFILE: no such file: /nonexistent/ca.pem",
        ),
    ],
)
def test_kafka_refuses_inconsistent_combinations(env: dict[str, str], message: str) -> None:
    with pytest.raises(SecurityConfigError) as refused:
        kafka_client_options(env)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)
    with pytest.raises(SecurityConfigError):
        faust_broker_credentials(env)


def test_kafka_refuses_a_key_without_its_certificate_and_unreadable_pem(pki: Pki) -> None:
    with pytest.raises(SecurityConfigError, match="SSL_KEYFILE is set without"):
        kafka_client_options(
            {f"{K}SECURITY_PROTOCOL": "SSL", f"{K}SSL_KEYFILE": str(pki.client_key)}
        )
    with pytest.raises(SecurityConfigError, match="cannot load the CA, certificate or key"):
        kafka_client_options({f"{K}SECURITY_PROTOCOL": "SSL", f"{K}SSL_CAFILE": str(pki.garbage)})
    with pytest.raises(SecurityConfigError, match="cannot load"):
        kafka_client_options(
            {
                f"{K}SECURITY_PROTOCOL": "SSL",
                f"{K}SSL_CERTFILE": str(pki.client_cert),
                f"{K}SSL_KEYFILE": str(pki.other_client_key),  # not this certificate's key
            }
        )


def test_security_errors_are_config_errors_so_the_cli_prints_one_line() -> None:
    assert issubclass(SecurityConfigError, ConfigError)


def test_empty_variables_count_as_unset() -> None:
    env = {f"{K}SECURITY_PROTOCOL": "", f"{K}SASL_USERNAME": "", f"{K}SSL_CAFILE": ""}
    assert kafka_client_options(env) == {"security_protocol": "PLAINTEXT"}


# --- Redis ------------------------------------------------------------------


def test_redis_plain_url_with_acl_user() -> None:
    env = {f"{R}USERNAME": "livemetrics", f"{R}PASSWORD": "pw-3"}
    assert redis_client_options(env, "redis://127.0.0.1:6379/0") == {
        "username": "livemetrics",
        "password": "pw-3",
    }
    assert redis_client_options({f"{R}PASSWORD": "pw"}, "redis://h/0") == {"password": "pw"}
    assert redis_client_options({}, "redis://h/0") == {}


def test_redis_url_comes_from_the_environment_by_default(pki: Pki) -> None:
    env = {"LIVEMETRICS_REDIS_URL": "rediss://127.0.0.1:6380/0", f"{R}SSL_CAFILE": str(pki.ca)}
    assert redis_client_options(env)["ssl_ca_certs"] == str(pki.ca)


def test_redis_tls_verifies_the_server_and_presents_a_client_certificate(pki: Pki) -> None:
    env = {
        f"{R}SSL_CAFILE": str(pki.ca),
        f"{R}SSL_CERTFILE": str(pki.client_cert),
        f"{R}SSL_KEYFILE": str(pki.client_key),
        f"{R}USERNAME": "lm",
        f"{R}PASSWORD": "pw-4",
    }
    options = redis_client_options(env, "rediss://127.0.0.1:6380/0")
    assert options == {
        "username": "lm",
        "password": "pw-4",
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
        "ssl_ca_certs": str(pki.ca),
        "ssl_certfile": str(pki.client_cert),
        "ssl_keyfile": str(pki.client_key),
    }
    import redis.asyncio as aioredis

    client = aioredis.from_url("rediss://127.0.0.1:6380/0", **options)  # accepted as is
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["ssl_ca_certs"] == str(pki.ca)
    assert kwargs["ssl_cert_reqs"] == "required"
    asyncio.run(client.aclose())


def test_redis_tls_without_ca_file_still_verifies() -> None:
    options = redis_client_options({}, "rediss://cache.example:6380/0")
    assert options == {"ssl_cert_reqs": "required", "ssl_check_hostname": True}


def test_redis_refuses_inconsistent_combinations(pki: Pki) -> None:
    with pytest.raises(SecurityConfigError, match=r"LIVEMETRICS_REDIS_SSL_CAFILE is set but"):
        redis_client_options({f"{R}SSL_CAFILE": str(pki.ca)}, "redis://127.0.0.1:6379/0")
    with pytest.raises(SecurityConfigError, match="USERNAME is set without"):
        redis_client_options({f"{R}USERNAME": "lm"}, "redis://h/0")
    with pytest.raises(SecurityConfigError, match="keep the credentials in one place"):
        redis_client_options({f"{R}PASSWORD": "a"}, "redis://lm:b@h/0")
    with pytest.raises(SecurityConfigError, match="SSL_KEYFILE is set without"):
        redis_client_options({f"{R}SSL_KEYFILE": str(pki.client_key)}, "rediss://h/0")
    with pytest.raises(SecurityConfigError, match="no such file"):
        redis_client_options({f"{R}SSL_CAFILE": "/nonexistent.pem"}, "rediss://h/0")


# --- web --------------------------------------------------------------------


def test_api_token() -> None:
    assert api_token({}) is None
    assert api_token({"LIVEMETRICS_API_TOKEN": ""}) is None
    assert api_token({"LIVEMETRICS_API_TOKEN": GOOD_TOKEN}) == GOOD_TOKEN
    with pytest.raises(SecurityConfigError, match="at least 16"):
        api_token({"LIVEMETRICS_API_TOKEN": "secret"})
    with pytest.raises(SecurityConfigError, match="visible ASCII"):
        api_token({"LIVEMETRICS_API_TOKEN": "a token with spaces in it"})
    with pytest.raises(SecurityConfigError, match="visible ASCII"):
        api_token({"LIVEMETRICS_API_TOKEN": "töken-töken-töken-töken"})


def test_web_without_certificate_is_plain_http() -> None:
    assert web_ssl_context({}) is None


def test_web_refuses_key_or_client_ca_without_certificate(pki: Pki) -> None:
    with pytest.raises(SecurityConfigError, match="SSL_KEYFILE is set without"):
        web_ssl_context({f"{W}SSL_KEYFILE": str(pki.server_key)})
    with pytest.raises(SecurityConfigError, match="SSL_CLIENT_CAFILE is set without"):
        web_ssl_context({f"{W}SSL_CLIENT_CAFILE": str(pki.ca)})
    with pytest.raises(SecurityConfigError, match="cannot load"):
        web_ssl_context({f"{W}SSL_CERTFILE": str(pki.garbage)})


def test_web_tls_only_serves_https(pki: Pki) -> None:
    context = web_ssl_context(
        {f"{W}SSL_CERTFILE": str(pki.server_cert), f"{W}SSL_KEYFILE": str(pki.server_key)}
    )
    assert context is not None
    assert context.verify_mode == ssl.CERT_NONE  # no client certificate asked for
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert asyncio.run(_fetch(context, pki, client_cert=False)) == 200


def test_web_mutual_tls_requires_a_client_certificate_from_the_ca(pki: Pki) -> None:
    context = web_ssl_context(
        {
            f"{W}SSL_CERTFILE": str(pki.server_cert),
            f"{W}SSL_KEYFILE": str(pki.server_key),
            f"{W}SSL_CLIENT_CAFILE": str(pki.ca),
        }
    )
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert asyncio.run(_fetch(context, pki, client_cert=True)) == 200
    assert asyncio.run(_fetch(context, pki, client_cert=False)) == "refused"
    assert asyncio.run(_fetch(context, pki, client_cert=True, intruder=True)) == "refused"


async def _fetch(
    server_context: ssl.SSLContext, pki: Pki, *, client_cert: bool, intruder: bool = False
) -> int | str:
    """GET /metrics from a real aiohttp server using `server_context`; status or 'refused'."""

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text="livemetrics_up 1\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context)
    await site.start()
    port = runner.addresses[0][1]
    client_context = ssl.create_default_context(cafile=str(pki.ca))
    if client_cert:
        cert, key = (
            (pki.other_client_cert, pki.other_client_key)
            if intruder
            else (pki.client_cert, pki.client_key)
        )
        client_context.load_cert_chain(str(cert), str(key))
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"https://127.0.0.1:{port}/metrics", ssl=client_context) as response,
        ):
            await response.read()
            return response.status
    except (aiohttp.ClientError, ssl.SSLError, ConnectionError):
        return "refused"
    finally:
        await runner.cleanup()


# --- redaction --------------------------------------------------------------


def test_redact_hides_secrets_and_keeps_the_rest(pki: Pki) -> None:
    env = {
        f"{K}SECURITY_PROTOCOL": "SASL_SSL",
        f"{K}SASL_USERNAME": "lm",
        f"{K}SASL_PASSWORD": "hunter2-kafka",
        f"{K}SSL_CAFILE": str(pki.ca),
        "LIVEMETRICS_API_TOKEN": GOOD_TOKEN,
        "LIVEMETRICS_REDIS_URL": "redis://lm:hunter2-redis@127.0.0.1:6379/0",
        f"{R}PASSWORD": "hunter2-acl",
        "LIVEMETRICS_CLIENT_SECRET": "hunter2-secret",
    }
    shown = redact(env)
    assert shown[f"{K}SASL_PASSWORD"] == REDACTED
    assert shown["LIVEMETRICS_API_TOKEN"] == REDACTED
    assert shown[f"{R}PASSWORD"] == REDACTED
    assert shown["LIVEMETRICS_CLIENT_SECRET"] == REDACTED
    assert shown["LIVEMETRICS_REDIS_URL"] == "redis://lm:***@127.0.0.1:6379/0"
    assert shown[f"{K}SASL_USERNAME"] == "lm"
    assert shown[f"{K}SECURITY_PROTOCOL"] == "SASL_SSL"
    assert shown[f"{K}SSL_CAFILE"] == str(pki.ca)
    text = repr(shown)
    assert "hunter2" not in text
    assert GOOD_TOKEN not in text
    assert env["LIVEMETRICS_API_TOKEN"] == GOOD_TOKEN  # the input is left alone


def test_redact_client_options_and_nested_settings(pki: Pki) -> None:
    options = kafka_client_options(
        {
            f"{K}SECURITY_PROTOCOL": "SASL_SSL",
            f"{K}SASL_USERNAME": "lm",
            f"{K}SASL_PASSWORD": "hunter2",
            f"{K}SSL_CAFILE": str(pki.ca),
        }
    )
    settings = {
        "kafka": options,
        "broker_credentials": faust_broker_credentials(
            {
                f"{K}SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                f"{K}SASL_USERNAME": "lm",
                f"{K}SASL_PASSWORD": "hunter2",
            }
        ),
        "headers": {"Authorization": f"Bearer {GOOD_TOKEN}"},
        "redis_url": "rediss://:hunter2@[::1]:6380/0",
        "bootstrap": "kafka://broker:9093",
        "retries": 3,
        "password": None,
    }
    shown = redact(settings)
    assert shown["kafka"]["sasl_plain_password"] == REDACTED
    assert shown["kafka"]["ssl_context"] == "<SSLContext>"
    assert shown["broker_credentials"] == REDACTED  # its key names a credential
    assert shown["headers"]["Authorization"] == REDACTED
    assert shown["redis_url"] == "rediss://:***@[::1]:6380/0"
    assert shown["bootstrap"] == "kafka://broker:9093"
    assert shown["retries"] == 3
    assert shown["password"] is None
    assert "hunter2" not in repr(shown)
    assert GOOD_TOKEN not in repr(shown)
    assert redact({"creds": faust_broker_credentials({f"{K}SECURITY_PROTOCOL": "SSL"})}) == {
        "creds": "<SSLCredentials>"
    }


@pytest.fixture
def no_livemetrics_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Functions take the environment as an argument: the process's own never leaks in."""
    import os

    for name in list(os.environ):
        if name.startswith("LIVEMETRICS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv(f"{K}SECURITY_PROTOCOL", "SSL")
    yield


def test_functions_read_only_the_mapping_they_are_given(no_livemetrics_env: None) -> None:
    assert kafka_client_options({}) == {"security_protocol": "PLAINTEXT"}


# --- Prometheus label cardinality -------------------------------------------


def test_prometheus_labels_stay_bounded_under_a_flood_of_distinct_values() -> None:
    """1000 distinct tenants, channels, teams, tags, customers and conversations: label
    values stay within the caps and allow-lists (SPEC §3 "bounded labels only"), and no
    customer, conversation or free-form tag becomes a label."""
    from prometheus_client.parser import text_string_to_metric_families

    from livemetrics.config import parse_config
    from livemetrics.engine.outputs import DIM_FIELDS, DIM_INDEX, Observation
    from livemetrics.sinks.prometheus import (
        KNOWN_CHANNELS,
        MAX_TEAMS,
        MAX_TENANTS,
        OTHER,
        PrometheusSink,
    )
    from livemetrics.stream.processor import LiveProcessor

    config = parse_config('[defaults]\nprometheus_tags = ["vip", "refund"]\n')

    sink = PrometheusSink(config, LiveProcessor(config))  # a processor's state: empty
    metrics = ("conversations_started", "tag_count", "first_response_seconds", "csat_score")
    for i in range(1000):
        dims: list[str | None] = [None] * len(DIM_FIELDS)
        dims[DIM_INDEX["tenant"]] = f"tenant-{i}"
        dims[DIM_INDEX["channel"]] = f"channel-{i}" if i % 2 else "chat"
        dims[DIM_INDEX["team"]] = f"team-{i}"
        dims[DIM_INDEX["tag"]] = f"CANARY-tag-{i}" if i % 3 else "vip"
        dims[DIM_INDEX["customer"]] = f"cust-{i}"
        dims[DIM_INDEX["conversation"]] = f"conv-{i}"
        for metric in metrics:
            sink.observe(Observation(metric, 4.0, 0, "2026-10-23", "10", tuple(dims), (f"ag-{i}",)))

    values: dict[str, set[str]] = {}
    series = 0
    for family in text_string_to_metric_families(sink.exposition().decode()):
        if not family.name.startswith("livemetrics_"):
            continue
        for sample in family.samples:
            series += 1
            for label, value in sample.labels.items():
                values.setdefault(label, set()).add(value)
    assert len(values["tenant"]) <= MAX_TENANTS + 1
    assert len(values["team"]) <= MAX_TEAMS + 1
    assert OTHER in values["team"] and OTHER in values["tenant"]
    assert values["channel"] <= KNOWN_CHANNELS | {OTHER, "", "*"}
    assert values["tag"] <= {"vip", "refund", OTHER}
    assert not {"customer", "conversation", "agent", "customer_id"} & values.keys()
    every_value = set().union(*values.values())
    assert not {v for v in every_value if v.startswith(("cust-", "conv-", "CANARY", "ag-"))}
    # bounded, but not small: every tenant x channel x team combination seeds each counter
    assert series < 100_000
