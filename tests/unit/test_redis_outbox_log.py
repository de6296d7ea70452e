"""Redis errors are logged without the command they quote (it carries customer data)."""

from __future__ import annotations

from redis.exceptions import ConnectionError, ResponseError

from livemetrics.sinks.redis_outbox import describe_error


def test_a_pipeline_error_loses_the_quoted_command() -> None:
    exc = ResponseError(
        'Command # 3 (HSET lm:{acme}:c c-1 [1,2,["cust-9","Paola M.","charged twice"]]) '
        "of pipeline caused error: OOM command not allowed when used memory > 'maxmemory'."
    )
    text = describe_error(exc)
    assert text == "ResponseError: OOM command not allowed when used memory > 'maxmemory'."
    assert "Paola" not in text and "cust-9" not in text


def test_a_pipeline_error_without_its_cause_names_no_command() -> None:
    text = describe_error(ResponseError("Command # 1 (SET lm:clock secret-value) of pipeline"))
    assert "secret-value" not in text
    assert text == "ResponseError: a pipelined command failed"


def test_other_errors_keep_their_text() -> None:
    exc = ConnectionError("Error 111 connecting to 127.0.0.1:6390. Connection refused.")
    assert describe_error(exc) == (
        "ConnectionError: Error 111 connecting to 127.0.0.1:6390. Connection refused."
    )
