"""Prices: the built-in table, model-name resolution, tiers and exact costs."""

from __future__ import annotations

import csv
import datetime
import subprocess
import sys
from decimal import ROUND_DOWN, Decimal, localcontext
from pathlib import Path

import pytest

from llm_connect import LLMConfigurationError, Usage, pricing
from llm_connect.pricing import ModelPrice, PriceTier

D = Decimal
CSV = Path(pricing.__file__).parent / "_prices.csv"


def test_the_table_says_when_its_prices_were_taken() -> None:
    assert datetime.date(2026, 12, 4) == pricing.PRICES_AS_OF
    assert "2026-12-04" in CSV.read_text().splitlines()[0]


def test_every_row_of_the_table_loads() -> None:
    lines = [line for line in CSV.read_text().splitlines() if not line.startswith("#")]
    rows = list(csv.DictReader(lines))
    assert len(rows) > 150
    for row in rows:
        provider = {"google": "gemini", "anthropic": "claude-code"}.get(
            row["provider"], row["provider"]
        )
        price = pricing.lookup(provider, row["model"])
        assert price is not None, row["model"]
        assert price.input == D(row["input_per_mtok"])
        assert price.output == D(row["output_per_mtok"])


@pytest.mark.parametrize(
    ("provider", "model", "row"),
    [
        ("openai", "gpt-4o-mini", "openai/gpt-4o-mini"),
        ("openai", "gpt-4o-mini-2024-07-18", "openai/gpt-4o-mini"),
        ("openai", "gpt-4o-2024-05-13", "openai/gpt-4o-2024-05-13"),  # own row
        ("openai", "GPT-5", "openai/gpt-5"),
        ("gemini", "gemini-2.5-flash", "google/gemini-2.5-flash"),
        ("gemini", "models/gemini-2.5-pro", "google/gemini-2.5-pro"),
        ("gemini", "gemini-2.0-flash-001", "google/gemini-2.0-flash"),
        (
            "gemini",
            "gemini-2.5-flash-preview-05-20",
            "google/gemini-2.5-flash-preview",
        ),
        ("claude-code", "claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5"),
        ("claude-code", "claude-sonnet-4-20250514", "anthropic/claude-sonnet-4-0"),
        (
            "claude-code",
            "claude-3-5-haiku-20241022",
            "anthropic/claude-3-5-haiku-latest",
        ),
        ("openrouter", "openai/gpt-4o", "openai/gpt-4o"),
        ("openrouter", "google/gemini-2.5-flash", "google/gemini-2.5-flash"),
        ("openrouter", "anthropic/claude-sonnet-4.5", "anthropic/claude-sonnet-4-5"),
    ],
)
def test_model_names_resolve_to_their_row(provider: str, model: str, row: str) -> None:
    table_provider, _, table_model = row.partition("/")
    expected = pricing._table()[(table_provider, table_model)]
    assert pricing.lookup(provider, model) == expected


@pytest.mark.parametrize(
    ("provider", "model"),
    [
        ("openai", "gpt-99"),
        ("openai", None),
        ("openai", ""),
        ("openrouter", "meta-llama/llama-3-70b"),
        ("custom", "gpt-4o"),
        ("fake", "fake-model"),
        ("gemini", "gpt-4o"),
    ],
)
def test_unknown_models_have_no_price_never_zero(provider: str, model: str) -> None:
    assert pricing.lookup(provider, model) is None


def test_cost_is_exact_with_cache_discount() -> None:
    price = pricing.lookup("openai", "gpt-5")
    assert price == ModelPrice("1.25", "10", "0.125")
    usage = Usage(1220, 100, 1320, cached_input_tokens=1100, reasoning_tokens=64)
    expected = (120 * D("1.25") + 1100 * D("0.125") + 100 * D(10)) / 1_000_000
    assert price.cost(usage) == expected == D("0.0012875")


def test_costs_ignore_the_callers_decimal_context() -> None:
    """A caller's coarse decimal context must not round what a call costs."""
    price = ModelPrice(input="1.25", output="10", cached_input="0.125")
    usage = Usage(1_234_567, 89_123, 1_323_690, cached_input_tokens=1_000_001)
    exact = D("1.309437625")  # (234566 x 1.25 + 1000001 x 0.125 + 89123 x 10) / 1e6
    worst = D("2.43443875")  # (1234567 x 1.25 + 89123 x 10) / 1e6
    assert price.cost(usage) == exact
    assert price.worst_case(1_234_567, 89_123) == worst
    with localcontext() as ctx:
        ctx.prec = 3
        ctx.rounding = ROUND_DOWN
        assert price.cost(usage) == exact
        assert price.worst_case(1_234_567, 89_123) == worst
        assert str(price.cost(usage)) == "1.309437625"


def test_cached_tokens_without_a_cache_price_bill_at_the_input_price() -> None:
    price = ModelPrice(input="2", output="4")
    assert price.cost(Usage(1000, 0, 1000, cached_input_tokens=500)) == D("0.002")


def test_long_prompts_are_billed_at_the_tier_price() -> None:
    price = pricing.lookup("gemini", "gemini-2.5-pro")
    assert price is not None
    assert price.tiers == (PriceTier(200_000, "2.5", "15", "0.25"),)
    short = Usage(200_000, 1000, 201_000)
    long = Usage(200_001, 1000, 201_001)
    assert price.cost(short) == (200_000 * D("1.25") + 1000 * D(10)) / 1_000_000
    assert price.cost(long) == (200_001 * D("2.5") + 1000 * D(15)) / 1_000_000
    assert price.worst_case(250_000, 100) == (250_000 * D("2.5") + 100 * D(15)) / (
        1_000_000
    )


def test_prices_accept_strings_ints_and_floats_via_str() -> None:
    price = ModelPrice(input=0.1, output=3, cached_input="0.01")
    assert (price.input, price.output, price.cached_input) == (
        D("0.1"),
        D(3),
        D("0.01"),
    )
    with pytest.raises(LLMConfigurationError, match="price per million"):
        ModelPrice(input=-1, output=1)
    with pytest.raises(LLMConfigurationError, match="tiers"):
        ModelPrice(input=1, output=1, tiers=("bad",))  # type: ignore[arg-type]


def test_register_overrides_the_table_for_the_process() -> None:
    mine = ModelPrice(input=1, output=2)
    try:
        pricing.register("openai", "my-finetune", mine)
        assert pricing.lookup("openai", "my-finetune") is mine
        pricing.register("openai", "gpt-4o", mine)
        assert pricing.lookup("openai", "gpt-4o") is mine
    finally:
        pricing._registered.clear()
        pricing.lookup.cache_clear()
    assert pricing.lookup("openai", "gpt-4o") == ModelPrice("2.5", "10", "1.25")


def test_the_table_is_read_on_first_lookup_not_at_import() -> None:
    code = (
        "import llm_connect.pricing as p\n"
        "print(p._table.cache_info().currsize)\n"
        "p.lookup('openai', 'gpt-4o')\n"
        "print(p._table.cache_info().currsize)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["0", "1"]
