"""A cheap, deterministic token estimate for text no tokenizer has seen."""

from __future__ import annotations

__all__ = ["estimate_tokens"]

#: Characters per token assumed for English-like text.
CHARS_PER_TOKEN = 4


def estimate_tokens(text: str) -> int:
    """Return about how many tokens ``text`` is: one per four characters, rounded up."""
    return -(-len(text) // CHARS_PER_TOKEN)
