"""The worker's web security settings, end to end, against a real `livemetrics worker`.

`livemetrics.security` is unit-tested on its own; here the environment
variables go to a real worker process (real broker and redis-server, the
session fixtures of `conftest.py`) and are checked from outside, the way
Prometheus or an attacker would see them:

- HTTPS with mutual TLS and an API token: no client certificate, or one from
  another CA, is refused at the TLS layer; a good certificate without the
  token gets 401; certificate and token get the metrics; plain HTTP gets
  nothing;
- settings that cannot protect anything (a short token, a client CA without a
  server certificate) stop the worker at once with one line naming the
  variable (exit 2, like a bad config file), never a worker that runs open.

Certificates are throwaway ones made with the `openssl` command (skipped
without it), the same way as `tests/unit/test_security.py`.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from livemetrics.simulate.streams import STREAM_CONFIG
from livemetrics.stack.broker import EmbeddedBroker
from livemetrics.stack.ports import free_port
from tests.support.pki import Pki, make_pki

pytestmark = pytest.mark.integration

TOKEN = "lm-integration-token-0123456789abcdef"
READY_TIMEOUT = 60.0
EXIT_TIMEOUT = 30.0  # a refused setting must stop the worker long before this
EXIT_USAGE = 2  # livemetrics.cli: a ConfigError exits 2
HTTP_TIMEOUT = 5.0


# --- certificates -------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """One CA for the server and the good client, another for an intruder (made once)."""
    return make_pki(tmp_path_factory.mktemp("pki"))


# --- the worker process -------------------------------------------------------


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    web_port: int
    stdout: Path
    stderr: Path

    def log(self) -> str:
        """Both streams, for assertion messages (the tail: the start is rarely the story)."""
        out = self.stdout.read_text(errors="replace")[-4000:]
        err = self.stderr.read_text(errors="replace")[-4000:]
        return f"--- worker stdout\n{out}\n--- worker stderr\n{err}"


@contextmanager
def _worker(
    tmp_path: Path, broker: EmbeddedBroker, redis_url: str, security: Mapping[str, str]
) -> Iterator[Worker]:
    """`python -m livemetrics.cli worker` with `security` in its environment; always stopped.

    Inherited LIVEMETRICS_* variables are dropped so the developer's shell cannot
    change what is tested. The worker gets its own process group, stopped with
    SIGTERM, then SIGKILL if it lingers.
    """
    config = tmp_path / "config.toml"
    config.write_text(STREAM_CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEMETRICS_")}
    env.update(security)
    web_port = free_port()
    stdout, stderr = tmp_path / "worker.out.log", tmp_path / "worker.err.log"
    argv = [
        sys.executable, "-m", "livemetrics.cli", "worker",
        "--bootstrap", broker.bootstrap,
        "--redis-url", redis_url,
        "--config", str(config),
        "--app-id", f"livemetrics-security-{web_port}",
        "--web-port", str(web_port),
        "--data-dir", str(tmp_path / "worker"),
    ]  # fmt: skip
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err, env=env, start_new_session=True)
    try:
        yield Worker(process, web_port, stdout, stderr)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


# --- HTTP ---------------------------------------------------------------------


def _client_context(pki: Pki, cert: tuple[Path, Path] | None) -> ssl.SSLContext:
    """Trusts only the test CA and checks the hostname (127.0.0.1 is in the server's SAN)."""
    context = ssl.create_default_context(cafile=str(pki.ca))
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    return context


def _https_get(
    port: int, path: str, context: ssl.SSLContext, token: str | None = None
) -> tuple[int, str]:
    """Status and body of one HTTPS GET; TLS and connection failures propagate."""
    connection = http.client.HTTPSConnection(
        "127.0.0.1", port, context=context, timeout=HTTP_TIMEOUT
    )
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def _wait_ready(worker: Worker, context: ssl.SSLContext) -> str:
    """Poll `/metrics` with certificate and token until 200; the body. Fails with the log."""
    deadline = time.monotonic() + READY_TIMEOUT
    last = "no attempt"
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            pytest.fail(
                f"worker exited ({worker.process.returncode}) before serving\n{worker.log()}"
            )
        try:
            status, body = _https_get(worker.web_port, "/metrics", context, TOKEN)
        except (OSError, http.client.HTTPException) as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if status == 200:
                return body
            last = f"HTTP {status}: {body[:200]}"
        time.sleep(0.5)
    pytest.fail(
        f"/metrics not served over mTLS within {READY_TIMEOUT:g} s ({last})\n{worker.log()}"
    )


def _tls12_handshake(port: int, context: ssl.SSLContext) -> str:
    """Complete a TLS 1.2 handshake only (no HTTP); the negotiated version.

    In TLS 1.2 the server asks for and verifies the client certificate inside
    the handshake, so a refusal must fail right here. (In TLS 1.3 the client
    finishes its side first and learns of the refusal on its first read.)
    """
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        return str(tls.version())


def _assert_tls_refused(worker: Worker, pki: Pki, cert: tuple[Path, Path] | None, why: str) -> None:
    """Refused by TLS: the TLS 1.2 handshake fails, and a TLS 1.3 request gets no HTTP status.

    A refused TCP connection would mean the server is gone, which proves
    nothing, so it fails the test.
    """
    with pytest.raises((ssl.SSLError, ConnectionError)) as handshake:
        _tls12_handshake(worker.web_port, _client_context(pki, cert))
    assert not isinstance(handshake.value, ConnectionRefusedError), f"{why}: server gone"
    try:
        status, body = _https_get(worker.web_port, "/metrics", _client_context(pki, cert), TOKEN)
    except (ssl.SSLError, ConnectionError) as exc:  # asyncio closes without an alert
        assert not isinstance(exc, ConnectionRefusedError), f"{why}: server gone\n{worker.log()}"
        return
    pytest.fail(f"{why}: got HTTP {status} instead of a TLS refusal: {body[:200]}")


# --- tests --------------------------------------------------------------------


def test_mutual_tls_and_token_guard_metrics(
    tmp_path: Path, broker: EmbeddedBroker, redis_url: str, pki: Pki
) -> None:
    """Certificate AND token are both needed: either alone must not reach the metrics."""
    security = {
        "LIVEMETRICS_WEB_SSL_CERTFILE": str(pki.server_cert),
        "LIVEMETRICS_WEB_SSL_KEYFILE": str(pki.server_key),
        "LIVEMETRICS_WEB_SSL_CLIENT_CAFILE": str(pki.ca),
        "LIVEMETRICS_API_TOKEN": TOKEN,
    }
    client = (pki.client_cert, pki.client_key)
    good = _client_context(pki, client)
    with _worker(tmp_path, broker, redis_url, security) as worker:
        body = _wait_ready(worker, good)
        assert "livemetrics_input_events_total" in body, body[:2000]

        # control: the good certificate passes a TLS 1.2 handshake, so the failures
        # below are the certificate's, not the protocol version's
        assert _tls12_handshake(worker.web_port, _client_context(pki, client)) == "TLSv1.2"
        _assert_tls_refused(worker, pki, None, "no client certificate")
        intruder = (pki.other_client_cert, pki.other_client_key)
        _assert_tls_refused(worker, pki, intruder, "client certificate from another CA")

        status, body = _https_get(worker.web_port, "/metrics", good)
        assert status == 401, f"no token: HTTP {status} {body[:200]}"
        assert "livemetrics_" not in body
        status, body = _https_get(worker.web_port, "/metrics", good, "x" * len(TOKEN))
        assert status == 401, f"wrong token: HTTP {status} {body[:200]}"
        status, body = _https_get(worker.web_port, "/api/v1/openapi.json", good)
        assert status == 401, f"API without token: HTTP {status} {body[:200]}"
        status, body = _https_get(worker.web_port, "/api/v1/openapi.json", good, TOKEN)
        assert status == 200, f"API with token: HTTP {status} {body[:200]}\n{worker.log()}"

        # plain HTTP to the TLS port, even with the right token: no metrics
        plain = http.client.HTTPConnection("127.0.0.1", worker.web_port, timeout=HTTP_TIMEOUT)
        try:
            plain.request("GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            response = plain.getresponse()
            answer = response.read().decode(errors="replace")
            assert response.status != 200, f"plain HTTP served: {answer[:200]}"
            assert "livemetrics_input_events_total" not in answer
        except (OSError, http.client.HTTPException):
            pass  # dropped or garbled: what a TLS-only port should do
        finally:
            plain.close()

        # the refusals above came from a live server, not a dead one
        status, body = _https_get(worker.web_port, "/metrics", good, TOKEN)
        assert status == 200 and "livemetrics_input_events_total" in body, worker.log()
        assert worker.process.poll() is None, worker.log()


def _assert_refused_at_start(worker: Worker, variable: str, secret: str | None = None) -> str:
    """The worker exits 2 quickly with one `livemetrics: ...` line naming `variable`."""
    try:
        code = worker.process.wait(timeout=EXIT_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"worker still running after {EXIT_TIMEOUT:g} s\n{worker.log()}")
    assert code == EXIT_USAGE, f"exit {code}, expected {EXIT_USAGE}\n{worker.log()}"
    output = worker.stderr.read_text(errors="replace") + worker.stdout.read_text(errors="replace")
    assert "Traceback" not in output, worker.log()
    errors = [line for line in output.splitlines() if line.startswith("livemetrics: ")]
    assert len(errors) == 1, f"expected one error line\n{worker.log()}"
    assert variable in errors[0], errors[0]
    if secret is not None:
        assert secret not in output, "the refused token was echoed"
    return errors[0]


def test_short_api_token_refuses_to_start(
    tmp_path: Path, broker: EmbeddedBroker, redis_url: str
) -> None:
    """A guessable token looks like protection and is not: the worker must not run with it."""
    secret = "tooShort9"
    with _worker(tmp_path, broker, redis_url, {"LIVEMETRICS_API_TOKEN": secret}) as worker:
        line = _assert_refused_at_start(worker, "LIVEMETRICS_API_TOKEN", secret)
        assert "16" in line, line  # says how long it must be


def test_client_ca_without_server_certificate_refuses_to_start(
    tmp_path: Path, broker: EmbeddedBroker, redis_url: str, pki: Pki
) -> None:
    """mTLS asked for but no server certificate: must not fall back to plain HTTP."""
    security = {"LIVEMETRICS_WEB_SSL_CLIENT_CAFILE": str(pki.ca)}
    with _worker(tmp_path, broker, redis_url, security) as worker:
        line = _assert_refused_at_start(worker, "LIVEMETRICS_WEB_SSL_CERTFILE")
        assert "LIVEMETRICS_WEB_SSL_CLIENT_CAFILE" in line, line
