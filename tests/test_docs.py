"""The examples in the docs run as written."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from llm_connect import LLMResponseError, LLMServerError, RunConfig

DOCS = Path(__file__).parent.parent / "docs"


def _python_block_after(doc: str, heading: str) -> str:
    text = (DOCS / doc).read_text()
    section = text[text.index(heading) :]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


@pytest.fixture
def echo_adapter_class() -> Any:
    namespace: dict[str, Any] = {}
    code = _python_block_after("core-contract.md", "### A complete custom adapter")
    exec(compile(code, "core-contract.md", "exec"), namespace)
    return namespace["EchoServiceAdapter"]


@respx.mock
def test_the_custom_adapter_in_the_contract_works(echo_adapter_class: Any) -> None:
    url = "http://127.0.0.1:9/echo"
    route = respx.post(url).mock(
        return_value=httpx.Response(200, json={"text": "hi!", "in": 3, "out": 2})
    )
    adapter = echo_adapter_class(url, default_config=RunConfig(model="m"))
    response = adapter.execute_prompt("hi", RunConfig(extra_body={"seed": 7}))
    assert response.text == "hi!"
    assert response.usage.total_tokens == 5
    assert response.provider == "echo-service"
    sent = route.calls.last.request
    assert json.loads(sent.read()) == {
        "model": "m",
        "messages": [{"role": "user", "content": "hi"}],
        "seed": 7,
    }

    route.mock(return_value=httpx.Response(503, text="down"))
    with pytest.raises(LLMServerError) as info:
        adapter.execute_prompt("hi")
    assert info.value.status_code == 503

    route.mock(return_value=httpx.Response(200, text="<html>"))
    with pytest.raises(LLMResponseError, match="unreadable answer"):
        adapter.execute_prompt("hi")
    adapter.close()


def test_the_worked_delegation_chain_in_budget_md_prints_what_it_says(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = _python_block_after("budget.md", "## A worked delegation chain")
    exec(compile(code, "budget.md", "exec"), {"__name__": "budget_example"})
    assert capsys.readouterr().out.splitlines() == [
        "ok",
        "refused: 0.20 of 0.50",
        "0.80 0.40 0.20",
    ]


@respx.mock
def test_the_providers_example_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("OPENAI_API_KEY", "GEMINI_API_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.setenv(name, f"test-{name.lower()}")
    chat = {
        "choices": [{"message": {"content": "Paris"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
    respx.post("https://api.openai.com/v1/chat/completions").respond(json=chat)
    respx.post("https://openrouter.ai/api/v1/chat/completions").respond(
        json={**chat, "usage": {**chat["usage"], "cost": 0.0001}}
    )
    respx.post(
        "https://generativelanguage.googleapis.com/v1beta/models/"
        "gemini-2.5-flash:generateContent"
    ).respond(
        json={
            "candidates": [
                {"content": {"parts": [{"text": "Paris"}]}, "finishReason": "STOP"}
            ],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1},
        }
    )
    code = (DOCS / "providers.md").read_text()
    block = re.search(r"```python\n(.*?)```", code, re.S)
    assert block is not None
    exec(compile(block.group(1), "providers.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["openai", "Paris"],
        ["gemini", "Paris"],
        ["openrouter", "Paris"],
    ]
    assert lines[2].endswith("0.0001")


README = Path(__file__).parent.parent / "README.md"


@pytest.mark.parametrize(
    "index", range(len(re.findall(r"```python\n", README.read_text())))
)
def test_every_python_example_in_the_readme_runs(index: int) -> None:
    block = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[index]
    if "import trio" in block:
        pytest.importorskip("trio")
    exec(compile(block, f"README.md[{index}]", "exec"), {"__name__": "readme"})
