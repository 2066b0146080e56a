"""`down`, after an orderly run and after a crash, leaves nothing of the local cloud on the host.

These tests start and stop their own local cloud, so they run in a pytest session of their own
(`make localcloud-down-test`), before any other local-cloud test, and are skipped when a local
cloud is already running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from localcloud import cli, config
from localcloud.host import cleanup, kernel
from tests.localcloud_harness import REPO, Cloud, requirements_missing, start_session_cloud, wait_ssh

pytestmark = pytest.mark.standalone


def kernel_limits() -> dict[str, int]:
    return {name: int((kernel.PROC_SYS / name).read_text().split()[0]) for name in kernel.LIMITS}


@pytest.fixture
def limits_before() -> dict[str, int]:
    """The kernel limits the local cloud raises, as they were before it started."""
    return kernel_limits()


@pytest.fixture
def own_cloud(tmp_path: Path, limits_before: dict[str, int]) -> Cloud:
    reason = requirements_missing()
    if reason:
        pytest.skip(f"skipped: {reason}")
    if cli.health(config.load()) is not None:
        pytest.skip("skipped: a local cloud is already running, and this test would take it down")
    cloud, started = start_session_cloud(tmp_path)
    assert started
    return cloud


def busy_cloud(cloud: Cloud) -> list[str]:
    """Two machines, an attached volume and an instance-store disk: every kind of host resource."""
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    first = cloud.launch(ec2, key_name=key_name)
    second = cloud.launch(ec2, key_name=key_name, InstanceType="m5ad.large")
    volume = ec2.create_volume(AvailabilityZone=first["Placement"]["AvailabilityZone"], Size=1)
    ec2.attach_volume(VolumeId=volume["VolumeId"], InstanceId=first["InstanceId"], Device="/dev/sdf")
    for instance in (first, second):
        wait_ssh(instance["PublicIpAddress"], key)
    cloud.idle()
    assert all(kernel_limits()[name] >= wanted for name, wanted in kernel.LIMITS.items())
    found = cleanup.leftovers(cloud.settings)
    assert len(found["processes"]) == 3 and len(found["namespaces"]) == 2 and len(found["links"]) == 2
    assert len(found["mounts"]) == 2, "each running machine's root is mounted in its directory"
    # The volume, the instance-store disk, and the btrfs store's own file system when there is one.
    store = 1 if cloud.settings.store.is_mount() else 0
    assert len(found["loop_devices"]) == 2 + store
    assert found["iptables_chains"] == ["filter/LOCALCLOUD", "filter/LOCALCLOUD-IN", "nat/LOCALCLOUD"]
    return [first["InstanceId"], second["InstanceId"]]


def nothing_left(settings: config.Settings, forward_before: str, limits_before: dict[str, int]) -> None:
    left = cleanup.leftovers(settings)
    assert left == {
        "processes": [],
        "mounts": [],
        "namespaces": [],
        "links": [],
        "loop_devices": [],
        "iptables_chains": [],
    }
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True).stdout
    assert "198.51.100." not in routes and "lcv" not in routes
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() == forward_before
    assert kernel_limits() == limits_before, "the kernel's inotify limits are back as they were"
    assert not any(settings.volumes.glob("*")) if settings.volumes.exists() else True
    assert not settings.store.is_mount() and not settings.store_image.exists(), "the btrfs store was left"


def run_down() -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "localcloud", "down"], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_down_after_an_orderly_run_leaves_nothing(own_cloud: Cloud, limits_before: dict[str, int]) -> None:
    forward_before = (own_cloud.settings.home / "ip_forward").read_text().strip()
    busy_cloud(own_cloud)
    result = run_down()
    assert result.returncode == 0, result.stderr
    assert "nothing is left behind" in result.stderr
    nothing_left(own_cloud.settings, forward_before, limits_before)


def test_down_after_a_crash_leaves_nothing(own_cloud: Cloud, limits_before: dict[str, int]) -> None:
    forward_before = (own_cloud.settings.home / "ip_forward").read_text().strip()
    busy_cloud(own_cloud)
    pid = cleanup.read_pid(own_cloud.settings.pidfile)
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while cleanup.process_is(pid, "localcloud") and time.monotonic() < deadline:
        time.sleep(0.1)
    orphans = cleanup.leftovers(own_cloud.settings)
    assert len(orphans["processes"]) == 2, "the machines outlive the crashed API process"
    result = run_down()
    assert result.returncode == 0, result.stderr
    nothing_left(own_cloud.settings, forward_before, limits_before)
