"""The sync shim: execute_prompt from scripts, threads, worker threads, loops."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import anyio
import anyio.to_thread
import pytest

from llm_connect import (
    LLMConfigurationError,
    LLMError,
    LLMServerError,
    LLMTimeoutError,
    Message,
    RunConfig,
)
from llm_connect.testing import FakeAdapter


class ThreadRecorder:
    """A FakeAdapter responder that echoes the prompt and notes the thread."""

    def __init__(self) -> None:
        self.threads: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, messages: Sequence[Message], config: RunConfig) -> str:
        with self._lock:
            self.threads.append(threading.get_ident())
        return f"echo:{messages[-1].content}"


def test_sequential_calls_reuse_one_long_lived_loop_thread() -> None:
    recorder = ThreadRecorder()
    threads_before = threading.active_count()
    with FakeAdapter(recorder) as adapter:
        texts = [adapter.execute_prompt(f"p{i}").text for i in range(50)]
        assert threading.active_count() == threads_before + 1
    assert texts == [f"echo:p{i}" for i in range(50)]
    assert len(set(recorder.threads)) == 1
    assert recorder.threads[0] != threading.get_ident()
    assert threading.active_count() == threads_before


def test_many_threads_at_once_all_get_their_own_answers() -> None:
    recorder = ThreadRecorder()
    adapter = FakeAdapter(recorder)

    def worker(t: int) -> list[str]:
        return [adapter.execute_prompt(f"t{t}-{i}").text for i in range(50)]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(worker, range(8)))
    adapter.close()
    for t, texts in enumerate(results):
        assert texts == [f"echo:t{t}-{i}" for i in range(50)]
    assert len(recorder.threads) == 400
    assert len(adapter.calls) == 400
    assert len(set(recorder.threads)) == 1  # all on the one loop thread


async def test_from_an_anyio_worker_thread_it_runs_on_the_host_loop() -> None:
    recorder = ThreadRecorder()
    adapter = FakeAdapter(recorder)
    host_thread = threading.get_ident()
    before = set(threading.enumerate())
    response = await anyio.to_thread.run_sync(adapter.execute_prompt, "from worker")
    assert response.text == "echo:from worker"
    assert recorder.threads == [host_thread]
    assert adapter._sync.loop_thread is None  # no loop thread was started
    new_threads = set(threading.enumerate()) - before  # anyio's worker, at most
    assert not [t for t in new_threads if t.name.startswith("llm-connect")]
    await anyio.to_thread.run_sync(adapter.close)


def test_inside_a_running_asyncio_loop_as_in_jupyter() -> None:
    adapter = FakeAdapter(ThreadRecorder())

    async def cell() -> list[str]:
        # Blocking calls from the loop's own thread, as a notebook cell does.
        return [adapter.execute_prompt(f"cell{i}").text for i in range(3)]

    assert asyncio.run(cell()) == ["echo:cell0", "echo:cell1", "echo:cell2"]
    # A second loop later (a re-run cell) still works: no "event loop is closed".
    assert asyncio.run(cell()) == ["echo:cell0", "echo:cell1", "echo:cell2"]
    adapter.close()


def test_inside_a_running_trio_loop() -> None:
    trio = pytest.importorskip("trio")

    adapter = FakeAdapter(ThreadRecorder())

    async def main() -> str:
        return adapter.execute_prompt("from trio").text

    assert trio.run(main) == "echo:from trio"
    adapter.close()


def test_sync_timeout_raises_promptly() -> None:
    adapter = FakeAdapter("late", delay=2)
    started = time.perf_counter()
    with pytest.raises(LLMTimeoutError):
        adapter.execute_prompt("hi", RunConfig(timeout=0.3))
    assert time.perf_counter() - started < 0.6
    adapter.close()


def test_sync_errors_are_the_same_errors() -> None:
    with FakeAdapter([LLMServerError("down", status_code=503)]) as adapter:
        with pytest.raises(LLMServerError, match="down") as info:
            adapter.execute_prompt("hi")
        assert info.value.status_code == 503
        with pytest.raises(LLMConfigurationError, match="prompt is empty"):
            adapter.execute_prompt("")


def test_close_stops_the_loop_thread_and_refuses_later_calls() -> None:
    adapter = FakeAdapter()
    adapter.execute_prompt("hi")
    thread = adapter._sync.loop_thread
    assert thread is not None
    assert thread.is_alive()
    adapter.close()
    assert not thread.is_alive()
    with pytest.raises(LLMConfigurationError, match="closed"):
        adapter.execute_prompt("hi")
    adapter.close()  # idempotent


def test_a_dropped_adapter_stops_its_loop_thread() -> None:
    adapter = FakeAdapter()
    adapter.execute_prompt("hi")
    thread = adapter._sync.loop_thread
    assert thread is not None
    del adapter
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()


def _run_script(code: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_an_adapter_left_open_does_not_hang_interpreter_exit() -> None:
    started = time.perf_counter()
    result = _run_script(
        """
        from llm_connect.testing import FakeAdapter
        adapter = FakeAdapter("bye", delay=0)
        print(adapter.execute_prompt("hi").text)
        slow = FakeAdapter("never", delay=60)
        import threading
        from llm_connect import LLMError

        def call():  # still running when the interpreter exits
            try:
                slow.execute_prompt("x")
            except LLMError:
                pass

        threading.Thread(target=call, daemon=True).start()
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "bye"
    assert result.stderr == ""
    assert time.perf_counter() - started < 15


_CTRL_C_SCRIPT = """
import threading, anyio
from llm_connect.testing import FakeAdapter
cleaned = threading.Event()

async def slow(messages, config):
    try:
        await anyio.sleep(30)
    finally:
        cleaned.set()
    return "never"

adapter = FakeAdapter(slow)
try:
    print("calling", flush=True)
    adapter.execute_prompt("hi")
except KeyboardInterrupt:
    print("interrupted", cleaned.is_set(), len(adapter.calls))
adapter.close()
print("threads", threading.active_count())
"""


@pytest.mark.skipif(os.name != "posix", reason="needs SIGINT delivery")
def test_ctrl_c_cancels_the_call_and_it_cleans_up() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CTRL_C_SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "calling"
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    # The coroutine's cleanup ran before the interrupt surfaced, nothing was
    # served, and close() left only the main thread.
    assert out.split("\n")[:2] == ["interrupted True 0", "threads 1"]


def test_closing_the_adapter_under_a_running_sync_call_is_an_llm_error() -> None:
    adapter = FakeAdapter("never", delay=30)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            adapter.execute_prompt("x")
        except BaseException as exc:  # what the caller sees
            errors.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    time.sleep(0.3)
    started = time.perf_counter()
    adapter.close()
    worker.join(10)
    assert not worker.is_alive()
    assert time.perf_counter() - started < 5
    assert len(errors) == 1
    assert isinstance(errors[0], LLMError)
    assert "closed while this call was running" in str(errors[0])


def test_a_sync_call_from_the_adapters_own_loop_is_refused_not_deadlocked() -> None:
    inner: list[BaseException] = []

    def responder(messages: Sequence[Message], config: RunConfig) -> str:
        try:
            adapter.execute_prompt("inner")
        except LLMConfigurationError as exc:
            inner.append(exc)
        return "outer"

    adapter = FakeAdapter(responder)
    started = time.perf_counter()
    assert adapter.execute_prompt("outer").text == "outer"
    assert time.perf_counter() - started < 5
    assert len(inner) == 1
    assert "would wait for itself" in str(inner[0])
    adapter.close()
