"""The sync shim: run an adapter's coroutines for callers that are not async.

Rules (see docs/core-contract.md, "Async and sync"):

- From an anyio worker thread (``anyio.to_thread.run_sync``) the coroutine runs
  on the host event loop through ``anyio.from_thread.run``.
- From anywhere else (a plain script, a thread pool, a thread that is itself
  running an event loop, as in Jupyter) it runs on the adapter's own
  long-lived event loop thread, started on first use and reused by every later
  sync call, so that connections and clients are reused too.
- The loop thread is a daemon and is stopped by ``close()``, when the adapter
  is garbage-collected, or at interpreter exit; it never holds up exit.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import CancelledError, Future
from typing import Any, TypeVar

import anyio
import anyio.from_thread
from anyio import NoEventLoopError

from .exceptions import LLMConfigurationError, LLMError

__all__ = ["SyncRunner", "in_anyio_worker_thread"]

T = TypeVar("T")

#: The event loop the sync shim's own thread runs.
SYNC_BACKEND = "asyncio"
#: Seconds a stopping loop thread gets to finish its cleanup.
_STOP_GRACE = 5.0


def in_anyio_worker_thread() -> bool:
    """Return whether this thread was started by ``anyio.to_thread.run_sync``."""
    try:
        anyio.from_thread.check_cancelled()
    except NoEventLoopError:
        return False
    return True


class SyncRunner:
    """Runs coroutine functions to completion for synchronous callers.

    Thread-safe: any number of threads may call :meth:`run` at once; they share
    one loop thread.
    """

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._slot = _LoopSlot()
        # Stops the loop thread if the owner is dropped without close(), and
        # at interpreter exit. The callback holds the slot, not the runner.
        weakref.finalize(self, self._slot.stop)

    @property
    def loop_thread(self) -> threading.Thread | None:
        """The loop thread, once a sync call has started it."""
        loop = self._slot.loop
        return loop.thread if loop is not None else None

    def run(self, func: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """Run ``func(*args)`` to completion and return its result.

        If the calling thread is interrupted (``KeyboardInterrupt``), the
        coroutine is cancelled and given a short time to clean up before the
        interruption propagates.
        """
        if in_anyio_worker_thread():
            return anyio.from_thread.run(func, *args)
        loop = self._slot.loop
        if loop is None:
            with self._lock:
                if self._slot.loop is None:
                    self._slot.loop = _LoopThread(f"llm-connect-{self._name}")
                loop = self._slot.loop
        return loop.run(func, *args)

    def close(self, cleanup: Callable[[], Awaitable[None]] | None = None) -> None:
        """Run ``cleanup`` on the loop thread (if it was started), then stop it."""
        with self._lock:
            self._slot.stop(cleanup)


class _LoopSlot:
    """Where the loop thread lives; reachable by the finalizer on its own."""

    loop: _LoopThread | None = None

    def stop(self, cleanup: Callable[[], Awaitable[None]] | None = None) -> None:
        loop, self.loop = self.loop, None
        if loop is not None:
            loop.stop(cleanup)


class _LoopThread:
    """A daemon thread running an event loop that serves a blocking portal."""

    def __init__(self, name: str) -> None:
        ready: Future[anyio.from_thread.BlockingPortal] = Future()
        self.thread = threading.Thread(
            target=self._main, args=(ready,), name=name, daemon=True
        )
        self.thread.start()
        self.portal = ready.result()

    @staticmethod
    def _main(ready: Future[anyio.from_thread.BlockingPortal]) -> None:
        async def serve() -> None:
            async with anyio.from_thread.BlockingPortal() as portal:
                ready.set_result(portal)
                await portal.sleep_until_stopped()

        try:
            anyio.run(serve, backend=SYNC_BACKEND)
        except BaseException as exc:  # pragma: no cover - start-up failure
            if not ready.done():
                ready.set_exception(exc)
            raise

    def run(self, func: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        if threading.current_thread() is self.thread:
            raise LLMConfigurationError(
                "execute_prompt() was called from inside the adapter's own event "
                "loop, where it would wait for itself; await "
                "async_execute_prompt() there instead."
            )
        done = threading.Event()
        future: Future[T] = self.portal.start_task_soon(
            _signal_when_done, done, func, *args
        )
        try:
            return future.result()
        except CancelledError:
            # The loop was stopped under the call: close() from another
            # thread, the adapter dropped, or the interpreter exiting.
            raise LLMError(
                "The adapter was closed while this call was running, so it "
                "was cancelled; keep the adapter open until its calls return."
            ) from None
        except BaseException:
            # Interrupted while waiting (KeyboardInterrupt, SystemExit): cancel
            # the task and let it release what it holds before we go on.
            future.cancel()
            done.wait(_STOP_GRACE)
            raise

    def stop(self, cleanup: Callable[[], Awaitable[None]] | None) -> None:
        if threading.current_thread() is self.thread:
            # Dropped by code running on this very loop: stop it from outside.
            threading.Thread(target=self.stop, args=(cleanup,), daemon=True).start()
            return
        try:
            if cleanup is not None:
                self.portal.start_task_soon(cleanup).result(_STOP_GRACE)
        except Exception:
            pass
        with contextlib.suppress(RuntimeError):  # the portal has already stopped
            self.portal.call(self.portal.stop, True)
        self.thread.join(_STOP_GRACE)


async def _signal_when_done(
    done: threading.Event, func: Callable[..., Awaitable[T]], *args: Any
) -> T:
    try:
        return await func(*args)
    finally:
        done.set()
