"""Playbook tests against the local cloud: ansible-playbook runs as a user would run it, and the
state is checked afterwards with boto3 and over SSH.

Every test uses owner names with a random suffix and a key directory of its own, and removes
whatever is tagged for its owners at the end, so that tests (and teammates) sharing the local cloud
never collide.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.localcloud_harness import Cloud, unique

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
TASK = re.compile(r"^TASK \[", re.M)
LIVE_STATES = ["pending", "running", "stopping", "stopped"]


@dataclass
class Run:
    """One ansible-playbook run: its exit code, output and recap."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def recap(self) -> dict[str, dict[str, int]]:
        return {
            host: {"ok": int(ok), "changed": int(changed), "unreachable": int(unreachable), "failed": int(failed)}
            for host, ok, changed, unreachable, failed in RECAP.findall(self.stdout)
        }

    @property
    def changed(self) -> int:
        return sum(host["changed"] for host in self.recap.values())

    def ran_on(self, host: str, results: str = "ok|changed") -> list[str]:
        """The names of the tasks that ran on a host with one of the results (by default ok or
        changed, not skipped), in order."""
        ran = []
        for block in TASK.split(self.stdout)[1:]:
            title, _, said = block.partition("\n")
            if re.search(rf"^({results}): \[{re.escape(host)}\]", said, re.M):
                ran.append(title.split("]")[0].strip())
        return ran

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def tail(self) -> str:
        return f"exit {self.returncode} after {self.seconds:.0f} s\n{self.stdout[-6000:]}\n{self.stderr[-3000:]}"


@dataclass
class Playbooks:
    """Runs the collection's playbooks against the local cloud with a key directory of its own."""

    cloud: Cloud
    key_dir: Path
    owners: list[str] = field(default_factory=list)

    def owner(self, prefix: str = "it") -> str:
        name = unique(prefix)
        self.owners.append(name)
        return name

    def env(self, **overrides: str) -> dict[str, str]:
        env = dict(os.environ, **self.cloud.env, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
        env.pop("ANSIBLE_CALLBACKS_ENABLED", None)
        env.update(overrides)
        return env

    def command(self, name: str, *extra: str, check: bool = False) -> list[str]:
        command = [str(PLAYBOOK), "-i", "inventory/localcloud", f"playbooks/{name}"]
        command += [
            "-e",
            f"labcloud_key_dir={self.key_dir}",
            "-e",
            "ec2_instance_type=t3.micro",
            "-e",
            "configure=false",
        ]
        if check:
            command.append("--check")
        return command + list(extra)

    def run(self, name: str, *extra: str, check: bool = False, env: dict[str, str] | None = None) -> Run:
        started = time.monotonic()
        result = subprocess.run(
            self.command(name, *extra, check=check),
            cwd=REPO,
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        return Run(result.returncode, result.stdout, result.stderr, time.monotonic() - started)

    def ok(self, name: str, *extra: str, check: bool = False, env: dict[str, str] | None = None) -> Run:
        run = self.run(name, *extra, check=check, env=env)
        assert run.returncode == 0, run.tail()
        return run


def owned(ec2: Any, owner: str) -> dict[str, list[str]]:
    """Everything in the cloud tagged Owner=<owner> (instances not yet terminated)."""
    tag = [{"Name": "tag:Owner", "Values": [owner]}]
    instances = [
        instance["InstanceId"]
        for reservation in ec2.describe_instances(
            Filters=[*tag, {"Name": "instance-state-name", "Values": LIVE_STATES}]
        )["Reservations"]
        for instance in reservation["Instances"]
    ]
    return {
        "instances": instances,
        "addresses": [a["AllocationId"] for a in ec2.describe_addresses(Filters=tag)["Addresses"]],
        "volumes": [v["VolumeId"] for v in ec2.describe_volumes(Filters=tag)["Volumes"]],
        "security_groups": [g["GroupId"] for g in ec2.describe_security_groups(Filters=tag)["SecurityGroups"]],
        "key_pairs": [k["KeyName"] for k in ec2.describe_key_pairs(Filters=tag)["KeyPairs"]],
    }


def nothing_owned(ec2: Any, owner: str) -> bool:
    return not any(owned(ec2, owner).values())


def remove_everything_of(ec2: Any, owner: str) -> None:
    """Delete whatever is tagged for the owner, whatever state a failed test left it in."""
    found = owned(ec2, owner)
    if found["instances"]:
        ec2.terminate_instances(InstanceIds=found["instances"])
        ec2.get_waiter("instance_terminated").wait(InstanceIds=found["instances"], WaiterConfig={"Delay": 1})
    for allocation in found["addresses"]:
        address = ec2.describe_addresses(AllocationIds=[allocation])["Addresses"][0]
        if address.get("AssociationId"):
            ec2.disassociate_address(AssociationId=address["AssociationId"])
        ec2.release_address(AllocationId=allocation)
    for volume in owned(ec2, owner)["volumes"]:
        ec2.delete_volume(VolumeId=volume)
    for group in found["security_groups"]:
        ec2.delete_security_group(GroupId=group)
    for key in found["key_pairs"]:
        ec2.delete_key_pair(KeyName=key)
    images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "tag:Owner", "Values": [owner]}])["Images"]
    for image in images:
        ec2.deregister_image(ImageId=image["ImageId"], DeleteAssociatedSnapshots=True)


@pytest.fixture
def playbooks(session_cloud: Cloud, tmp_path: Path) -> Iterator[Playbooks]:
    """Playbook runner; everything tagged for the owners it named is removed afterwards."""
    runner = Playbooks(session_cloud, tmp_path / "keys")
    yield runner
    ec2 = session_cloud.client()
    for owner in runner.owners:
        try:
            remove_everything_of(ec2, owner)
        except Exception as exc:
            print(f"cleanup of {owner}: {exc}")
