from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests import openapi_check
from tests.harness import RunningHomeserver, running_homeserver

_session_init = aiohttp.ClientSession.__init__


def _recording_init(self: aiohttp.ClientSession, *args: Any, **kwargs: Any) -> None:
    """Every aiohttp session of the suite records module API answers (openapi_check)."""
    kwargs["trace_configs"] = [*(kwargs.get("trace_configs") or ()), openapi_check.trace_config()]
    _session_init(self, *args, **kwargs)


def pytest_configure(config: pytest.Config) -> None:
    aiohttp.ClientSession.__init__ = _recording_init  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    aiohttp.ClientSession.__init__ = _session_init  # type: ignore[method-assign]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The run fails when an answer the suite saw is not what openapi.yaml describes."""
    if not openapi_check.RECORDED:
        return
    problems = openapi_check.mismatches(openapi_check.served_document(), openapi_check.RECORDED)
    if not problems:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [
        f"{len(problems)} module API answer(s) the suite saw do not match openapi.yaml:",
        *(f"  {p}" for p in problems),
    ]
    if reporter is not None:
        reporter.write_sep("=", "OpenAPI check", red=True)
        for line in lines:
            reporter.write_line(line)
    else:
        print("\n".join(lines))
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    """One real Synapse with the Parta module for the whole test session."""
    directory: Path = tmp_path_factory.mktemp("synapse")
    with running_homeserver(directory) as running:
        yield running


def pytest_report_header() -> list[str]:
    from tests.harness import choose_backend

    return [f"parta: integration tests run Synapse on {choose_backend()}"]
