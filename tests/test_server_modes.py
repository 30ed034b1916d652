"""Ways to run the loopback server, clean shutdown, and its public surface."""

from __future__ import annotations

import json
import math
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import anyio
import httpx
import pytest

import llm_connect
import llm_connect.testing.server as server_module
from llm_connect import LLMConfigurationError, Usage
from llm_connect.testing.server import (
    Fail,
    LoopbackServer,
    Malformed,
    Raw,
    Reset,
    Respond,
    Stall,
    action_from_json,
)

from .conftest import BACKENDS, running_tasks
from .server_helpers import BODIES, url

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("backend", BACKENDS)
def test_thread_mode_serves_sync_code_and_stops_on_exit(backend: str) -> None:
    threads_before = threading.active_count()
    with LoopbackServer(text="from a thread", backend=backend) as server:
        port = server.port
        server.script(Fail(503))
        with httpx.Client() as client:
            failed = client.post(url(server, "openai"), json=BODIES["openai"])
            reply = client.post(url(server, "openai"), json=BODIES["openai"])
        assert [r.status for r in server.requests] == [503, 200]
    assert failed.status_code == 503
    assert reply.json()["choices"][0]["message"]["content"] == "from a thread"
    assert threading.active_count() == threads_before
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={})


async def test_async_mode_leaves_no_task_or_connection_behind() -> None:
    tasks_before = await running_tasks()
    arrived = anyio.Event()

    def text(request: object) -> str:
        arrived.set()
        return "x" * 100

    async def stalled(client: httpx.AsyncClient, address: str) -> None:
        with pytest.raises(httpx.TransportError):
            await client.post(address, json=BODIES["openai"])

    async with httpx.AsyncClient() as client, anyio.create_task_group() as group:
        async with LoopbackServer(text=text) as server:
            server.script(Stall())
            assert await running_tasks() > tasks_before
            group.start_soon(stalled, client, url(server, "openai"))
            with anyio.fail_after(10):
                await arrived.wait()
            started = time.monotonic()
        stopped_after = time.monotonic() - started  # while a body stalls
    assert stopped_after < 2.0
    assert await running_tasks() == tasks_before


async def test_serve_runs_in_a_task_group_of_yours() -> None:
    server = LoopbackServer(text="in my group")
    async with anyio.create_task_group() as group:
        port = await group.start(server.serve)
        assert port == server.port
        async with httpx.AsyncClient() as client:
            reply = await client.post(
                f"http://127.0.0.1:{port}/v1/messages", json=BODIES["anthropic"]
            )
        group.cancel_scope.cancel()
    assert reply.json()["content"][0]["text"] == "in my group"
    with pytest.raises(LLMConfigurationError, match="not running"):
        _ = server.port


async def test_a_server_runs_once_and_says_so() -> None:
    server = LoopbackServer()
    with pytest.raises(LLMConfigurationError, match="not running"):
        _ = server.base_url
    async with server:
        assert server.base_url == f"http://127.0.0.1:{server.port}"
        assert server.openai_base_url == server.base_url + "/v1"
        assert server.openrouter_base_url == server.base_url + "/api/v1"
        assert server.gemini_base_url == server.base_url + "/v1beta"
        assert server.anthropic_base_url == server.base_url
        assert repr(server) == f"<LoopbackServer port={server.port} requests=0>"
    with pytest.raises(LLMConfigurationError, match="already run"):
        async with server:
            pass


async def test_a_taken_port_is_a_configuration_error() -> None:
    async with LoopbackServer() as first:
        with pytest.raises(LLMConfigurationError, match="cannot listen"):
            async with LoopbackServer(port=first.port):
                pass


@contextmanager
def server_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Run ``python -m llm_connect.testing.server``; yield it and its port."""
    env = dict(os.environ, PYTHONPATH=str(Path(llm_connect.__file__).parent.parent))
    process = subprocess.Popen(
        [sys.executable, "-m", "llm_connect.testing.server", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 20)
        assert ready, "the server process printed no port within 20 s"
        yield process, int(process.stdout.readline())
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=10)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_process_mode_prints_its_port_serves_and_stops_on_a_signal(
    stop_signal: signal.Signals,
) -> None:
    with server_process("--text", "from a process") as (process, port):
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base) as client:
            reply = client.post("/v1/chat/completions", json=BODIES["openai"])
        process.send_signal(stop_signal)
        started = time.monotonic()
        assert process.wait(timeout=10) == 0
        stopped_after = time.monotonic() - started
    assert reply.json()["choices"][0]["message"]["content"] == "from a process"
    assert stopped_after < 5


def test_process_mode_is_scripted_and_inspected_over_control_endpoints() -> None:
    flags = [
        "--input-tokens",
        "100",
        "--output-tokens",
        "20",
        "--cached-tokens",
        "60",
        "--cost",
        "0.0125",
        "--finish-reason",
        "length",
        "--api-key",
        "sk-process",
        "--script",
        '[{"action": "fail", "status": 429, "retry_after": 2}]',
    ]
    auth = {"authorization": "Bearer sk-process"}
    with server_process(*flags) as (process, port):
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=auth) as client:
            path = "/api/v1/chat/completions"
            limited = client.post(path, json=BODIES["openrouter"])
            answered = client.post(path, json=BODIES["openrouter"])
            scripted = client.post(
                "/_control/script",
                json={
                    "route": "openrouter",
                    "actions": [
                        {"action": "fail", "status": 503},
                        {"action": "respond", "text": "recovered", "cost": "0.5"},
                    ],
                },
            )
            failed = client.post(path, json=BODIES["openrouter"])
            recovered = client.post(path, json=BODIES["openrouter"])
            changed = client.post("/_control/answer", json={"text": "new default"})
            default = client.post(path, json=BODIES["openrouter"])
            log = client.get("/_control/requests").json()
            bad = client.post("/_control/script", json=[{"action": "explode"}])
            missing = client.get("/_control/nothing")
            client.post("/_control/reset")
            after_reset = client.get("/_control/requests").json()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "2"
    usage = json.loads(answered.content, parse_float=Decimal)["usage"]
    assert usage["prompt_tokens"] == 100
    assert usage["completion_tokens"] == 20
    assert usage["prompt_tokens_details"]["cached_tokens"] == 60
    assert usage["cost"] == Decimal("0.0125")
    assert answered.json()["choices"][0]["finish_reason"] == "length"
    assert scripted.json() == {"pending": 2}
    assert failed.status_code == 503
    assert recovered.json()["choices"][0]["message"]["content"] == "recovered"
    assert recovered.json()["usage"]["cost"] == 0.5
    assert changed.json() == {"ok": True}
    assert default.json()["choices"][0]["message"]["content"] == "new default"
    assert log["count"] == 5
    assert [r["status"] for r in log["requests"]] == [429, 200, 503, 200, 200]
    assert [r["action"] for r in log["requests"]][:3] == ["Fail", "Respond", "Fail"]
    assert log["requests"][0]["headers"]["authorization"] == "[REDACTED]"
    assert log["requests"][0]["json"] == BODIES["openrouter"]
    assert bad.status_code == 400
    assert "Unknown action 'explode'" in bad.json()["error"]
    assert missing.status_code == 404
    assert after_reset == {"count": 5, "requests": []}


def test_process_mode_refuses_bad_flags_with_a_message() -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(llm_connect.__file__).parent.parent))
    for flags, message in [
        (["--input-tokens", "5"], "--input-tokens and --output-tokens go together"),
        (["--cost", "lots"], "--cost must be a number"),
        (["--script", "[{]"], "--script is not JSON"),
        (["--script", '[{"action": "fail", "status": 200}]'], "Fail needs an error"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "llm_connect.testing.server", *flags],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=False,
        )
        assert done.returncode == 2, flags
        assert message in done.stderr, flags
        assert done.stdout == ""


def test_importing_the_package_does_not_load_the_server() -> None:
    code = (
        "import sys, llm_connect, llm_connect.testing\n"
        "print('llm_connect.testing.server' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
        env=dict(os.environ, PYTHONPATH=str(Path(llm_connect.__file__).parent.parent)),
    )
    assert done.stdout.strip() == "False"


def test_all_is_sorted_and_lists_the_public_names() -> None:
    public = {
        name
        for name, value in vars(server_module).items()
        if not name.startswith("_")
        and not isinstance(value, type(server_module))
        and name != "annotations"
    }
    assert list(server_module.__all__) == sorted(server_module.__all__)
    assert set(server_module.__all__) == public


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Fail(200), "Fail needs an error status"),
        (lambda: Fail(700), "HTTP status from 200 to 599"),
        (lambda: Fail(429, retry_after=-1), "retry_after must be"),
        (lambda: Respond(cost=0.5), "cost must be a decimal.Decimal"),  # type: ignore[arg-type]
        (lambda: Respond(cost=Decimal("-1")), "finite Decimal >= 0"),
        (lambda: Respond(usage=(1, 2, 3)), "usage must be a llm_connect.Usage"),  # type: ignore[arg-type]
        (lambda: Respond(padding="x"), "whitespace only"),
        (lambda: Respond(delay=math.inf), "delay must be finite"),
        (lambda: Respond(text=3), "text must be a str or a function"),  # type: ignore[arg-type]
        (lambda: Stall(-1), "seconds must be a number"),
        (lambda: Reset(after_bytes=-5), "after_bytes must be None or a byte count"),
        (lambda: Malformed("garbled"), "Malformed kind must be one of"),  # type: ignore[arg-type]
        (lambda: Raw(body=object()), "JSON-serialisable"),
        (lambda: Raw(headers={"x": "a\r\nb"}), "no line breaks"),
        (lambda: Raw(headers={"content-length": "5"}), "frames the body itself"),
        (lambda: LoopbackServer(port=70000), "port must be 0-65535"),
        (lambda: LoopbackServer(backend="curio"), "backend must be"),
        (lambda: LoopbackServer(api_key=""), "api_key must be a non-empty str"),
        (lambda: LoopbackServer().script("503"), "script() takes actions"),  # type: ignore[arg-type]
        (lambda: LoopbackServer().script(Respond(), route="bard"), "route must be"),  # type: ignore[arg-type]
    ],
)
def test_bad_configuration_is_refused_before_anything_runs(
    make: object, message: str
) -> None:
    assert callable(make)
    with pytest.raises(LLMConfigurationError, match=re.escape(message)):
        make()


def test_actions_have_a_json_form() -> None:
    assert action_from_json({"action": "fail", "status": 503}) == Fail(503)
    assert action_from_json(
        {"action": "stall", "seconds": None, "after_bytes": 3}
    ) == Stall(math.inf, after_bytes=3)
    assert action_from_json(
        {
            "action": "respond",
            "text": "t",
            "usage": {"input_tokens": 3, "output_tokens": 2, "reasoning_tokens": 1},
            "cost": 0.25,
        }
    ) == Respond("t", usage=Usage(3, 2, 5, reasoning_tokens=1), cost=Decimal("0.25"))
    assert action_from_json({"action": "raw", "body": {"a": 1}}) == Raw(
        body=b'{"a": 1}'
    )
    with pytest.raises(LLMConfigurationError, match="has no field"):
        action_from_json({"action": "reset", "status": 500})
    with pytest.raises(LLMConfigurationError, match='"action" name'):
        action_from_json({"status": 500})
    with pytest.raises(LLMConfigurationError, match="input_tokens and output_tokens"):
        action_from_json({"action": "respond", "usage": {"input_tokens": 1}})
