"""What every benchmark script shares: the server process, pinning, medians, tables.

Method (docs/performance.md): the server runs in its own process pinned to
CPU 1, the client pinned to CPU 0; cases are measured side by side, their
rounds interleaved (A B C, A B C, ...), and each figure is a median of rounds.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

CLIENT_CPU = 0
SERVER_CPU = 1
API_KEY = "sk-bench-0000000000000000"
MODEL = "gpt-4o-mini"
PROMPT = "Say hello."
#: The server must be this many times faster than the fastest client.
VALIDITY_FACTOR = 3.0


def pin_client() -> None:
    """Pin this process to the client CPU (Linux; a no-op elsewhere)."""
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > SERVER_CPU:
        os.sched_setaffinity(0, {CLIENT_CPU})


def rounds_from_env(default: int) -> int:
    """Rounds per case: ``BENCH_ROUNDS`` overrides (a quick run uses 3)."""
    return int(os.environ.get("BENCH_ROUNDS", default))


def scale(n: int) -> int:
    """Scale a request count by ``BENCH_SCALE`` (default 1; 0.2 for a smoke run)."""
    return max(1, int(n * float(os.environ.get("BENCH_SCALE", "1"))))


# -- the server ----------------------------------------------------------------


@dataclass
class ServerStats:
    requests: int
    cpu_s: float
    wall: float


class BenchServer:
    """``bench/server.py`` in its own process group, pinned to the server CPU."""

    def __init__(self, *, delay: float = 0.0) -> None:
        argv = [sys.executable, str(BENCH / "server.py"), "--port", "0"]
        if (os.cpu_count() or 1) > SERVER_CPU:
            argv += ["--cpu", str(SERVER_CPU)]
        if delay:
            argv += ["--delay", str(delay)]
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, text=True, start_new_session=True
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.close()
            raise RuntimeError(f"bench server did not start (said {line!r})")
        self.port = int(line)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.url = self.base_url + "/chat/completions"

    def stats(self) -> ServerStats:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", "/_stats")
            data = json.loads(conn.getresponse().read())
        finally:
            conn.close()
        return ServerStats(data["requests"], data["cpu_s"], time.perf_counter())

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def __enter__(self) -> BenchServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Load:
    """What the server did while one case ran: its capacity and how busy it was."""

    requests: int = 0
    cpu_s: float = 0.0
    wall: float = 0.0

    def add(self, before: ServerStats, after: ServerStats) -> None:
        self.requests += after.requests - before.requests
        self.cpu_s += after.cpu_s - before.cpu_s
        self.wall += after.wall - before.wall

    @property
    def capacity(self) -> float:
        """Requests per CPU second: what the server serves with its core to itself."""
        return self.requests / max(self.cpu_s, 1e-6)


@contextmanager
def metered(server: BenchServer, load: Load) -> Iterator[None]:
    """Add the server's requests and CPU time during the block to ``load``."""
    before = server.stats()
    yield
    load.add(before, server.stats())


def wrk_capacity(server: BenchServer, seconds: int = 3) -> float | None:
    """Peak req/s of the server under ``wrk`` (64 connections), if wrk is here."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    script = BENCH / "wrk_post.lua"
    argv = [wrk, "-t1", "-c64", f"-d{seconds}s", "-s", str(script), server.url]
    if shutil.which("taskset") and (os.cpu_count() or 1) > SERVER_CPU:
        argv = ["taskset", "-c", str(CLIENT_CPU), *argv]
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=seconds + 30, check=True
    ).stdout
    for line in out.splitlines():
        if line.startswith("Requests/sec:"):
            return float(line.split()[1])
    return None


# -- measuring -----------------------------------------------------------------


def interleaved(
    cases: dict[str, Callable[[], float]], rounds: int, warmup: bool = True
) -> dict[str, list[float]]:
    """Run every case once per round, cases in turn; return each case's results."""
    results: dict[str, list[float]] = {name: [] for name in cases}
    if warmup:
        for run in cases.values():
            run()
    for _ in range(rounds):
        for name, run in cases.items():
            results[name].append(run())
    return results


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


# -- reporting -----------------------------------------------------------------


@dataclass
class Row:
    """One measured case: its median (and optional extra columns)."""

    case: str
    value: float
    unit: str
    note: str = ""


@dataclass
class Target:
    """A target: ``ours / peer`` compared with ``bound`` (``>=`` or ``<=``)."""

    label: str
    ratio: float
    bound: float
    op: str = ">="
    #: "x" for a ratio; anything else is the unit of an absolute bound
    unit: str = "x"

    @property
    def met(self) -> bool:
        return self.ratio >= self.bound if self.op == ">=" else self.ratio <= self.bound


@dataclass
class Figure:
    """A benchmark's results: rows, targets, and the server check."""

    title: str
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    #: the fastest client rate measured (req/s), for the validity check
    fastest: float = 0.0
    load: Load | None = None
    wrk: float | None = None
    notes: list[str] = field(default_factory=list)

    def value(self, case: str) -> float:
        return next(row.value for row in self.rows if row.case == case)

    def target(
        self, label: str, ours: str, peer: str, bound: float, op: str = ">="
    ) -> None:
        """Add the target ``value(ours) / value(peer) <op> bound``."""
        self.targets.append(
            Target(label, self.value(ours) / self.value(peer), bound, op)
        )

    def ratio_note(self, ours: str, peer: str) -> None:
        """Note ``value(ours) / value(peer)``, a ratio with no target."""
        ratio = self.value(ours) / self.value(peer)
        self.notes.append(f"{ours} / {peer} = {ratio:.2f}x (no target)")

    @property
    def valid(self) -> bool | None:
        """Whether the server was fast enough; ``None`` when no server was used."""
        if self.load is None or self.fastest == 0:
            return None
        return self.capacity >= VALIDITY_FACTOR * self.fastest

    @property
    def capacity(self) -> float:
        assert self.load is not None
        return self.load.capacity

    def render(self) -> str:
        lines = [f"## {self.title}", ""]
        lines.append("| case | median | unit |")
        lines.append("|---|---:|---|")
        for row in self.rows:
            note = f" ({row.note})" if row.note else ""
            lines.append(f"| {row.case}{note} | {_fmt(row.value)} | {row.unit} |")
        if self.targets:
            lines += ["", "| target | ratio | bound | verdict |", "|---|---:|---:|---|"]
            for t in self.targets:
                verdict = "PASS" if t.met else "MISS"
                lines.append(
                    f"| {t.label} | {t.ratio:.2f}{t.unit} | {t.op} {t.bound:g}{t.unit} "
                    f"| {verdict} |"
                )
        if self.load is not None:
            lines.append("")
            lines.append(self.server_line())
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines) + "\n"

    def server_line(self) -> str:
        assert self.load is not None
        verdict = {True: "VALID", False: "INVALID", None: "n/a"}[self.valid]
        wrk = f"; wrk peak {self.wrk:,.0f} req/s" if self.wrk else ""
        return (
            f"server: {self.load.requests:,} requests in {self.load.cpu_s:.2f} CPU s "
            f"= capacity {self.capacity:,.0f} req/s{wrk}; fastest client "
            f"{self.fastest:,.0f} req/s; needs >= {VALIDITY_FACTOR:g}x -> {verdict}"
        )


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def emit(figure: Figure) -> Figure:
    """Print ``figure`` and, for run_all, write it as JSON to ``BENCH_JSON_DIR``."""
    print(figure.render(), flush=True)
    out = os.environ.get("BENCH_JSON_DIR")
    if out:
        name = "".join(c if c.isalnum() else "_" for c in figure.title.lower())[:60]
        data = {
            "title": figure.title,
            "rendered": figure.render(),
            "valid": figure.valid,
            "capacity": figure.capacity if figure.load is not None else None,
            "fastest": figure.fastest,
            "targets": [
                {
                    "label": t.label,
                    "ratio": t.ratio,
                    "bound": t.bound,
                    "op": t.op,
                    "unit": t.unit,
                    "met": t.met,
                }
                for t in figure.targets
            ],
        }
        Path(out, f"{name}.json").write_text(json.dumps(data))
    return figure
