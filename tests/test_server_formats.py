"""The loopback server speaks each provider's wire format as the real API does."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import anyio.lowlevel
import httpx
import pytest

from llm_connect import Usage
from llm_connect.testing.server import (
    LoopbackServer,
    RecordedRequest,
    Respond,
    Route,
)

from .server_helpers import (
    BODIES,
    PROMPT_TOKENS,
    fixture,
    paths,
    post,
    sse_events,
    url,
)

pytestmark = pytest.mark.integration


async def test_openai_answer_has_every_field_of_a_real_chat_completion() -> None:
    usage = Usage(1220, 100, 1320, cached_input_tokens=1152, reasoning_tokens=7)
    async with (
        LoopbackServer(text="Hi!", usage=usage) as server,
        httpx.AsyncClient() as client,
    ):
        reply = await post(client, server, "openai")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["x-request-id"] == "req_loopback_1"
    data = reply.json()
    real = fixture("openai_chat_refusal.json")["body"]
    assert paths(data) == paths(real)
    assert data["object"] == "chat.completion"
    assert data["id"] == "chatcmpl-loopback_1"
    assert isinstance(data["created"], int)
    assert data["model"] == "gpt-4o-mini"  # the requested model
    (choice,) = data["choices"]
    assert choice["index"] == 0
    assert choice["message"] == {
        "role": "assistant",
        "content": "Hi!",
        "refusal": None,
        "annotations": [],
    }
    assert choice["finish_reason"] == "stop"
    assert data["usage"] == {
        "prompt_tokens": 1220,
        "completion_tokens": 100,
        "total_tokens": 1320,
        "prompt_tokens_details": {"cached_tokens": 1152, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 7,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


async def test_openrouter_answer_reports_its_decimal_cost_exactly() -> None:
    cost = Decimal("0.00000537")
    usage = Usage(74, 21, 95, reasoning_tokens=2)
    async with (
        LoopbackServer(text="Paris.", usage=usage, cost=cost) as server,
        httpx.AsyncClient() as client,
    ):
        reply = await post(client, server, "openrouter")
    assert reply.status_code == 200
    assert reply.headers["x-generation-id"] == "gen-loopback-1"
    assert b'"cost":0.00000537,' in reply.content  # a JSON number, not a string
    data = json.loads(reply.content, parse_float=Decimal)
    real = fixture("openrouter_chat_ok.json")["body"]
    # The server does not invent reasoning details or split the upstream cost.
    assert paths(real) - paths(data) == {
        "choices[].message.reasoning_details",
        "choices[].message.reasoning_details[].type",
        "choices[].message.reasoning_details[].text",
        "choices[].message.reasoning_details[].format",
        "choices[].message.reasoning_details[].index",
        "usage.cost_details.upstream_inference_prompt_cost",
        "usage.cost_details.upstream_inference_completions_cost",
    }
    assert paths(data) <= paths(real)
    assert data["id"] == "gen-loopback-1"
    assert data["model"] == "openai/gpt-oss-120b"
    assert data["provider"] == "Loopback"
    (choice,) = data["choices"]
    assert choice["finish_reason"] == choice["native_finish_reason"] == "stop"
    assert choice["message"]["content"] == "Paris."
    assert data["usage"]["cost"] == cost
    assert data["usage"]["cost_details"]["upstream_inference_cost"] == cost
    assert data["usage"]["is_byok"] is False
    assert data["usage"]["prompt_tokens"] == 74
    assert data["usage"]["completion_tokens"] == 21
    assert data["usage"]["total_tokens"] == 95
    assert data["usage"]["completion_tokens_details"]["reasoning_tokens"] == 2


async def test_gemini_answer_equals_a_recorded_generate_content_response() -> None:
    real = fixture("gemini_generate_ok.json")
    usage = Usage(9, 43, 52, reasoning_tokens=34)
    text = "Hello! How can I help you today?"
    async with (
        LoopbackServer(text=text, usage=usage) as server,
        httpx.AsyncClient() as client,
    ):
        reply = await post(client, server, "gemini")
    assert reply.status_code == 200
    assert reply.headers["content-type"] == real["headers"]["content-type"]
    data = reply.json()
    assert data["responseId"] == "loopback-1"
    expected = dict(real["body"], responseId="loopback-1")
    assert data == expected  # thoughts are billed but not in candidatesTokenCount


async def test_anthropic_answer_has_the_messages_shape_and_excludes_cache_reads() -> (
    None
):
    usage = Usage(1114, 33, 1147, cached_input_tokens=1111)
    async with (
        LoopbackServer(text="Python is...", usage=usage) as server,
        httpx.AsyncClient() as client,
    ):
        reply = await client.post(
            server.anthropic_base_url + "/v1/messages?beta=true",
            json=BODIES["anthropic"],
        )
        (record,) = server.requests
    assert reply.status_code == 200
    assert reply.headers["request-id"] == "req_loopback_1"
    data = reply.json()
    real = fixture("anthropic_messages_ok_cache.json")["body"]
    assert paths(data) == paths(real)
    assert data["id"] == "msg_loopback_1"
    assert data["type"] == "message"
    assert data["role"] == "assistant"
    assert data["model"] == "claude-sonnet-4-5"
    assert data["content"] == [{"type": "text", "text": "Python is..."}]
    assert data["stop_reason"] == "end_turn"
    assert data["stop_sequence"] is None
    assert data["usage"]["input_tokens"] == 3  # Anthropic leaves cached tokens out
    assert data["usage"]["cache_read_input_tokens"] == 1111
    assert data["usage"]["cache_creation_input_tokens"] == 0
    assert data["usage"]["output_tokens"] == 33
    assert record.query == {"beta": "true"}


async def test_anthropic_stream_has_the_real_events_in_order() -> None:
    text = "A system is an organized collection of interconnected components."
    usage = Usage(1042, 100, 1142, cached_input_tokens=1031)
    async with (
        LoopbackServer(text=text, usage=usage, finish_reason="length") as s,
        httpx.AsyncClient() as client,
    ):
        body = dict(BODIES["anthropic"], stream=True)
        async with client.stream("POST", url(s, "anthropic"), json=body) as reply:
            assert reply.status_code == 200
            assert reply.headers["content-type"] == ("text/event-stream; charset=utf-8")
            assert reply.headers["transfer-encoding"] == "chunked"
            assert reply.headers["request-id"] == "req_loopback_1"
            raw = (await reply.aread()).decode()
        assert s.requests[0].stream is True
    events = sse_events(raw)
    names = [name for name, _ in events]
    deltas = names.count("content_block_delta")
    assert deltas == 3  # 65 characters, 32 a delta
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * deltas,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    real = sse_events("\n".join(fixture("anthropic_stream_sse.json")["body"]))
    real_by_name = dict(real)
    for name, data in events:
        assert paths(data) == paths(real_by_name[name]), name
    start = events[0][1]["message"]
    assert start["model"] == "claude-sonnet-4-5"
    assert start["usage"]["input_tokens"] == 11
    assert start["usage"]["cache_read_input_tokens"] == 1031
    streamed = "".join(
        data["delta"]["text"] for name, data in events if name == "content_block_delta"
    )
    assert streamed == text
    final = events[-2][1]
    assert final["delta"]["stop_reason"] == "max_tokens"
    assert final["usage"]["output_tokens"] == 100
    assert final["usage"]["input_tokens"] == 11


async def test_model_comes_from_the_request_unless_configured() -> None:
    async with LoopbackServer() as server, httpx.AsyncClient() as client:
        gemini = (await post(client, server, "gemini")).json()
        no_model = await client.post(url(server, "openrouter"), json={"messages": []})
        server.answer = Respond(model="pinned-model")
        pinned = (await post(client, server, "openai")).json()
    assert gemini["modelVersion"] == "gemini-2.5-flash"  # named in the path
    assert pinned["model"] == "pinned-model"
    assert no_model.json()["model"] == "loopback/model"


@pytest.mark.parametrize("route", ["openai", "openrouter", "gemini", "anthropic"])
async def test_default_usage_is_counted_from_the_prompt_and_the_answer(
    route: Route,
) -> None:
    async with LoopbackServer(text="12345678") as server, httpx.AsyncClient() as client:
        data = (await post(client, server, route)).json()
    if route == "gemini":
        metadata = data["usageMetadata"]
        counts = (
            metadata["promptTokenCount"],
            metadata["candidatesTokenCount"],
            metadata["totalTokenCount"],
        )
    elif route == "anthropic":
        usage = data["usage"]
        counts = (
            usage["input_tokens"],
            usage["output_tokens"],
            usage["input_tokens"] + usage["output_tokens"],
        )
    else:
        usage = data["usage"]
        counts = (
            usage["prompt_tokens"],
            usage["completion_tokens"],
            usage["total_tokens"],
        )
    assert counts == (PROMPT_TOKENS, 2, PROMPT_TOKENS + 2)
    if route == "openrouter":
        # $1 per million input tokens, $2 per million output tokens.
        assert json.loads(
            json.dumps(data["usage"]["cost"]), parse_float=Decimal
        ) == Decimal("0.00001")


FINISH_CASES = [
    ("openai", "length", "length"),
    ("openai", "content_filter", "content_filter"),
    ("openai", "tool_calls", "tool_calls"),
    ("openrouter", "length", "length"),
    ("gemini", "stop", "STOP"),
    ("gemini", "length", "MAX_TOKENS"),
    ("gemini", "other", "OTHER"),
    ("gemini", "RECITATION", "RECITATION"),
    ("anthropic", "length", "max_tokens"),
    ("anthropic", "refusal", "refusal"),
    ("anthropic", "tool_calls", "tool_use"),
]


@pytest.mark.parametrize(("route", "finish", "wire"), FINISH_CASES)
async def test_finish_reason_is_said_in_each_formats_words(
    route: Route, finish: str, wire: str
) -> None:
    async with (
        LoopbackServer(text="cut", finish_reason=finish) as server,
        httpx.AsyncClient() as client,
    ):
        data = (await post(client, server, route)).json()
    if route == "gemini":
        said = data["candidates"][0]["finishReason"]
    elif route == "anthropic":
        said = data["stop_reason"]
    else:
        said = data["choices"][0]["finish_reason"]
    assert said == wire


async def test_openai_refusal_is_in_message_refusal_with_finish_reason_stop() -> None:
    async with (
        LoopbackServer(text="I can't help.", finish_reason="refusal") as s,
        httpx.AsyncClient() as client,
    ):
        data = (await post(client, s, "openai")).json()
    (choice,) = data["choices"]
    assert choice["message"]["content"] is None
    assert choice["message"]["refusal"] == "I can't help."
    assert choice["finish_reason"] == "stop"


async def test_gemini_safety_block_withholds_the_text_like_the_real_api() -> None:
    async with (
        LoopbackServer(text="secret", finish_reason="content_filter") as s,
        httpx.AsyncClient() as client,
    ):
        data = (await post(client, s, "gemini")).json()
    real = fixture("gemini_safety_block.json")["body"]
    (candidate,) = data["candidates"]
    assert candidate["content"] == real["candidates"][0]["content"] == {}
    assert candidate["finishReason"] == "SAFETY"
    assert any(rating.get("blocked") for rating in candidate["safetyRatings"])
    assert "candidatesTokenCount" not in data["usageMetadata"]
    assert data["usageMetadata"]["totalTokenCount"] == PROMPT_TOKENS


async def test_text_can_be_written_from_the_request() -> None:
    def shout(request: RecordedRequest) -> str:
        return f"{request.route}: {request.prompt.upper()}"

    async with LoopbackServer(text=shout) as server, httpx.AsyncClient() as client:
        openai = (await post(client, server, "openai")).json()
        gemini = (await post(client, server, "gemini")).json()
        blocks = dict(
            BODIES["anthropic"],
            messages=[
                {"role": "user", "content": [{"type": "text", "text": "hi you"}]}
            ],
        )
        anthropic = (await post(client, server, "anthropic", blocks)).json()
    assert openai["choices"][0]["message"]["content"] == "openai: HELLO THERE"
    assert gemini["candidates"][0]["content"]["parts"][0]["text"] == (
        "gemini: HELLO THERE"
    )
    assert anthropic["content"][0]["text"] == "anthropic: HI YOU"


async def test_an_async_text_function_is_awaited_and_a_failing_one_gives_500() -> None:
    async def slow_echo(request: RecordedRequest) -> str:
        await anyio.lowlevel.checkpoint()
        return request.prompt[::-1]

    def broken(request: RecordedRequest) -> str:
        raise RuntimeError("bug in the test's text function")

    async with LoopbackServer(text=slow_echo) as server, httpx.AsyncClient() as client:
        echoed = (await post(client, server, "anthropic")).json()
        server.script(Respond(broken))
        failed = await post(client, server, "anthropic")
    assert echoed["content"][0]["text"] == "ereht olleH"
    assert failed.status_code == 500
    assert [r.status for r in server.requests] == [200, 500]
    assert failed.json()["error"]["type"] == "api_error"
    assert "bug in the test's text function" in failed.json()["error"]["message"]


AUTH_HEADERS: dict[Route, tuple[dict[str, str], dict[str, str]]] = {
    "openai": ({"authorization": "Bearer sk-right"}, {"authorization": "Bearer no"}),
    "openrouter": (
        {"authorization": "Bearer sk-right"},
        {"authorization": "Bearer no"},
    ),
    "gemini": ({"x-goog-api-key": "sk-right"}, {"x-goog-api-key": "no"}),
    "anthropic": ({"x-api-key": "sk-right"}, {"x-api-key": "no"}),
}


@pytest.mark.parametrize("route", ["openai", "openrouter", "gemini", "anthropic"])
async def test_wrong_or_missing_key_gets_401_in_the_providers_shape(
    route: Route,
) -> None:
    right, wrong = AUTH_HEADERS[route]
    async with (
        LoopbackServer(api_key="sk-right") as server,
        httpx.AsyncClient() as client,
    ):
        ok = await post(client, server, route, headers=right)
        bad = await post(client, server, route, headers=wrong)
        missing = await post(client, server, route)
        records = server.requests
    assert ok.status_code == 200
    assert bad.status_code == missing.status_code == 401
    assert [r.status for r in records] == [200, 401, 401]
    assert records[0].api_key == "sk-right"
    assert records[1].api_key == "no"
    assert records[2].api_key is None
    assert records[1].action is None  # refused before the script
    error: dict[str, Any] = bad.json()
    if route == "openai":
        assert error["error"]["code"] == "invalid_api_key"
        assert paths(error) == paths(fixture("openai_401_invalid_api_key.json")["body"])
    elif route == "openrouter":
        assert error["error"]["code"] == 401
    elif route == "gemini":
        assert error["error"]["status"] == "UNAUTHENTICATED"
        assert error["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    else:
        assert error["type"] == "error"
        assert error["error"]["type"] == "authentication_error"
        assert bad.headers["x-should-retry"] == "false"
    assert "sk-right" not in bad.text
    assert "sk-right" not in repr(records)


async def test_keys_are_accepted_where_each_provider_also_takes_them() -> None:
    async with (
        LoopbackServer(api_key="sk-right") as server,
        httpx.AsyncClient() as client,
    ):
        gemini = await client.post(
            url(server, "gemini") + "?key=sk-right", json=BODIES["gemini"]
        )
        anthropic = await post(
            client,
            server,
            "anthropic",
            headers={"authorization": "Bearer sk-right"},
        )
    assert gemini.status_code == 200
    assert anthropic.status_code == 200
    assert server.requests[0].as_json()["query"] == {"key": "[REDACTED]"}
    assert server.requests[1].as_json()["headers"]["authorization"] == "[REDACTED]"


async def test_unknown_paths_get_a_provider_shaped_404_and_are_recorded() -> None:
    async with LoopbackServer() as server, httpx.AsyncClient() as client:
        openai = await client.get(server.openai_base_url + "/models")
        openrouter = await client.get(server.openrouter_base_url + "/credits")
        gemini = await client.post(
            server.gemini_base_url + "/models/g:streamGenerateContent", json={}
        )
        anthropic = await client.get(
            server.base_url + "/api/hello", headers={"anthropic-version": "1"}
        )
        claude_cli = await client.get(
            server.base_url + "/v1/other", headers={"x-api-key": "k"}
        )
        head = await client.head(server.base_url + "/")
        records = server.requests
    assert openai.status_code == 404
    assert openai.json()["error"]["message"] == "Invalid URL (GET /v1/models)"
    assert openai.json()["error"]["type"] == "invalid_request_error"
    assert openrouter.json()["error"]["code"] == 404
    assert gemini.json()["error"]["status"] == "NOT_FOUND"
    assert anthropic.json()["error"]["code"] == 404  # /api/ is OpenRouter's
    assert claude_cli.json()["error"]["type"] == "not_found_error"
    assert head.status_code == 200
    assert head.content == b""
    assert [(r.method, r.path, r.route, r.status) for r in records] == [
        ("GET", "/v1/models", "openai", 404),
        ("GET", "/api/v1/credits", "openrouter", 404),
        ("POST", "/v1beta/models/g:streamGenerateContent", "gemini", 404),
        ("GET", "/api/hello", "openrouter", 404),
        ("GET", "/v1/other", "anthropic", 404),
        ("HEAD", "/", None, 200),
    ]


async def test_anthropic_count_tokens_counts_the_prompt() -> None:
    async with LoopbackServer() as server, httpx.AsyncClient() as client:
        reply = await client.post(
            server.base_url + "/v1/messages/count_tokens",
            json={
                "model": "m",
                "system": "Be brief.",
                "messages": [{"role": "user", "content": "Hello there"}],
            },
        )
    assert reply.status_code == 200
    assert reply.json() == {"input_tokens": PROMPT_TOKENS}


BAD_BODIES: list[tuple[Route, object, str]] = [
    ("openai", {"messages": []}, "you must provide a model parameter"),
    ("openai", {"model": "m", "messages": [], "stream": True}, "streams only"),
    ("openrouter", {"model": "m"}, "messages: Field required"),
    ("gemini", {"contents": []}, "contents is not specified"),
    ("anthropic", {"model": "m", "messages": []}, "max_tokens: Field required"),
    ("anthropic", ["not", "an", "object"], "not a JSON object"),
]


@pytest.mark.parametrize(("route", "body", "message"), BAD_BODIES)
async def test_requests_a_provider_would_reject_get_400_and_take_no_action(
    route: Route, body: object, message: str
) -> None:
    async with LoopbackServer() as server:
        server.script(Respond("kept for later"))
        async with httpx.AsyncClient() as client:
            reply = await client.post(url(server, route), json=body)
            later = await post(client, server, route)
    assert reply.status_code == 400
    assert message in reply.text
    assert later.status_code == 200
    assert "kept for later" in later.text


async def test_a_body_that_is_not_json_gets_400_and_is_recorded_raw() -> None:
    async with LoopbackServer() as server, httpx.AsyncClient() as client:
        reply = await client.post(url(server, "openai"), content=b"{not json")
        (record,) = server.requests
    assert reply.status_code == 400
    assert record.json is None
    assert record.body == b"{not json"
    assert record.as_json()["body"] == "{not json"
