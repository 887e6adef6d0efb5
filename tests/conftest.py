from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import RunningHomeserver, running_homeserver


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHomeserver]:
    """One real Synapse with the Parta module for the whole test session."""
    directory: Path = tmp_path_factory.mktemp("synapse")
    with running_homeserver(directory) as running:
        yield running


def pytest_report_header() -> list[str]:
    from tests.harness import choose_backend

    return [f"parta: integration tests run Synapse on {choose_backend()}"]
