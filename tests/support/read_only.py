"""A check that a value class of the core is read-only, in the build that runs."""

from __future__ import annotations

import dataclasses
import sys
import typing

import pytest


def assert_read_only(item: object) -> None:
    """Every field of `item`'s dataclass is `Final`, so mypy refuses a write anywhere.

    Plain Python: read from the source's annotations. Compiled: mypyc replaces
    those annotations, and its native class refuses every write at run time.
    """
    cls = type(item)
    names = [field.name for field in dataclasses.fields(cls)]
    module_file = sys.modules[cls.__module__].__file__ or ""
    if not module_file.endswith(".py"):  # the compiled extension
        for name in names:
            with pytest.raises(AttributeError):
                setattr(item, name, None)
        return
    hints = typing.get_type_hints(cls, include_extras=True)
    assert list(hints) == names
    assert all(typing.get_origin(hint) is typing.Final for hint in hints.values())
