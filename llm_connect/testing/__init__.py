"""Test doubles for code that uses llm-connect.

:class:`FakeAdapter` is an adapter that answers from a script, with no network,
through exactly the same Core path (config merging, validation, timeout, sync
shim) as a real adapter.
"""

from __future__ import annotations

from ._fake import FakeAdapter, FakeCall

__all__ = ["FakeAdapter", "FakeCall"]
