"""Run the loopback server as a process: ``python -m llm_connect.testing.server``.

It prints the port it listens on as the first line of stdout, then serves on
127.0.0.1 until SIGTERM or SIGINT (exit status 0). Scripts drive it over HTTP
through the ``/_control/`` endpoints (see docs/testing.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation

import anyio

from llm_connect._models import Usage
from llm_connect.exceptions import LLMConfigurationError

from ._actions import action_from_json
from ._server import DEFAULT_TEXT, LoopbackServer

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, serve until a signal, and return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        server = _server_from(args)
    except LLMConfigurationError as exc:
        parser.error(str(exc))
    if args.verbose:
        logging.basicConfig(
            level=logging.DEBUG, format="%(asctime)s %(message)s", stream=sys.stderr
        )
    anyio.run(_serve, server, backend=args.backend)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llm_connect.testing.server",
        description=(
            "A fake LLM provider on 127.0.0.1 speaking the OpenAI, OpenRouter, "
            "Gemini and Anthropic wire formats. Prints its port on the first "
            "line of stdout and serves until SIGTERM or SIGINT."
        ),
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port to bind (default 0: a free one)"
    )
    parser.add_argument("--text", default=DEFAULT_TEXT, help="the answer text")
    parser.add_argument(
        "--model", help="model named in answers (default: the requested one)"
    )
    parser.add_argument("--input-tokens", type=int, help="reported input tokens")
    parser.add_argument("--output-tokens", type=int, help="reported output tokens")
    parser.add_argument(
        "--cached-tokens",
        type=int,
        default=0,
        help="of the input, how many were cached",
    )
    parser.add_argument(
        "--reasoning-tokens",
        type=int,
        default=0,
        help="of the output, how many were reasoning",
    )
    parser.add_argument(
        "--cost", help="USD cost OpenRouter answers report, e.g. 0.0012"
    )
    parser.add_argument(
        "--finish-reason",
        default="stop",
        help="stop, length, content_filter, refusal, tool_calls or other",
    )
    parser.add_argument(
        "--delay", type=float, default=0.0, help="seconds every answer waits"
    )
    parser.add_argument(
        "--api-key", help="require this API key (a wrong or missing one gets a 401)"
    )
    parser.add_argument(
        "--script",
        help='a JSON list of actions to start with, e.g. \'[{"action": "fail", '
        '"status": 503}, {"action": "respond"}]\'',
    )
    parser.add_argument(
        "--backend", choices=("asyncio", "trio"), default="asyncio", help="event loop"
    )
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="do not keep requests (for long benchmarks)",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="log one line per request to stderr"
    )
    return parser


def _server_from(args: argparse.Namespace) -> LoopbackServer:
    usage = None
    if args.input_tokens is not None or args.output_tokens is not None:
        if args.input_tokens is None or args.output_tokens is None:
            raise LLMConfigurationError(
                "--input-tokens and --output-tokens go together."
            )
        usage = Usage(
            args.input_tokens,
            args.output_tokens,
            args.input_tokens + args.output_tokens,
            cached_input_tokens=args.cached_tokens,
            reasoning_tokens=args.reasoning_tokens,
        )
    cost = None
    if args.cost is not None:
        try:
            cost = Decimal(args.cost)
        except InvalidOperation as exc:
            raise LLMConfigurationError(
                f"--cost must be a number, not {args.cost!r}."
            ) from exc
    server = LoopbackServer(
        text=args.text,
        model=args.model,
        usage=usage,
        cost=cost,
        finish_reason=args.finish_reason,
        delay=args.delay,
        api_key=args.api_key,
        port=args.port,
        record=not args.no_record,
        backend=args.backend,
    )
    if args.script:
        try:
            actions = json.loads(args.script)
        except ValueError as exc:
            raise LLMConfigurationError(f"--script is not JSON: {exc}") from exc
        if not isinstance(actions, list):
            raise LLMConfigurationError("--script must be a JSON list of actions.")
        server.script(*(action_from_json(item) for item in actions))
    return server


async def _serve(server: LoopbackServer) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with anyio.create_task_group() as task_group:
            port = await task_group.start(server.serve)
            print(port, flush=True)
            print(
                f"llm-connect loopback server on http://127.0.0.1:{port} "
                "(SIGTERM or Ctrl-C stops it)",
                file=sys.stderr,
                flush=True,
            )
            async for _ in signals:
                task_group.cancel_scope.cancel()
                break


if __name__ == "__main__":
    sys.exit(main())
