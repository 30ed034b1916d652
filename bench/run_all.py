"""Run the whole benchmark suite and print one combined table.

Run: ``python bench/run_all.py`` (or ``nox -s bench``, which installs the
peers). Each script runs in a fresh interpreter; the combined report lists
every figure, every target with PASS/MISS, and the server check: the least
capacity the server showed in any figure must be at least 3x the fastest
client measured anywhere in the run, or the run is INVALID.

``BENCH_ROUNDS`` and ``BENCH_SCALE`` shorten a run (e.g. ``BENCH_ROUNDS=3
BENCH_SCALE=0.3`` for a smoke test); ``--only NAME ...`` runs some scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import BENCH, VALIDITY_FACTOR, BenchServer, pin_client, wrk_capacity

SCRIPTS = [
    "imports",
    "async_sequential",
    "async_concurrent",
    "sync_sequential",
    "memory",
    "budget_overhead",
    "claude_code",
    "budget",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="+", choices=SCRIPTS, default=SCRIPTS)
    args = parser.parse_args()
    started = time.perf_counter()
    print(_environment(), flush=True)
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "BENCH_JSON_DIR": out}
        extra: list[str] = []
        for name in args.only:
            print(f"\n# {name}\n", flush=True)
            result = subprocess.run(
                [sys.executable, str(BENCH / f"{name}.py")],
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=900,
            )
            print(result.stdout, end="", flush=True)
            if result.returncode != 0:
                print(result.stderr, file=sys.stderr)
                extra.append(
                    f"| {name} | failed (exit {result.returncode}) | | | FAIL |"
                )
            elif name == "budget":
                extra += _budget_rows(result.stdout)
        written = sorted(Path(out).glob("*.json"), key=lambda p: p.stat().st_mtime)
        figures = [json.loads(p.read_text()) for p in written]
    wrk = _wrk_peak()
    print("\n# Summary\n")
    print(_summary(figures, extra, wrk))
    print(f"\nwhole run: {time.perf_counter() - started:.0f} s")
    return 0


def _environment() -> str:
    from importlib.metadata import PackageNotFoundError, version

    versions = []
    for package in ("httpx", "httpcore", "httpx2", "openai", "anyio", "trio"):
        try:
            versions.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    return (
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs; {', '.join(versions)}\n"
        f"server pinned to CPU 1, clients to CPU 0; medians of interleaved rounds"
    )


def _wrk_peak() -> float | None:
    pin_client()
    with BenchServer() as server:
        return wrk_capacity(server)


def _budget_rows(stdout: str) -> list[str]:
    """The summary row of ``bench/budget.py``, read from its printed table."""
    measured = "?"
    for line in stdout.splitlines():
        if line.startswith("reserve + commit, uncontended"):
            measured = f"{float(line.split()[4]):.2f} us"
        if line.startswith("target: uncontended reserve + commit"):
            verdict = "PASS" if line.rstrip().endswith("meets") else "MISS"
            label = "budget micro-benchmark: reserve + commit, uncontended"
            return [f"| {label} | {measured} | < 10 us | {verdict} |"]
    return []


def _summary(
    figures: list[dict[str, object]], extra: list[str], wrk: float | None
) -> str:
    lines = ["| target | measured | bound | verdict |", "|---|---:|---:|---|"]
    for figure in figures:
        for t in figure["targets"]:  # type: ignore[attr-defined]
            unit = t["unit"]
            verdict = "PASS" if t["met"] else "MISS"
            lines.append(
                f"| {t['label']} | {t['ratio']:.2f}{unit} "
                f"| {t['op']} {t['bound']:g}{unit} | {verdict} |"
            )
    lines += extra
    loads = [f for f in figures if f.get("capacity")]
    if loads:
        capacity = min(float(f["capacity"]) for f in loads)  # type: ignore[arg-type]
        fastest = max(float(f["fastest"]) for f in loads)  # type: ignore[arg-type]
        valid = capacity >= VALIDITY_FACTOR * fastest
        peak = f"; its peak under wrk (64 connections): {wrk:,.0f} req/s" if wrk else ""
        lines.append("")
        verdict = "VALID" if valid else "INVALID"
        lines.append(
            f"server check: least capacity in any figure {capacity:,.0f} req/s "
            f"(requests per server CPU second){peak}; fastest client "
            f"{fastest:,.0f} req/s; ratio {capacity / fastest:.1f}x, "
            f"needs >= {VALIDITY_FACTOR:g}x -> {verdict}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
