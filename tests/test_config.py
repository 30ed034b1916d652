from __future__ import annotations

from typing import Any

import pytest

from llm_connect import LLMConfigurationError, RunConfig


def test_defaults() -> None:
    config = RunConfig()
    assert config.model is None
    assert config.timeout == 600.0
    assert config.max_retries == 2
    assert config.budget_tracker is None
    assert config.explicit_fields == frozenset()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("model", ""),
        ("model", 3),
        ("system_prompt", b"bytes"),
        ("temperature", -0.1),
        ("temperature", 2.5),
        ("temperature", True),
        ("temperature", "0.5"),
        ("top_p", 0),
        ("top_p", 1.5),
        ("max_tokens", 0),
        ("max_tokens", 10.0),
        ("max_tokens", True),
        ("stop", ""),
        ("stop", []),
        ("stop", ["ok", ""]),
        ("stop", {"a": 1}),
        ("stop", 5),
        ("timeout", 0),
        ("timeout", -1),
        ("timeout", float("inf")),
        ("timeout", float("nan")),
        ("max_retries", -1),
        ("max_retries", 1.5),
        ("extra_body", ["not", "a", "mapping"]),
        ("extra_body", {1: "int key"}),
        ("extra_headers", {"x-n": 1}),
    ],
)
def test_bad_values_are_refused_with_the_field_named(field: str, value: Any) -> None:
    with pytest.raises(LLMConfigurationError, match=rf"RunConfig\.{field} must be"):
        RunConfig(**{field: value})


def test_values_are_normalised() -> None:
    config = RunConfig(temperature=1, top_p=1, stop="END", timeout=5)
    assert config.temperature == 1.0
    assert isinstance(config.temperature, float)
    assert config.stop == ("END",)
    assert RunConfig(stop=["a", "b"]).stop == ("a", "b")
    assert config.timeout == 5.0


def test_unset_fields_fall_through_and_set_fields_win() -> None:
    base = RunConfig(model="base-model", temperature=0.2, max_retries=5, timeout=30)
    call = RunConfig(temperature=0.9, max_retries=2)
    merged = call.merged_over(base)
    assert merged.model == "base-model"
    assert merged.temperature == 0.9
    # 2 is the default, but it was given explicitly, so it wins.
    assert merged.max_retries == 2
    assert merged.timeout == 30.0


def test_explicit_none_overrides_the_default() -> None:
    base = RunConfig(timeout=30, max_tokens=100)
    merged = RunConfig(timeout=None, max_tokens=None).merged_over(base)
    assert merged.timeout is None
    assert merged.max_tokens is None


def test_extra_mappings_merge_key_by_key() -> None:
    base = RunConfig(
        extra_body={"seed": 1, "user": "a"}, extra_headers={"x-a": "1", "x-b": "1"}
    )
    call = RunConfig(extra_body={"user": "b"}, extra_headers={"x-b": "2"})
    merged = call.merged_over(base)
    assert merged.extra_body == {"seed": 1, "user": "b"}
    assert merged.extra_headers == {"x-a": "1", "x-b": "2"}


def test_merge_with_nothing_returns_a_config_equal_to_the_original() -> None:
    config = RunConfig(model="m")
    assert config.merged_over(None) is config
    assert config.merged_over(RunConfig()) is config
    assert RunConfig().merged_over(config) is config


def test_evolve_marks_changes_as_set() -> None:
    config = RunConfig(model="m").evolve(max_retries=2, temperature=0.5)
    assert config.explicit_fields == {"model", "max_retries", "temperature"}
    merged = config.merged_over(RunConfig(max_retries=7, model="other"))
    assert (merged.model, merged.max_retries, merged.temperature) == ("m", 2, 0.5)


def test_evolve_validates_and_refuses_unknown_fields() -> None:
    with pytest.raises(LLMConfigurationError, match="no field modle"):
        RunConfig().evolve(modle="x")
    with pytest.raises(LLMConfigurationError, match="temperature"):
        RunConfig().evolve(temperature=9)


def test_is_frozen_and_compares_by_value() -> None:
    config = RunConfig(model="m", extra_body={"a": 1})
    with pytest.raises(AttributeError):
        config.model = "x"  # type: ignore[misc]
    assert config == RunConfig(model="m", extra_body={"a": 1})
    assert config != RunConfig(model="n", extra_body={"a": 1})
    assert hash(config) == hash(RunConfig(model="m", extra_body={"b": 2}))


def test_extra_body_is_copied() -> None:
    body = {"seed": 1}
    config = RunConfig(extra_body=body)
    body["seed"] = 2
    assert config.extra_body == {"seed": 1}


def test_repr_names_the_fields() -> None:
    assert "model='m'" in repr(RunConfig(model="m"))
