"""``LoopbackServer``: h11 on anyio sockets, serving four LLM wire formats."""

from __future__ import annotations

import contextlib
import enum
import http
import inspect
import json
import logging
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote

import anyio
import anyio.abc
import anyio.from_thread
import attrs
import h11
from anyio.abc import SocketAttribute

from llm_connect._models import Usage
from llm_connect._tokens import estimate_tokens
from llm_connect.exceptions import LLMConfigurationError

from ._actions import (
    ROUTES,
    Action,
    Fail,
    Malformed,
    Raw,
    Reset,
    Respond,
    Route,
    Stall,
    TextFunction,
    action_from_json,
)
from ._formats import (
    DEFAULT_MODELS,
    JSON,
    Answer,
    Reply,
    answer_reply,
    count_tokens_reply,
    default_message,
    error_reply,
    malformed_body,
    request_id_for,
    served_text,
)
from ._recording import RecordedRequest, message_texts

__all__ = ["DEFAULT_TEXT", "LoopbackServer"]

logger = logging.getLogger("llm_connect.testing.server")

#: The answer text when none is configured.
DEFAULT_TEXT = "Hello from the llm-connect loopback server."
HOST = "127.0.0.1"

_RECEIVE_BYTES = 65536
_MAX_HEAD_BYTES = 64 * 1024
_MAX_BODY_BYTES = 64 * 1024 * 1024
_LINGER_RESET = struct.pack("ii", 1, 0)
_GONE = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError)


class _State(enum.Enum):
    NEW = "new"
    RUNNING = "running"
    CLOSED = "closed"


class _BodyTooLarge(Exception):
    pass


class LoopbackServer:
    """A fake LLM provider on 127.0.0.1 that speaks the real wire formats.

    It answers OpenAI Chat Completions (``POST /v1/chat/completions``),
    OpenRouter (``POST /api/v1/chat/completions``), Gemini
    (``POST /v1beta/models/{model}:generateContent``) and Anthropic Messages
    (``POST /v1/messages``, JSON or a ``stream: true`` event stream), records
    every request, and misbehaves on a script (:meth:`script`).

    Run it one of three ways:

    - ``async with LoopbackServer() as server:`` serves from the current task
      (asyncio or trio) until the block ends; ``await
      task_group.start(server.serve)`` does the same in a task group of yours;
    - ``with LoopbackServer() as server:`` serves from a background thread
      with its own event loop, for synchronous code;
    - ``python -m llm_connect.testing.server --port 0`` as a separate process.

    A server runs once; make a new one to serve again.

    Args:
        text: the answer text, or a function ``(RecordedRequest) -> str``
            (it may be async; in thread mode it runs on the server's thread).
        model: the model named in answers; by default the requested one.
        usage: the token counts every answer reports; by default counted
            from the prompt and the answer (one token per four characters).
        cost: the USD cost OpenRouter answers report as ``usage.cost``; by
            default $1 per million input and $2 per million output tokens.
        finish_reason: ``"stop"``, ``"length"``, ``"content_filter"``,
            ``"refusal"``, ``"tool_calls"`` or ``"other"`` (each format says
            it in its own words), or a provider's own value sent verbatim.
        padding: whitespace sent before every JSON answer (OpenRouter style).
        delay: seconds every plain answer waits before it is sent.
        api_key: when set, a request must carry this key (``Authorization:
            Bearer``, ``x-goog-api-key`` or ``?key=``, ``x-api-key``) or it
            gets a 401 in its provider's shape.
        port: the port to bind on 127.0.0.1; 0 picks a free one.
        record: keep every request in :attr:`requests` (turn off for long
            benchmarks; :attr:`request_count` still counts).
        backend: the event loop of thread mode: ``"asyncio"`` or ``"trio"``.

    Raises:
        LLMConfigurationError: for a bad argument.
    """

    def __init__(
        self,
        *,
        text: str | TextFunction = DEFAULT_TEXT,
        model: str | None = None,
        usage: Usage | None = None,
        cost: Decimal | None = None,
        finish_reason: str = "stop",
        padding: str = "",
        delay: float = 0.0,
        api_key: str | None = None,
        port: int = 0,
        record: bool = True,
        backend: str = "asyncio",
    ) -> None:
        self._answer = Respond(
            text,
            model=model,
            usage=usage,
            cost=cost,
            finish_reason=finish_reason,
            padding=padding,
            delay=delay,
        )
        given: dict[str, object] = {"api_key": api_key, "port": port}
        key = given["api_key"]
        if key is not None and (not isinstance(key, str) or not key):
            raise LLMConfigurationError("api_key must be a non-empty str or None.")
        number = given["port"]
        if type(number) is not int or not 0 <= number < 65536:
            raise LLMConfigurationError(f"port must be 0-65535, not {port!r}.")
        if backend not in ("asyncio", "trio"):
            raise LLMConfigurationError(
                f"backend must be 'asyncio' or 'trio', not {backend!r}."
            )
        self._api_key = api_key
        self._requested_port = port
        self._record = bool(record)
        self._backend = backend
        self._port: int | None = None
        self._state = _State.NEW
        self._lock = threading.Lock()
        self._queues: dict[Route | None, deque[Action]] = {}
        self._requests: list[RecordedRequest] = []
        self._count = 0
        self._task_group: anyio.abc.TaskGroup | None = None
        self._thread_stack: contextlib.ExitStack | None = None

    def __repr__(self) -> str:
        where = f"port={self._port}" if self._port is not None else self._state.value
        return f"<LoopbackServer {where} requests={self._count}>"

    # -- where it listens ------------------------------------------------------

    @property
    def port(self) -> int:
        """The port it listens on (127.0.0.1).

        Raises:
            LLMConfigurationError: when the server is not running.
        """
        if self._port is None or self._state is not _State.RUNNING:
            raise LLMConfigurationError(
                "The LoopbackServer is not running: use it as "
                "`async with LoopbackServer() as server:` (or `with`)."
            )
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, the root of every route."""
        return f"http://{HOST}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """The OpenAI base URL: ``http://127.0.0.1:PORT/v1``."""
        return self.base_url + "/v1"

    @property
    def openrouter_base_url(self) -> str:
        """The OpenRouter base URL: ``http://127.0.0.1:PORT/api/v1``."""
        return self.base_url + "/api/v1"

    @property
    def gemini_base_url(self) -> str:
        """The Gemini base URL: ``http://127.0.0.1:PORT/v1beta``."""
        return self.base_url + "/v1beta"

    @property
    def anthropic_base_url(self) -> str:
        """The Anthropic base URL (what ``ANTHROPIC_BASE_URL`` takes): the root."""
        return self.base_url

    # -- what it answers ---------------------------------------------------------

    @property
    def answer(self) -> Respond:
        """The normal answer: what a request gets when no action is scripted.

        Assign a :class:`Respond` to change it (fields left ``None`` fall
        back to the values derived from the request).
        """
        return self._answer

    @answer.setter
    def answer(self, value: Respond) -> None:
        if not isinstance(value, Respond):
            raise LLMConfigurationError(
                f"answer must be a Respond, not {type(value).__name__}."
            )
        self._answer = value

    def script(self, *actions: Action, route: Route | None = None) -> None:
        """Queue actions, one per request, to be taken in order.

        A request takes the next action queued for its route, else the next
        one queued for any route, else the normal :attr:`answer`. Requests
        the server refuses first (unknown path, wrong key, unreadable body)
        take none. ``script(Fail(503), Respond())`` is "503 then success".

        Args:
            actions: :class:`Respond`, :class:`Fail`, :class:`Stall`,
                :class:`Reset`, :class:`Malformed` or :class:`Raw` values.
            route: ``"openai"``, ``"openrouter"``, ``"gemini"`` or
                ``"anthropic"`` to queue for that route only.

        Raises:
            LLMConfigurationError: for something that is not an action.
        """
        if route is not None and route not in ROUTES:
            raise LLMConfigurationError(
                f"route must be one of {list(ROUTES)} or None, not {route!r}."
            )
        for action in actions:
            if not isinstance(action, (Respond, Fail, Stall, Reset, Malformed, Raw)):
                raise LLMConfigurationError(
                    f"script() takes actions (Respond, Fail, Stall, Reset, "
                    f"Malformed, Raw), not {type(action).__name__}."
                )
        with self._lock:
            self._queues.setdefault(route, deque()).extend(actions)

    @property
    def pending_actions(self) -> tuple[Action, ...]:
        """Scripted actions not taken yet (those for any route first)."""
        with self._lock:
            return tuple(
                action
                for route in sorted(self._queues, key=lambda r: r or "")
                for action in self._queues[route]
            )

    # -- what it saw -------------------------------------------------------------

    @property
    def requests(self) -> tuple[RecordedRequest, ...]:
        """Every request received so far, in order (a snapshot; thread-safe)."""
        with self._lock:
            return tuple(self._requests)

    @property
    def request_count(self) -> int:
        """How many requests arrived (control requests excluded)."""
        with self._lock:
            return self._count

    def reset(self) -> None:
        """Forget the recorded requests and drop every pending action."""
        with self._lock:
            self._requests.clear()
            self._queues.clear()

    # -- running -----------------------------------------------------------------

    async def __aenter__(self) -> LoopbackServer:
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        try:
            await task_group.start(self.serve)
        except BaseException:
            task_group.cancel_scope.cancel()
            await task_group.__aexit__(None, None, None)
            raise
        self._task_group = task_group
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        task_group, self._task_group = self._task_group, None
        if task_group is None:
            return None
        task_group.cancel_scope.cancel()
        return await task_group.__aexit__(exc_type, exc, traceback)

    def __enter__(self) -> LoopbackServer:
        stack = contextlib.ExitStack()
        try:
            portal = stack.enter_context(
                anyio.from_thread.start_blocking_portal(self._backend)
            )
            stack.enter_context(portal.wrap_async_context_manager(self))
        except BaseException:
            stack.close()
            raise
        self._thread_stack = stack
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stack, self._thread_stack = self._thread_stack, None
        if stack is not None:
            stack.close()

    async def serve(
        self, *, task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen on 127.0.0.1 and serve until cancelled.

        ``port = await task_group.start(server.serve)`` returns once the
        server accepts connections. Cancelling the task closes the listener
        and every connection.

        Raises:
            LLMConfigurationError: if this server already ran, or the port
                cannot be bound.
        """
        with self._lock:
            if self._state is not _State.NEW:
                raise LLMConfigurationError(
                    "This LoopbackServer has already run; create a new one."
                )
            self._state = _State.RUNNING
        try:
            try:
                multi = await anyio.create_tcp_listener(
                    local_host=HOST, local_port=self._requested_port
                )
            except OSError as exc:
                raise LLMConfigurationError(
                    f"The loopback server cannot listen on {HOST}:"
                    f"{self._requested_port}: {exc}. Use port 0 for a free port."
                ) from exc
            async with multi:
                (listener,) = multi.listeners
                if not isinstance(listener, anyio.abc.SocketListener):
                    raise TypeError(f"unexpected listener {listener!r}")
                self._port = listener.extra(SocketAttribute.local_port)
                async with anyio.create_task_group() as connections:
                    task_status.started(self._port)
                    await self._accept_forever(listener, connections)
        finally:
            self._state = _State.CLOSED

    async def _accept_forever(
        self, listener: anyio.abc.SocketListener, connections: anyio.abc.TaskGroup
    ) -> None:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:  # out of file descriptors, for one
                logger.warning("loopback server: accept failed: %s", exc)
                await anyio.sleep(0.05)
                continue
            connections.start_soon(self._serve_connection, stream)

    # -- one connection ------------------------------------------------------------

    async def _serve_connection(self, stream: anyio.abc.SocketStream) -> None:
        conn = _parser()
        try:
            client = stream.extra(SocketAttribute.remote_address)
            peer = (str(client[0]), int(client[1]))
            while True:
                try:
                    request, body = await _read_request(conn, stream)
                except _BodyTooLarge:
                    await stream.send(
                        _plain_error(413, "The request body is too large.")
                    )
                    return
                if request is None:
                    return
                if not await self._handle(stream, conn, request, body, client=peer):
                    return
                # h11 parsed this request; a fresh parser takes what follows.
                data, closed = conn.trailing_data
                conn = _parser()
                if data:
                    conn.receive_data(data)
                if closed:
                    conn.receive_data(b"")
        except h11.RemoteProtocolError as exc:
            with contextlib.suppress(*_GONE):
                await stream.send(_plain_error(exc.error_status_hint, str(exc)))
        except _GONE:
            pass
        except Exception:  # a bug here must not take the server down
            logger.exception("loopback server: a connection failed")
        finally:
            with anyio.CancelScope(shield=True):
                await stream.aclose()

    async def _handle(
        self,
        stream: anyio.abc.SocketStream,
        conn: h11.Connection,
        request: h11.Request,
        body: bytes,
        *,
        client: tuple[str, int],
    ) -> bool:
        """Answer one request; return whether the connection may be reused."""
        arrived = time.monotonic()
        method = request.method.decode("ascii")
        target = request.target.decode("ascii", "replace")
        path, _, raw_query = target.partition("?")
        if "%" in path:
            path = unquote(path)
        headers: dict[str, str] = {}
        for raw_name, raw_value in request.headers.raw_items():
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        keep_alive = (
            request.http_version >= b"1.1"
            and "close" not in headers.get("connection", "").lower()
        )
        out = _Out(stream, close=not keep_alive, head_only=method == "HEAD")
        if path.startswith("/_control/"):
            await out.send_whole(self._control(method, path, body))
            return keep_alive
        query = dict(parse_qsl(raw_query, keep_blank_values=True)) if raw_query else {}
        route, endpoint, path_model = _match(method, path, headers)
        data: Any = None
        if body:
            try:
                data = json.loads(body)
            except ValueError:
                data = None
        model: str | None = path_model
        stream_wanted = False
        if isinstance(data, dict):
            if model is None and isinstance(data.get("model"), str):
                model = data["model"]
            stream_wanted = data.get("stream") is True

        refusal = None
        if route is not None and endpoint in ("answer", "count_tokens"):
            refusal = self._refuse(
                route, endpoint, headers, query, data=data, stream=stream_wanted
            )
        action: Action | None = None
        with self._lock:
            self._count += 1
            number = self._count
            if endpoint == "answer" and refusal is None:
                action = self._take_action(route)
        request_id = request_id_for(route, number)

        reply: Reply | None = None
        if refusal is not None:
            status, message, code = refusal
            reply = error_reply(route, status, message, request_id, code=code)
        elif endpoint == "health":
            reply = Reply(200, [("content-type", JSON)], b'{"status":"ok"}')
        elif endpoint is None or route is None:
            reply = error_reply(
                route, 404, f"Invalid URL ({method} {path})", request_id
            )
        elif endpoint == "count_tokens":
            tokens = sum(estimate_tokens(t) for t in message_texts(route, data))
            reply = count_tokens_reply(tokens, request_id)

        record = RecordedRequest(
            number=number,
            method=method,
            path=path,
            query=query,
            headers=headers,
            body=body,
            json=data,
            route=route,
            model=model,
            stream=stream_wanted,
            client=client,
            time=arrived,
            request_id=request_id,
            action=action,
            status=reply.status if reply is not None else _status_of(action),
        )
        if self._record:
            with self._lock:
                self._requests.append(record)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s -> %s", method, path, record.status)

        if reply is not None or action is None or route is None:
            assert reply is not None
            await out.send_whole(reply)
            return keep_alive
        finished = await self._perform(out, conn, record, route=route, action=action)
        return finished and keep_alive

    def _refuse(
        self,
        route: Route,
        endpoint: str,
        headers: dict[str, str],
        query: dict[str, str],
        *,
        data: Any,
        stream: bool,
    ) -> tuple[int, str, str | None] | None:
        """Why a real provider would reject this request before the model saw it."""
        if self._api_key is not None:
            sent = _api_key(route, headers, query)
            if sent is None:
                return 401, _MISSING_KEY[route], None
            if sent != self._api_key:
                return 401, _WRONG_KEY[route], None
        if not isinstance(data, dict):
            return 400, "The request body is not a JSON object.", None
        if route == "gemini":
            if not isinstance(data.get("contents"), list) or not data["contents"]:
                return 400, _NO_CONTENTS, None
            return None
        if not isinstance(data.get("messages"), list):
            return 400, "messages: Field required", None
        if route == "anthropic":
            if not isinstance(data.get("model"), str):
                return 400, "model: Field required", None
            if endpoint == "answer" and not isinstance(data.get("max_tokens"), int):
                return 400, "max_tokens: Field required", None
            return None
        if route == "openai" and not isinstance(data.get("model"), str):
            return 400, "you must provide a model parameter", None
        if stream:
            return (
                400,
                "The llm-connect loopback server streams only the Anthropic "
                "Messages format; send stream: false.",
                None,
            )
        return None

    def _take_action(self, route: Route | None) -> Action:
        """The next scripted action for ``route`` (call with the lock held)."""
        for key in (route, None):
            queue = self._queues.get(key)
            if queue:
                return queue.popleft()
        return self._answer

    # -- answering -----------------------------------------------------------------

    async def _resolve(self, action: Respond, record: RecordedRequest) -> Answer:
        respond = action.over(self._answer) if action is not self._answer else action
        route = record.route
        text_or_function = respond.text if respond.text is not None else DEFAULT_TEXT
        if isinstance(text_or_function, str):
            text = text_or_function
        else:
            produced = text_or_function(record)
            text = await produced if inspect.isawaitable(produced) else produced
            if not isinstance(text, str):
                raise TypeError(
                    f"the text function returned {type(text).__name__}, not str"
                )
        finish_reason = respond.finish_reason or "stop"
        usage = respond.usage
        if usage is None:
            prompt_tokens = sum(
                estimate_tokens(t) for t in message_texts(route, record.json)
            )
            answer_tokens = estimate_tokens(served_text(route, finish_reason, text))
            usage = Usage(prompt_tokens, answer_tokens, prompt_tokens + answer_tokens)
        return Answer(
            text=text,
            model=respond.model or record.model or DEFAULT_MODELS[route],
            usage=usage,
            cost=respond.cost,
            finish_reason=finish_reason,
            padding=respond.padding or "",
        )

    async def _perform(
        self,
        out: _Out,
        conn: h11.Connection,
        record: RecordedRequest,
        *,
        route: Route,
        action: Action,
    ) -> bool:
        """Carry out one scripted action; return whether the connection lives on."""
        request_id = record.request_id
        delay = action.delay
        if delay is None:  # a Respond that leaves it to the server's answer
            delay = self._answer.delay or 0.0
        if isinstance(action, Fail):
            reply = error_reply(
                route,
                action.status,
                action.message or default_message(action.status),
                request_id,
                retry_after=action.retry_after,
                in_body=action.in_body,
                stream=record.stream,
                model=record.model or DEFAULT_MODELS[route],
            )
            if action.headers:
                reply = _with_headers(reply, action.headers.items())
        elif isinstance(action, Raw):
            headers = dict(action.headers)
            headers.setdefault("content-type", JSON)
            reply = Reply(action.status, list(headers.items()), action.body)
        else:
            try:
                answer = await self._resolve(
                    action if isinstance(action, Respond) else Respond(), record
                )
            except Exception as exc:
                logger.exception("loopback server: the answer's text function failed")
                self._amend(record, status=500)
                message = f"The loopback server's text function failed: {exc!r}"
                await out.send_whole(error_reply(route, 500, message, request_id))
                return True
            reply = answer_reply(route, answer, request_id, stream=record.stream)
            if isinstance(action, Malformed):
                body = malformed_body(action.kind, reply.body)
                reply = reply._replace(status=action.status, body=body)
            elif isinstance(action, Respond) and answer.padding and delay:
                # OpenRouter style: headers and padding now, the JSON later.
                split = len(answer.padding.encode())
                await out.send_part(reply, reply.body[:split])
                if not await _pause(conn, out.stream, delay):
                    return False
                await out.send_rest(reply, reply.body[split:])
                return True

        if delay and not await _pause(conn, out.stream, delay):
            return False
        if isinstance(action, Reset):
            if action.send_headers:
                await out.send_part(
                    reply, reply.body[: _cut(action.after_bytes, reply)]
                )
            await _reset(out.stream)
            return False
        if isinstance(action, Stall):
            cut = _cut(action.after_bytes, reply)
            await out.send_part(reply, reply.body[:cut])
            if not await _pause(conn, out.stream, action.seconds):
                return False
            await out.send_rest(reply, reply.body[cut:])
            return True
        await out.send_whole(reply)
        return True

    def _amend(self, record: RecordedRequest, *, status: int) -> None:
        """Correct the recorded status of a request answered otherwise than planned."""
        with self._lock:
            for index in range(len(self._requests) - 1, -1, -1):
                if self._requests[index] is record:
                    self._requests[index] = attrs.evolve(record, status=status)
                    return

    # -- control endpoints -----------------------------------------------------------

    def _control(self, method: str, path: str, body: bytes) -> Reply:
        try:
            if method == "GET" and path == "/_control/requests":
                with self._lock:
                    count, records = self._count, list(self._requests)
                return _json_reply(
                    200,
                    {"count": count, "requests": [r.as_json() for r in records]},
                )
            if method == "POST" and path == "/_control/reset":
                self.reset()
                return _json_reply(200, {"ok": True})
            if method == "POST" and path == "/_control/script":
                data = json.loads(body) if body else None
                if isinstance(data, list):
                    data = {"actions": data}
                if not isinstance(data, dict) or not isinstance(
                    data.get("actions"), list
                ):
                    raise LLMConfigurationError(
                        'POST a JSON list of actions, or {"actions": [...], '
                        '"route": "openai"}.'
                    )
                actions = [action_from_json(item) for item in data["actions"]]
                self.script(*actions, route=data.get("route"))
                return _json_reply(200, {"pending": len(self.pending_actions)})
            if method == "POST" and path == "/_control/answer":
                data = json.loads(body) if body else {}
                if not isinstance(data, dict):
                    raise LLMConfigurationError("POST a JSON object of answer fields.")
                change = action_from_json({**data, "action": "respond"})
                assert isinstance(change, Respond)
                self.answer = change.over(self._answer)
                return _json_reply(200, {"ok": True})
        except (LLMConfigurationError, ValueError) as exc:
            return _json_reply(400, {"error": str(exc)})
        return _json_reply(
            404,
            {
                "error": f"No control endpoint {method} {path}; there are "
                "GET /_control/requests, POST /_control/script, "
                "POST /_control/answer and POST /_control/reset."
            },
        )


_NO_CONTENTS = "* GenerateContentRequest.contents: contents is not specified"
_MISSING_KEY: dict[Route, str] = {
    "openai": "You didn't provide an API key. You need to provide your API key "
    "in an Authorization header using Bearer auth.",
    "openrouter": "No auth credentials found",
    "gemini": "Method doesn't allow unregistered callers. Please use an API key.",
    "anthropic": "x-api-key header is required",
}
_WRONG_KEY: dict[Route, str] = {
    "openai": "Incorrect API key provided.",
    "openrouter": "User not found.",
    "gemini": "API key not valid. Please pass a valid API key.",
    "anthropic": "invalid x-api-key",
}


def _match(
    method: str, path: str, headers: dict[str, str]
) -> tuple[Route | None, str | None, str | None]:
    """``(route, endpoint, model in the path)``; endpoint ``None`` is a 404."""
    if method == "POST":
        if path == "/v1/chat/completions":
            return "openai", "answer", None
        if path == "/api/v1/chat/completions":
            return "openrouter", "answer", None
        if path == "/v1/messages":
            return "anthropic", "answer", None
        if path == "/v1/messages/count_tokens":
            return "anthropic", "count_tokens", None
        for prefix in ("/v1beta/models/", "/v1/models/"):
            if path.startswith(prefix) and path.endswith(":generateContent"):
                model = path[len(prefix) : -len(":generateContent")]
                if model and "/" not in model:
                    return "gemini", "answer", model
    if path == "/" and method in ("GET", "HEAD"):
        return None, "health", None
    # Not served: answer the 404 in the shape the client most likely expects.
    if path.startswith("/api/"):
        return "openrouter", None, None
    if path.startswith("/v1beta") or "x-goog-api-key" in headers:
        return "gemini", None, None
    if "anthropic-version" in headers or "x-api-key" in headers:
        return "anthropic", None, None
    return "openai", None, None


def _api_key(
    route: Route, headers: dict[str, str], query: dict[str, str]
) -> str | None:
    if route == "gemini":
        return headers.get("x-goog-api-key") or query.get("key")
    if route == "anthropic" and "x-api-key" in headers:
        return headers["x-api-key"]
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _status_of(action: Action | None) -> int | None:
    if isinstance(action, Fail):
        return 200 if action.in_body else action.status
    if isinstance(action, (Raw, Malformed)):
        return action.status
    if isinstance(action, Reset) and not action.send_headers:
        return None
    return 200


def _cut(after_bytes: int | None, reply: Reply) -> int:
    size = len(reply.body)
    return size // 2 if after_bytes is None else min(after_bytes, size)


def _with_headers(reply: Reply, extra: Iterable[tuple[str, str]]) -> Reply:
    headers = dict(reply.headers)
    headers.update(extra)
    return reply._replace(headers=list(headers.items()))


def _json_reply(status: int, data: object) -> Reply:
    return Reply(status, [("content-type", JSON)], json.dumps(data).encode())


async def _reset(stream: anyio.abc.SocketStream) -> None:
    """Close the connection with a TCP RST instead of an orderly FIN."""
    with contextlib.suppress(OSError):
        sock: socket.socket = stream.extra(SocketAttribute.raw_socket)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
    with anyio.CancelScope(shield=True):
        await stream.aclose()


def _parser() -> h11.Connection:
    return h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD_BYTES)


async def _read_request(
    conn: h11.Connection, stream: anyio.abc.SocketStream
) -> tuple[h11.Request | None, bytes]:
    """The next request and its body; ``(None, b"")`` when the client left."""
    request: h11.Request | None = None
    chunks: list[bytes] = []
    size = 0
    continued = False
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            if conn.they_are_waiting_for_100_continue and not continued:
                await stream.send(b"HTTP/1.1 100 Continue\r\n\r\n")
                continued = True
            try:
                data = await stream.receive(_RECEIVE_BYTES)
            except _GONE:
                data = b""
            conn.receive_data(data)
        elif type(event) is h11.Request:
            request = event
        elif type(event) is h11.Data:
            size += len(event.data)
            if size > _MAX_BODY_BYTES:
                raise _BodyTooLarge
            chunks.append(event.data)
        elif type(event) is h11.EndOfMessage:
            return request, b"".join(chunks)
        else:  # ConnectionClosed
            return None, b""


async def _pause(
    conn: h11.Connection, stream: anyio.abc.SocketStream, seconds: float
) -> bool:
    """Wait ``seconds``; return ``False`` if the client hung up meanwhile."""
    with anyio.move_on_after(seconds):
        while True:
            try:
                data = await stream.receive(_RECEIVE_BYTES)
            except _GONE:
                return False
            conn.receive_data(data)  # kept for the next request
    return True


_REASONS = {status.value: status.phrase for status in http.HTTPStatus}
_REASONS[529] = "Site is overloaded"


def _head(reply: Reply, *, close: bool) -> bytes:
    """The status line and headers of ``reply``, framing included."""
    status = reply.status
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, '')}\r\n"]
    lines.extend(f"{name}: {value}\r\n" for name, value in reply.headers)
    if reply.chunked:
        lines.append("transfer-encoding: chunked\r\n")
    else:
        lines.append(f"content-length: {len(reply.body)}\r\n")
    if close:
        lines.append("connection: close\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


class _Out:
    """Writes the responses to one request.

    h11 parsed the request; a response is just a status line, headers and a
    body framed by ``Content-Length`` (chunked for streams), so it is
    written directly, which halves the server's time per request.
    """

    __slots__ = ("close", "head_only", "stream")

    def __init__(
        self, stream: anyio.abc.SocketStream, *, close: bool, head_only: bool
    ) -> None:
        self.stream = stream
        self.close = close
        self.head_only = head_only

    def piece(self, reply: Reply, data: bytes) -> bytes:
        if self.head_only or not data:
            return b""
        if reply.chunked:
            return b"%x\r\n%b\r\n" % (len(data), data)
        return data

    def end(self, reply: Reply) -> bytes:
        return b"0\r\n\r\n" if reply.chunked and not self.head_only else b""

    async def send_whole(self, reply: Reply) -> None:
        await self.stream.send(
            _head(reply, close=self.close)
            + self.piece(reply, reply.body)
            + self.end(reply)
        )

    async def send_part(self, reply: Reply, part: bytes) -> None:
        await self.stream.send(_head(reply, close=self.close) + self.piece(reply, part))

    async def send_rest(self, reply: Reply, rest: bytes) -> None:
        await self.stream.send(self.piece(reply, rest) + self.end(reply))


def _plain_error(status: int, message: str) -> bytes:
    """A whole response for a request the server could not read, closing after."""
    reply = _json_reply(status, {"error": {"message": message, "code": status}})
    return _head(reply, close=True) + reply.body
