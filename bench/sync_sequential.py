"""Sync, one call at a time: the sync shim against the openai sync client.

Run: ``python bench/sync_sequential.py``. llm-connect's ``execute_prompt`` runs
each call on the adapter's own event loop thread (docs/core-contract.md,
"Async and sync"). Target: >= 1.1x the openai sync client. A plain
``httpx.Client`` doing the same POST is the floor shown for reference.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._clients import BODY, HEADERS, installed
from bench._common import (
    API_KEY,
    MODEL,
    PROMPT,
    BenchServer,
    Figure,
    Load,
    Row,
    emit,
    interleaved,
    median,
    metered,
    pin_client,
    rounds_from_env,
    scale,
)

REQUESTS = 2000

SyncCall = Callable[[], str]
SyncFactory = Callable[[str], tuple[SyncCall, Callable[[], None]]]


def raw_httpx(base_url: str) -> tuple[SyncCall, Callable[[], None]]:
    import httpx

    client = httpx.Client()
    url = base_url + "/chat/completions"

    def call() -> str:
        reply = client.post(url, json=BODY, headers=HEADERS)
        reply.raise_for_status()
        text: str = reply.json()["choices"][0]["message"]["content"]
        return text

    return call, client.close


def openai_sync(base_url: str) -> tuple[SyncCall, Callable[[], None]]:
    import openai

    client = openai.OpenAI(api_key=API_KEY, base_url=base_url)

    def call() -> str:
        completion = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": PROMPT}]
        )
        return completion.choices[0].message.content or ""

    return call, client.close


def llm_connect_sync(base_url: str) -> tuple[SyncCall, Callable[[], None]]:
    from llm_connect import OpenAIAdapter, RunConfig

    adapter = OpenAIAdapter(
        api_key=API_KEY, base_url=base_url, default_config=RunConfig(model=MODEL)
    )

    def call() -> str:
        return adapter.execute_prompt(PROMPT).text

    return call, adapter.close


def sequential(make: SyncFactory, base_url: str, n: int) -> float:
    call, close = make(base_url)
    try:
        for _ in range(20):
            call()
        started = time.perf_counter()
        for _ in range(n):
            call()
        return n / (time.perf_counter() - started)
    finally:
        close()


def run() -> Figure:
    pin_client()
    rounds = rounds_from_env(5)
    n = scale(REQUESTS)
    figure = Figure("Sync, one call at a time", load=Load())
    clients = {"raw httpx.Client": raw_httpx}
    if installed("openai"):
        clients["openai SDK (sync)"] = openai_sync
    clients["llm-connect execute_prompt"] = llm_connect_sync
    with BenchServer() as server:
        load = figure.load
        assert load is not None

        def make(factory: SyncFactory) -> Callable[[], float]:
            def case() -> float:
                with metered(server, load):
                    return sequential(factory, server.base_url, n)

            return case

        results = interleaved({k: make(f) for k, f in clients.items()}, rounds)
    for name, rates in results.items():
        figure.rows.append(Row(name, median(rates), "req/s"))
    figure.fastest = max(median(r) for r in results.values())
    if installed("openai"):
        figure.target(
            "sync sequential: llm-connect / openai sync client",
            "llm-connect execute_prompt",
            "openai SDK (sync)",
            1.1,
        )
    figure.ratio_note("llm-connect execute_prompt", "raw httpx.Client")
    return figure


def main() -> None:
    emit(run())


if __name__ == "__main__":
    main()
