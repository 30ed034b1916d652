"""Import time: ``import llm_connect`` against ``import httpx`` and the peers.

Run: ``python bench/imports.py``. Each import runs in a fresh interpreter
(``time.perf_counter`` around the import statement, interpreter start-up
excluded); imports alternate across rounds; medians of 9. Target:
``import llm_connect`` <= 1.3x ``import httpx``. Also shown: importing
``OpenAIAdapter`` (the first use of an HTTP adapter loads httpx with it).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._clients import installed
from bench._common import (
    ROOT,
    Figure,
    Row,
    emit,
    interleaved,
    median,
    pin_client,
    rounds_from_env,
)

CASES = {
    "import httpx": "import httpx",
    "import llm_connect": "import llm_connect",
    "from llm_connect import OpenAIAdapter": "from llm_connect import OpenAIAdapter",
    "import httpx2": "import httpx2",
    "import openai": "import openai",
    "import anthropic": "import anthropic",
    "import pydantic_ai": "import pydantic_ai",
    "import litellm": "import litellm",
}


def import_seconds(statement: str) -> float:
    code = (
        "import time\n"
        "started = time.perf_counter()\n"
        f"{statement}\n"
        "print(time.perf_counter() - started)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    return float(out.stdout.strip())


def run() -> Figure:
    pin_client()
    rounds = rounds_from_env(9)
    cases = {
        name: (lambda s=statement: import_seconds(s))
        for name, statement in CASES.items()
        if "llm_connect" in statement or installed(statement.split()[1])
    }
    results = interleaved(cases, rounds)
    figure = Figure("Import time")
    for name, times in results.items():
        figure.rows.append(Row(name, median(times) * 1000, "ms"))
    figure.target(
        "import: llm_connect / httpx",
        "import llm_connect",
        "import httpx",
        1.3,
        "<=",
    )
    figure.ratio_note("from llm_connect import OpenAIAdapter", "import httpx")
    return figure


def main() -> None:
    emit(run())


if __name__ == "__main__":
    main()
