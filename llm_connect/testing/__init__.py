"""Test doubles for code that uses llm-connect.

:class:`FakeAdapter` is an adapter that answers from a script, with no network,
through exactly the same Core path (config merging, validation, timeout, sync
shim) as a real adapter.

The loopback provider server, for tests that talk HTTP, lives in
:mod:`llm_connect.testing.server` (``LoopbackServer``); it is imported only
when you import that module. See docs/testing.md.
"""

from __future__ import annotations

from ._fake import FakeAdapter, FakeCall

__all__ = ["FakeAdapter", "FakeCall"]
