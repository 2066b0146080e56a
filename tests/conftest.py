"""Fixtures shared by the test suites that need the local cloud."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.localcloud_harness import Cloud, requirements_missing, start_session_cloud, stop_session_cloud


@pytest.fixture(scope="session")
def session_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    reason = requirements_missing()
    if reason:
        pytest.skip(f"skipped: {reason}")
    cloud, started = start_session_cloud(tmp_path_factory.mktemp("localcloud"))
    yield cloud
    if started:
        stop_session_cloud()


@pytest.fixture
def cloud(session_cloud: Cloud) -> Iterator[Cloud]:
    """The local cloud; whatever the test launched is terminated afterwards."""
    yield session_cloud
    session_cloud.cleanup()
