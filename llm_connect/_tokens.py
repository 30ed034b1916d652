"""Token counts for text no tokenizer has seen: an estimate and an upper bound."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["estimate_tokens", "max_input_tokens"]

#: Characters per token assumed for English-like text.
CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """Return about how many tokens ``text`` is: one per four characters, rounded up."""
    return -(-len(text) // CHARS_PER_TOKEN)


#: Tokens added per message for role markers and separators.
MESSAGE_OVERHEAD_TOKENS = 4


def max_input_tokens(contents: Iterable[str]) -> int:
    """An upper bound on the input tokens of messages with these contents.

    Byte-level tokenizers never put less than one UTF-8 byte in a token, so a
    message costs at most its UTF-8 length plus a few tokens of framing. The
    budget reserves this bound; the provider's real count is what is charged.
    """
    return sum(len(c.encode("utf-8")) + MESSAGE_OVERHEAD_TOKENS for c in contents)
