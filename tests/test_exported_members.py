from __future__ import annotations

import subprocess
import sys
import types

import llm_connect
import llm_connect.exceptions
import llm_connect.testing


def _public_names(module: types.ModuleType) -> set[str]:
    """What a user sees on a package whose __init__ only re-exports."""
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }


def test_all_is_sorted_and_matches_the_public_names() -> None:
    for package in (llm_connect, llm_connect.testing):
        lazy = set(getattr(package, "_LAZY", {}))
        assert list(package.__all__) == sorted(package.__all__), package.__name__
        assert set(package.__all__) == _public_names(package) | lazy, package.__name__


def test_lazy_names_resolve_and_are_listed() -> None:
    for name in llm_connect._LAZY:
        assert name in llm_connect.__all__
        assert name in dir(llm_connect)
        assert getattr(llm_connect, name).__name__ == name


def test_exceptions_all_lists_every_error_class() -> None:
    module = llm_connect.exceptions
    classes = {
        name
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    }
    assert list(module.__all__) == sorted(module.__all__)
    assert set(module.__all__) == classes


def test_every_exception_is_reexported_from_the_package() -> None:
    for name in llm_connect.exceptions.__all__:
        assert getattr(llm_connect, name) is getattr(llm_connect.exceptions, name)


def test_import_does_not_load_optional_parts() -> None:
    code = (
        "import sys, llm_connect\n"
        "heavy = ['trio', 'asyncio', 'httpx', 'llm_connect.adapters',\n"
        "         'llm_connect.testing', 'llm_connect.pricing']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def test_the_adapters_load_on_first_use() -> None:
    code = (
        "import sys, llm_connect\n"
        "adapter = llm_connect.OpenAIAdapter\n"
        "print(adapter.__module__, 'httpx' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["llm_connect.adapters.openai", "True"]
