"""The examples in docs/testing.md run as written."""

from __future__ import annotations

from typing import Any

import pytest

from .test_docs import _python_block_after


def test_the_fake_adapter_example_in_the_testing_guide_works() -> None:
    code = _python_block_after("testing.md", "## FakeAdapter")
    exec(compile(code, "testing.md", "exec"), {})


@pytest.mark.integration
def test_the_application_example_in_the_testing_guide_passes() -> None:
    namespace: dict[str, Any] = {}
    code = _python_block_after("testing.md", "### Example: testing an application")
    exec(compile(code, "testing.md", "exec"), namespace)
    assert namespace["ask"].__doc__ == "The application code under test."
    namespace["test_ask_retries_a_server_error_once"]()
