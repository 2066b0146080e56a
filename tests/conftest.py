"""Fixtures shared by the test suites that need the local cloud, and the collection importable as
ansible_collections.labcloud.jupyter in every suite.

collections/ansible_collections/labcloud/jupyter links back to the checkout, so putting
collections/ on sys.path is enough (ansible_collections is a namespace package, and amazon.aws
still resolves from the virtualenv's site-packages).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.localcloud_harness import Cloud, requirements_missing, start_session_cloud, stop_session_cloud

COLLECTIONS = Path(__file__).resolve().parents[1] / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))


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
