"""Adapters for the providers llm-connect supports, one module per provider."""

from __future__ import annotations

from .claude_code import ClaudeCodeAdapter

__all__ = ["ClaudeCodeAdapter"]
