"""Client and server security settings from `LIVEMETRICS_*` environment variables.

Pure functions (no I/O but reading the certificate files named): the worker,
the CLI and `resync` call them and hand the results to aiokafka, Faust, redis
and aiohttp. A combination that cannot work (SASL credentials with an SSL-only
protocol, a key without its certificate, TLS files for a plain `redis://`
URL) is refused at start with a `SecurityConfigError` naming the variable and
the fix, never discovered at the first connection. Secrets never reach a log:
pass anything you print through `redact`.

    >>> kafka_client_options({})
    {'security_protocol': 'PLAINTEXT'}
    >>> redact({"sasl_plain_password": "s3cret", "sasl_plain_username": "lm"})
    {'sasl_plain_password': '***', 'sasl_plain_username': 'lm'}

Kafka (aiokafka keyword arguments; Faust gets the same through
`faust_broker_credentials` for `broker_credentials`):

==========================================  =========================================
variable                                    meaning
==========================================  =========================================
``LIVEMETRICS_KAFKA_SECURITY_PROTOCOL``     PLAINTEXT (default), SSL, SASL_SSL,
                                            SASL_PLAINTEXT
``LIVEMETRICS_KAFKA_SASL_MECHANISM``        PLAIN (default with SASL), SCRAM-SHA-256,
                                            SCRAM-SHA-512
``LIVEMETRICS_KAFKA_SASL_USERNAME``         required with SASL_*
``LIVEMETRICS_KAFKA_SASL_PASSWORD``         required with SASL_*
``LIVEMETRICS_KAFKA_SSL_CAFILE``            CA bundle (default: the system's)
``LIVEMETRICS_KAFKA_SSL_CERTFILE``          client certificate (mutual TLS)
``LIVEMETRICS_KAFKA_SSL_KEYFILE``           its private key (if not inside the certfile)
==========================================  =========================================

Redis: ``LIVEMETRICS_REDIS_USERNAME`` / ``_PASSWORD`` (ACL user), and with a
``rediss://`` URL ``LIVEMETRICS_REDIS_SSL_CAFILE``, ``_CERTFILE``, ``_KEYFILE``.
Web (the worker's `/metrics` and HTTP API): ``LIVEMETRICS_API_TOKEN`` (Bearer),
``LIVEMETRICS_WEB_SSL_CERTFILE`` / ``_KEYFILE`` (HTTPS) and
``LIVEMETRICS_WEB_SSL_CLIENT_CAFILE`` (mutual TLS: a client certificate signed
by that CA is required).
"""

from __future__ import annotations

import os
import re
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from livemetrics.config import ConfigError

__all__ = [
    "KAFKA_MECHANISMS",
    "KAFKA_PROTOCOLS",
    "MIN_API_TOKEN_LENGTH",
    "REDACTED",
    "SecurityConfigError",
    "api_token",
    "faust_broker_credentials",
    "kafka_client_options",
    "redact",
    "redis_client_options",
    "web_ssl_context",
]

KAFKA_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT")
KAFKA_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
MIN_API_TOKEN_LENGTH = 16
REDACTED = "***"

_KAFKA = "LIVEMETRICS_KAFKA_"
_REDIS = "LIVEMETRICS_REDIS_"
_WEB = "LIVEMETRICS_WEB_"
_SASL_VARS = ("SASL_MECHANISM", "SASL_USERNAME", "SASL_PASSWORD")
_SSL_VARS = ("SSL_CAFILE", "SSL_CERTFILE", "SSL_KEYFILE")
_TOKEN_CHARS = re.compile(r"[\x21-\x7e]+")  # visible ASCII: it travels in an HTTP header
_SECRET_NAME = re.compile(r"pass(word)?|secret|token|credential|api_?key|auth", re.IGNORECASE)


class SecurityConfigError(ConfigError):
    """Security settings that cannot work together; one line naming the variable and the fix.

    A `ConfigError`, so the CLI shows it like a bad config file (exit 2).
    """


# --- Kafka ------------------------------------------------------------------


def kafka_client_options(env: Mapping[str, str]) -> dict[str, Any]:
    """aiokafka client keyword arguments (`AIOKafkaConsumer(**options)`) from `env`.

        >>> kafka_client_options({"LIVEMETRICS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        ...     "LIVEMETRICS_KAFKA_SASL_USERNAME": "lm",
        ...     "LIVEMETRICS_KAFKA_SASL_PASSWORD": "pw"})["sasl_mechanism"]
        'PLAIN'

    Keys: ``security_protocol`` always; ``ssl_context`` (from
    `aiokafka.helpers.create_ssl_context`, hostname checked, system CAs unless
    a CA file is given) with SSL and SASL_SSL; ``sasl_mechanism``,
    ``sasl_plain_username``, ``sasl_plain_password`` with SASL_* (aiokafka
    uses the same two for SCRAM).
    """
    protocol = _kafka_protocol(env)
    sasl = protocol.startswith("SASL_")
    tls = protocol.endswith("SSL")
    _refuse_unused(env, _KAFKA, _SASL_VARS, sasl, protocol, "SASL_SSL or SASL_PLAINTEXT")
    _refuse_unused(env, _KAFKA, _SSL_VARS, tls, protocol, "SSL or SASL_SSL")
    options: dict[str, Any] = {"security_protocol": protocol}
    if tls:
        options["ssl_context"] = _kafka_ssl_context(env)
    if sasl:
        options.update(_kafka_sasl(env, protocol))
    return options


def faust_broker_credentials(env: Mapping[str, str]) -> Any:
    """`faust.App(broker_credentials=...)` for `env`: SASLCredentials, SSLCredentials or None.

    Faust turns it into exactly the aiokafka options `kafka_client_options` gives
    (`faust.transport.drivers.aiokafka.credentials_to_aiokafka_auth`), so the
    worker and the standalone clients (`produce`, `status`, `resync`) agree.
    """
    import faust

    options = kafka_client_options(env)
    protocol = options["security_protocol"]
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(options["ssl_context"])
    return faust.SASLCredentials(
        username=options["sasl_plain_username"],
        password=options["sasl_plain_password"],
        ssl_context=options.get("ssl_context"),
        mechanism=options["sasl_mechanism"],
    )


def _kafka_protocol(env: Mapping[str, str]) -> str:
    name = f"{_KAFKA}SECURITY_PROTOCOL"
    raw = _get(env, name)
    if raw is None:
        return "PLAINTEXT"
    protocol = raw.upper()
    if protocol not in KAFKA_PROTOCOLS:
        raise SecurityConfigError(f"{name}={raw!r} is not one of {', '.join(KAFKA_PROTOCOLS)}")
    return protocol


def _kafka_sasl(env: Mapping[str, str], protocol: str) -> dict[str, Any]:
    mechanism_name = f"{_KAFKA}SASL_MECHANISM"
    raw = _get(env, mechanism_name) or "PLAIN"
    mechanism = raw.upper()
    if mechanism not in KAFKA_MECHANISMS:
        raise SecurityConfigError(
            f"{mechanism_name}={raw!r} is not one of {', '.join(KAFKA_MECHANISMS)}"
        )
    values = {}
    for field in ("USERNAME", "PASSWORD"):
        name = f"{_KAFKA}SASL_{field}"
        value = _get(env, name)
        if value is None:
            raise SecurityConfigError(
                f"{name} is required with {_KAFKA}SECURITY_PROTOCOL={protocol}"
            )
        values[field] = value
    return {
        "sasl_mechanism": mechanism,
        "sasl_plain_username": values["USERNAME"],
        "sasl_plain_password": values["PASSWORD"],
    }


def _kafka_ssl_context(env: Mapping[str, str]) -> ssl.SSLContext:
    from aiokafka.helpers import create_ssl_context

    cafile, certfile, keyfile = (_file(env, f"{_KAFKA}{var}") for var in _SSL_VARS)
    if keyfile is not None and certfile is None:
        raise SecurityConfigError(
            f"{_KAFKA}SSL_KEYFILE is set without {_KAFKA}SSL_CERTFILE: "
            "a client key needs its certificate"
        )
    try:
        context: ssl.SSLContext = create_ssl_context(
            cafile=cafile, certfile=certfile, keyfile=keyfile
        )
    except (ssl.SSLError, OSError) as exc:
        raise SecurityConfigError(
            f"{_KAFKA}SSL_*: cannot load the CA, certificate or key: {_one_line(exc)}"
        ) from None
    return context


# --- Redis ------------------------------------------------------------------


def redis_client_options(env: Mapping[str, str], url: str | None = None) -> dict[str, Any]:
    """Keyword arguments for `redis.asyncio.from_url(url, **options)` from `env`.

    `url` defaults to ``LIVEMETRICS_REDIS_URL``. ``username`` / ``password``
    come from ``LIVEMETRICS_REDIS_USERNAME`` / ``_PASSWORD`` (Redis 6 ACL;
    a password alone authenticates as ``default``); refused when the URL holds
    a password too (one place only). TLS needs a ``rediss://`` URL: the
    server certificate is verified (``ssl_cert_reqs="required"``, hostname
    checked) against ``LIVEMETRICS_REDIS_SSL_CAFILE`` or the system's CAs, and
    ``_CERTFILE`` / ``_KEYFILE`` present a client certificate.
    """
    url = url if url is not None else _get(env, "LIVEMETRICS_REDIS_URL")
    parts = urlsplit(url) if url else None
    tls = parts is not None and parts.scheme == "rediss"
    options: dict[str, Any] = {}
    username = _get(env, f"{_REDIS}USERNAME")
    password = _get(env, f"{_REDIS}PASSWORD")
    if parts is not None and parts.password and (username or password):
        raise SecurityConfigError(
            f"the Redis URL holds a password and {_REDIS}USERNAME/PASSWORD are set: "
            "keep the credentials in one place (the variables, not the URL)"
        )
    if username is not None and password is None:
        raise SecurityConfigError(f"{_REDIS}USERNAME is set without {_REDIS}PASSWORD")
    if username is not None:
        options["username"] = username
    if password is not None:
        options["password"] = password
    files = {var: _file(env, f"{_REDIS}{var}") for var in _SSL_VARS}
    if not tls:
        named = [f"{_REDIS}{var}" for var, path in files.items() if path is not None]
        if named:
            raise SecurityConfigError(
                f"{named[0]} is set but the Redis URL is not rediss://: "
                "use a rediss:// URL for TLS, or unset it"
            )
        return options
    if files["SSL_KEYFILE"] is not None and files["SSL_CERTFILE"] is None:
        raise SecurityConfigError(
            f"{_REDIS}SSL_KEYFILE is set without {_REDIS}SSL_CERTFILE: "
            "a client key needs its certificate"
        )
    options["ssl_cert_reqs"] = "required"
    options["ssl_check_hostname"] = True
    if files["SSL_CAFILE"] is not None:
        options["ssl_ca_certs"] = files["SSL_CAFILE"]
    if files["SSL_CERTFILE"] is not None:
        options["ssl_certfile"] = files["SSL_CERTFILE"]
        if files["SSL_KEYFILE"] is not None:
            options["ssl_keyfile"] = files["SSL_KEYFILE"]
    return options


# --- web --------------------------------------------------------------------


def api_token(env: Mapping[str, str]) -> str | None:
    """The Bearer token `/metrics` and the HTTP API require (``LIVEMETRICS_API_TOKEN``), or None.

    Refused when shorter than `MIN_API_TOKEN_LENGTH` or not visible ASCII (it
    travels in an ``Authorization`` header): a guessable token is worse than
    none because it looks like protection. Generate one with
    ``python -c 'import secrets; print(secrets.token_urlsafe(32))'``.
    """
    name = "LIVEMETRICS_API_TOKEN"
    token = env.get(name)
    if token is None or token == "":
        return None
    if not _TOKEN_CHARS.fullmatch(token):
        raise SecurityConfigError(
            f"{name} must be visible ASCII without spaces (it goes in an HTTP header)"
        )
    if len(token) < MIN_API_TOKEN_LENGTH:
        raise SecurityConfigError(
            f"{name} is {len(token)} characters, at least {MIN_API_TOKEN_LENGTH} are required: "
            "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return token


def web_ssl_context(env: Mapping[str, str]) -> ssl.SSLContext | None:
    """The server TLS context of the worker's web server (Faust ``web_ssl_context``), or None.

    ``LIVEMETRICS_WEB_SSL_CERTFILE`` (+ ``_KEYFILE`` unless the key is inside)
    turns on HTTPS (TLS 1.2 at least). ``LIVEMETRICS_WEB_SSL_CLIENT_CAFILE``
    adds mutual TLS: a client must present a certificate signed by that CA
    (``verify_mode = CERT_REQUIRED``), so Prometheus scrapes with its own
    ``tls_config`` cert and nothing else can connect. A client CA without a
    server certificate is refused.
    """
    certfile = _file(env, f"{_WEB}SSL_CERTFILE")
    keyfile = _file(env, f"{_WEB}SSL_KEYFILE")
    client_ca = _file(env, f"{_WEB}SSL_CLIENT_CAFILE")
    if certfile is None:
        for name, value in (
            (f"{_WEB}SSL_KEYFILE", keyfile),
            (f"{_WEB}SSL_CLIENT_CAFILE", client_ca),
        ):
            if value is not None:
                raise SecurityConfigError(
                    f"{name} is set without {_WEB}SSL_CERTFILE: the server needs a certificate"
                )
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile, keyfile)
        if client_ca is not None:
            context.load_verify_locations(cafile=client_ca)
    except (ssl.SSLError, OSError) as exc:
        raise SecurityConfigError(
            f"{_WEB}SSL_*: cannot load the certificate, key or client CA: {_one_line(exc)}"
        ) from None
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
    return context


# --- redaction --------------------------------------------------------------


def redact(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `mapping` safe to log: secrets become ``***``.

    A value is secret when its key names one (password, secret, token,
    credential, api key, auth; any case, e.g. ``sasl_plain_password``,
    ``LIVEMETRICS_API_TOKEN``). URLs keep everything but their password
    (``redis://lm:***@host:6379/0``). Nested mappings are redacted too; SSL
    contexts and credential objects show only their type.
    """
    return {key: _redact_value(key, value) for key, value in mapping.items()}


def _redact_value(key: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        return redact(value)
    if value is None:
        return None
    if _SECRET_NAME.search(str(key)):
        return REDACTED
    if isinstance(value, ssl.SSLContext):
        return f"<{type(value).__name__}>"
    if type(value).__name__.endswith("Credentials"):
        return f"<{type(value).__name__}>"
    if isinstance(value, str) and "://" in value:
        return _redact_url(value)
    return value


def _redact_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    if not password:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{user}:{REDACTED}@{host}" + (f":{port}" if port is not None else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


# --- helpers ----------------------------------------------------------------


def _get(env: Mapping[str, str], name: str) -> str | None:
    """The variable's value; unset and empty (``VAR=``) both mean absent."""
    value = env.get(name)
    return value if value else None


def _file(env: Mapping[str, str], name: str) -> str | None:
    path = _get(env, name)
    if path is None:
        return None
    if not Path(path).is_file():
        raise SecurityConfigError(f"{name}: no such file: {path}")
    if not os.access(path, os.R_OK):
        raise SecurityConfigError(f"{name}: cannot read {path}")
    return path


def _refuse_unused(
    env: Mapping[str, str],
    prefix: str,
    names: tuple[str, ...],
    used: bool,
    protocol: str,
    needs: str,
) -> None:
    """Refuse settings the protocol would silently ignore (a password sent nowhere, a CA unused)."""
    if used:
        return
    for var in names:
        if _get(env, f"{prefix}{var}") is not None:
            raise SecurityConfigError(
                f"{prefix}{var} is set but {prefix}SECURITY_PROTOCOL is {protocol}: "
                f"set it to {needs}, or unset {prefix}{var}"
            )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
