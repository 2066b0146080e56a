"""A launch killed right after RunInstances converges, on the next run, to one of everything."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from tests.integration.conftest import REPO, Playbooks, owned

pytestmark = [pytest.mark.localcloud, pytest.mark.slow]


def test_launch_killed_after_run_instances_converges(playbooks: Playbooks) -> None:
    ec2 = playbooks.cloud.client()
    owner = playbooks.owner("killed")
    process = subprocess.Popen(
        playbooks.command("launch.yml", "-e", f"owner={owner}"),
        cwd=REPO,
        env=playbooks.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while not owned(ec2, owner)["instances"]:
            assert process.poll() is None, "the launch ended before RunInstances"
            assert time.monotonic() < deadline, "no instance appeared"
            time.sleep(0.1)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    interrupted = owned(ec2, owner)
    assert len(interrupted["instances"]) == 1 and not interrupted["addresses"], interrupted

    rerun = playbooks.ok("launch.yml", "-e", f"owner={owner}")
    assert rerun.changed > 0
    found = owned(ec2, owner)
    assert found["instances"] == interrupted["instances"], found
    assert len(found["addresses"]) == 1 and len(found["security_groups"]) == 1, found
    assert found["key_pairs"] == [f"jupyter-{owner}"]
    assert playbooks.ok("launch.yml", "-e", f"owner={owner}").changed == 0
