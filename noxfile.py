"""Test, lint and type-check sessions. ``nox`` runs them all; see README.md.

A missing interpreter is skipped locally and fails the run on CI (``CI`` set).
"""

from __future__ import annotations

import os

import nox

nox.needs_version = ">=2024.4.15"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_missing_interpreters = bool(os.environ.get("CI"))
nox.options.sessions = ["lint", "typecheck", "tests", "tests_asyncio_only"]

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
PYPROJECT = nox.project.load_toml("pyproject.toml")


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """The test suite; every async test runs under asyncio and under trio."""
    session.install(".", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("pytest", *session.posargs)


@nox.session(python="3.12")
def tests_asyncio_only(session: nox.Session) -> None:
    """The suite without trio installed: the library must import and work."""
    test_deps = [
        dep
        for dep in nox.project.dependency_groups(PYPROJECT, "test")
        if not dep.startswith("trio")
    ]
    session.install(".", *test_deps)
    session.run(
        "python",
        "-c",
        "import importlib.util, sys; "
        "sys.exit('trio is installed' if importlib.util.find_spec('trio') else 0)",
    )
    session.run(
        "pytest", *session.posargs, env={"LLM_CONNECT_TEST_BACKENDS": "asyncio"}
    )


@nox.session(python="3.12")
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python="3.12")
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install(".", *nox.project.dependency_groups(PYPROJECT, "typecheck"))
    session.run("mypy", "--strict", "llm_connect")


@nox.session(python="3.12")
def bench(session: nox.Session) -> None:
    """The benchmark suite against raw httpx and the peers (docs/performance.md).

    Not part of the default run. ``nox -s bench -- --only async_concurrent``
    runs one script; BENCH_ROUNDS / BENCH_SCALE shorten a run.
    """
    session.install(".", *nox.project.dependency_groups(PYPROJECT, "bench"))
    session.run("python", "bench/run_all.py", *session.posargs)
