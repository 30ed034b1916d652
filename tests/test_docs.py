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
