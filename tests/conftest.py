"""Every async test runs under asyncio and trio (anyio's pytest plugin, auto mode).

Set LLM_CONNECT_TEST_BACKENDS=asyncio to run without trio installed; the
``tests_asyncio_only`` nox session does that to prove trio stays optional.
"""

from __future__ import annotations

import os

import pytest

BACKENDS = [
    b.strip()
    for b in os.environ.get("LLM_CONNECT_TEST_BACKENDS", "asyncio,trio").split(",")
    if b.strip()
]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def running_tasks() -> int:
    """How many tasks the current event loop is running, whatever the backend."""
    import asyncio

    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # no asyncio loop here: trio is running
        import trio

        def count(task: trio.lowlevel.Task) -> int:
            return 1 + sum(
                count(child)
                for nursery in task.child_nurseries
                for child in nursery.child_tasks
            )

        return count(trio.lowlevel.current_root_task())
