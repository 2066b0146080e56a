"""Idle auto-stop on the local cloud: two VMs launched with a one-minute timeout, a one-minute warning
(given after a minute of idleness) and a check every 15 s. A long cell (run through the SSH tunnel)
keeps one up, an interactive SSH session the other; a snooze holds the first until it ends, the
other stops by itself; both come back with their data and server on start, and their journals hold
every decision. A VM that a power-off would terminate is refused. Each stage bounds its waits.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import REPO, Playbooks, nothing_owned, owned, remove_everything_of
from tests.localcloud_harness import SSH_OPTIONS, Cloud, ssh, wait_ssh
from tests.roles.test_molecule import ssh_tunnel

sys.path.insert(0, str(REPO / "collections"))
from ansible_collections.labcloud.jupyter.plugins.module_utils.jupyter_client import run_code

pytestmark = [pytest.mark.localcloud, pytest.mark.slow]

SETTINGS = ("-e", "autostop_idle_minutes=1", "-e", "autostop_warn_minutes=1", "-e", "autostop_interval_seconds=15")
# A VM that nothing keeps up stops at most a minute, a check, the warning's minute and a check
# after it became idle (the warning comes after a minute of idleness, a minute before the stop).
STOPS_WITHIN = 60 + 15 + 60 + 15 + 20
# Each "does not stop" stage lasts longer than that.
HELD = STOPS_WITHIN + 10
# Longer than the kernel's VM, idle from the end of its cell, would last without it.
SNOOZE_MINUTES = 3


@dataclass
class VM:
    owner: str
    instance_id: str
    address: str
    key: Path

    def run(self, command: str, **options: Any) -> str:
        return ssh(self.address, self.key, command, **options).stdout

    def journal(self, since: float = 0) -> list[str]:
        """The checker's decisions in the journal (every boot), since a time."""
        since_option = f"--since @{int(since)}" if since else ""
        return self.run(f"sudo journalctl -t labcloud-autostop -o cat --no-pager {since_option}").splitlines()


@dataclass
class Lab:
    playbooks: Playbooks
    ec2: Any
    kernel_vm: VM
    session_vm: VM


def state(ec2: Any, vm: VM) -> dict:
    return ec2.describe_instances(InstanceIds=[vm.instance_id])["Reservations"][0]["Instances"][0]


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 2) -> float:
    """Poll until predicate() is true; returns when (time.time()) it was seen true."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)
    return time.time()


def stopped(ec2: Any, vm: VM) -> bool:
    return state(ec2, vm)["State"]["Name"] in ("stopping", "stopped")


@pytest.fixture(scope="module")
def lab(session_cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Two owners' VMs launched with configure=true and short auto-stop times, snoozed (as root) until
    a test lets them go; everything of both owners is removed afterwards."""
    playbooks = Playbooks(session_cloud, tmp_path_factory.mktemp("autostop") / "keys")
    ec2 = session_cloud.client()
    owners = [playbooks.owner("as"), playbooks.owner("as")]
    roster = playbooks.key_dir.parent / "roster.yml"
    roster.write_text("---\nroster:\n" + "".join(f"  - {owner}\n" for owner in owners))
    try:
        playbooks.ok("launch.yml", "-e", f"@{roster}", "-e", "configure=true", *SETTINGS)
        vms = []
        for owner in owners:
            (instance_id,) = owned(ec2, owner)["instances"]
            vm = VM(owner, instance_id, "", playbooks.key_dir / f"jupyter-{owner}.pem")
            vm.address = state(ec2, vm)["PublicIpAddress"]
            vm.run("sudo labcloud-snooze 30")
            vms.append(vm)
        yield Lab(playbooks, ec2, *vms)
    finally:
        for owner in owners:
            try:
                remove_everything_of(ec2, owner)
            except Exception as exc:
                print(f"cleanup of {owner}: {exc}")


def test_bad_settings_are_refused_before_anything_is_launched(playbooks: Playbooks) -> None:
    owner = playbooks.owner("as")
    refused = playbooks.run(
        "launch.yml",
        "-e", f"owner={owner}",
        "-e", "configure=true",
        "-e", "autostop_idle_minutes=1",
        "-e", "autostop_warn_minutes=5",
    )  # fmt: skip
    assert refused.returncode != 0 and "autostop_warn_minutes from 0 to" in refused.output, refused.tail()
    assert nothing_owned(playbooks.cloud.client(), owner)


def long_cell(vm: VM, seconds: int) -> dict:
    """Run a cell that sleeps for `seconds` in a new kernel, through an SSH tunnel (ssh -N -L)."""
    token = vm.run("sudo cat /var/lib/jupyterlab/token").strip()
    with ssh_tunnel(vm.address, vm.key) as base:
        vm.run("sudo labcloud-snooze off")
        return run_code(
            f"{base}/lab", f"import time; time.sleep({seconds}); print('done')", token, timeout=seconds + 60
        )


def typing_session(vm: VM, seconds: int) -> None:
    """An interactive SSH login (with a terminal) where a command is typed every 15 s."""
    session = subprocess.Popen(
        ["ssh", "-tt", "-i", str(vm.key), *SSH_OPTIONS, f"admin@{vm.address}"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        session.stdin.write("date\n")
        session.stdin.flush()
        time.sleep(3)
        vm.run("sudo labcloud-snooze off")
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            time.sleep(15)
            session.stdin.write("date\n")
            session.stdin.flush()
        session.stdin.write("exit\n")
        session.stdin.flush()
        session.wait(timeout=20)
    finally:
        with contextlib.suppress(ProcessLookupError):
            session.kill()


def test_a_busy_kernel_and_an_interactive_ssh_session_keep_their_vms_up(lab: Lab) -> None:
    started = time.time()
    # Data to find again after the stops.
    lab.kernel_vm.run("echo kept > ~/notebooks/kept.txt")
    with ThreadPoolExecutor(2) as pool:
        cell = pool.submit(long_cell, lab.kernel_vm, HELD)
        session = pool.submit(typing_session, lab.session_vm, HELD)
        assert cell.result(timeout=HELD + 120)["stdout"] == "done\n"
        session.result(timeout=HELD + 120)
    for vm in (lab.kernel_vm, lab.session_vm):
        assert state(lab.ec2, vm)["State"]["Name"] == "running", vm.journal(started)[-5:]
    kernel_said = lab.kernel_vm.journal(started)
    assert sum(line.startswith("busy kernel: python3 ") for line in kernel_said) >= 4, kernel_said
    # The tunnel is an SSH session without a terminal: it is not what kept that VM up.
    assert not any(line.startswith("SSH session") for line in kernel_said), kernel_said
    session_said = lab.session_vm.journal(started)
    assert sum(line.startswith("SSH session of admin from ") for line in session_said) >= 4, session_said


def test_a_snoozed_vm_stops_when_the_snooze_ends_and_an_idle_one_by_itself(lab: Lab) -> None:
    snoozed_at = time.time()
    lab.kernel_vm.run(f"labcloud-snooze {SNOOZE_MINUTES}")
    snooze_ends = snoozed_at + SNOOZE_MINUTES * 60
    idle_stop = wait_for(lambda: stopped(lab.ec2, lab.session_vm), STOPS_WITHIN, "the idle VM stopping by itself")
    assert not stopped(lab.ec2, lab.kernel_vm), "the snoozed VM is still up"
    snoozed_stop = wait_for(
        lambda: stopped(lab.ec2, lab.kernel_vm), SNOOZE_MINUTES * 60 + STOPS_WITHIN, "the snoozed VM stopping"
    )
    assert snoozed_stop >= snooze_ends - 1, f"stopped {snooze_ends - snoozed_stop:.0f} s before the snooze ended"
    assert idle_stop < snoozed_stop
    for vm in (lab.kernel_vm, lab.session_vm):
        wait_for(lambda vm=vm: state(lab.ec2, vm)["State"]["Name"] == "stopped", 60, "stopped")
        assert state(lab.ec2, vm)["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown"


def test_after_a_start_data_server_and_the_decisions_are_back(lab: Lab) -> None:
    vms = (lab.kernel_vm, lab.session_vm)
    lab.ec2.start_instances(InstanceIds=[vm.instance_id for vm in vms])
    for vm in vms:
        wait_for(lambda vm=vm: state(lab.ec2, vm)["State"]["Name"] == "running", 120, "running again")
        wait_ssh(vm.address, vm.key, timeout=180)
        # Keep it up for the rest of the test (a snooze given as root).
        vm.run("sudo labcloud-snooze 20")
    assert lab.kernel_vm.run("cat ~/notebooks/kept.txt") == "kept\n"
    for vm in vms:
        probe = (
            "for i in $(seq 60); do curl -s -o /dev/null -w '%{http_code}' -H \"Authorization: token $(sudo cat "
            '/var/lib/jupyterlab/token)" http://127.0.0.1:8887/api/status | grep -q 200 && exit 0; sleep 1; done; '
            "exit 1"
        )
        vm.run(probe)
        assert vm.run("systemctl is-active labcloud-autostop.timer").strip() == "active"
    kernel_said = lab.kernel_vm.journal()
    for reason in ("busy kernel: ", "snoozed until ", "warning: idle ", "stopping: idle "):
        assert any(line.startswith(reason) for line in kernel_said), (reason, kernel_said[-20:])
    session_said = lab.session_vm.journal()
    for reason in ("SSH session of admin ", "warning: idle ", "stopping: idle "):
        assert any(line.startswith(reason) for line in session_said), (reason, session_said[-20:])


def test_configure_changes_nothing_again_and_refuses_a_vm_that_would_terminate(lab: Lab) -> None:
    vm = lab.session_vm
    limit = ("--limit", f"jupyter-{vm.owner}", *SETTINGS)
    again = lab.playbooks.ok("configure.yml", *limit)
    assert again.changed == 0, again.tail()
    terminate = {"Value": "terminate"}
    lab.ec2.modify_instance_attribute(InstanceId=vm.instance_id, InstanceInitiatedShutdownBehavior=terminate)
    try:
        refused = lab.playbooks.run("configure.yml", *limit)
        assert refused.returncode != 0, refused.tail()
        assert f"{vm.instance_id} terminates when it powers itself off" in refused.output, refused.tail()
        assert vm.run("systemctl is-enabled labcloud-autostop.timer", check=False).strip() == "disabled"
        assert vm.run("systemctl is-active labcloud-autostop.timer", check=False).strip() == "inactive"
    finally:
        lab.ec2.modify_instance_attribute(
            InstanceId=vm.instance_id, Attribute="instanceInitiatedShutdownBehavior", Value="stop"
        )
    assert state(lab.ec2, vm)["State"]["Name"] == "running"
