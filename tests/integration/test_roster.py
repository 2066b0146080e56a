"""A class roster: one isolated VM per owner, launched in one run, then terminated in one run."""

from __future__ import annotations

import csv
import os
import re
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from tests.integration.conftest import Playbooks, nothing_owned, owned
from tests.localcloud_harness import SSH_OPTIONS, ssh

pytestmark = [pytest.mark.localcloud, pytest.mark.slow]


def mode(path: Path) -> int:
    """A file's permission bits."""
    return stat.S_IMODE(path.stat().st_mode)


def check_handout(folder: Path, key: Path, address: str) -> None:
    """An owner's hand-out: a 0700 folder with only a 0600 copy of their key and their page, whose ssh line
    (paths relative to the folder) logs in to their VM when run in the folder."""
    assert mode(folder) == 0o700
    assert sorted(os.listdir(folder)) == sorted([key.name, "README.md", "index.html"])
    assert (folder / key.name).read_bytes() == key.read_bytes()
    assert (mode(folder / key.name), mode(key)) == (0o600, 0o400), "a 0600 copy; the original stays 0400"
    page = (folder / "README.md").read_text()
    assert re.search(r"token=[0-9a-f]", page) is None and str(key.parent) not in page
    (ssh_line,) = [line for line in page.splitlines() if line == f"ssh -i {key.name} admin@{address}"]
    command = shlex.split(ssh_line)
    logged_in = subprocess.run(
        [command[0], *SSH_OPTIONS, *command[1:], "id -un"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (logged_in.returncode, logged_in.stdout.strip()) == (0, "admin"), logged_in.stderr


def test_roster_of_four_owners(playbooks: Playbooks, tmp_path) -> None:
    ec2 = playbooks.cloud.client()
    owners = [playbooks.owner(f"class{n}") for n in range(4)]
    roster = tmp_path / "roster.yml"
    # The last student's group also admits a campus range and a home IPv6 network of its own.
    own_sources = ["169.254.1.1/32", "198.51.100.0/24", "2001:db8:7::/48"]
    roster.write_text(
        "---\nroster:\n"
        + "".join(f"  - {owner}\n" for owner in owners[:3])
        + f"  - owner: {owners[3]}\n    ssh_cidr: {own_sources}\n"
    )

    launched = playbooks.ok("launch.yml", "-e", f"@{roster}")
    assert launched.changed > 0
    # One play over all owners: every per-owner task ran in the same play, side by side.
    assert {f"owner-{owner}" for owner in owners} <= set(launched.recap)

    found = {owner: owned(ec2, owner) for owner in owners}
    for owner, resources in found.items():
        assert len(resources["instances"]) == 1, (owner, resources)
        assert len(resources["addresses"]) == 1 and len(resources["security_groups"]) == 1, (owner, resources)
        assert resources["key_pairs"] == [f"jupyter-{owner}"]
    # Nothing is shared between owners.
    for kind in ("instances", "addresses", "security_groups", "key_pairs"):
        values = [value for resources in found.values() for value in resources[kind]]
        assert len(set(values)) == len(owners), (kind, values)
    instances = {
        owner: ec2.describe_instances(InstanceIds=resources["instances"])["Reservations"][0]["Instances"][0]
        for owner, resources in found.items()
    }
    for owner, instance in instances.items():
        assert instance["KeyName"] == f"jupyter-{owner}"
        assert [g["GroupId"] for g in instance["SecurityGroups"]] == found[owner]["security_groups"]
        (group,) = ec2.describe_security_groups(GroupIds=found[owner]["security_groups"])["SecurityGroups"]
        admitted = sorted(
            [r["CidrIp"] for p in group["IpPermissions"] for r in p.get("IpRanges", [])]
            + [r["CidrIpv6"] for p in group["IpPermissions"] for r in p.get("Ipv6Ranges", [])]
        )
        assert admitted == (sorted(own_sources) if owner == owners[3] else ["169.254.1.1/32"]), (owner, group)

    # The connection table lists everyone and points at their hand-outs; each key logs in to its owner's VM only.
    handouts = playbooks.key_dir.parent / "launches" / "handouts"
    with (playbooks.key_dir.parent / "launches" / "roster.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["owner"] for row in rows] == sorted(owners)
    markdown = (playbooks.key_dir.parent / "launches" / "roster.md").read_text()
    ports = set()
    for row in rows:
        instance = instances[row["owner"]]
        assert row["instance"] == instance["InstanceId"] and row["ip"] == instance["PublicIpAddress"]
        key = playbooks.key_dir / f"jupyter-{row['owner']}.pem"
        assert row["handout"] == str(handouts / row["owner"])
        assert row["ssh"] == f"ssh -i {key} admin@{row['ip']}"
        ports.add(row["tunnel"].split("-L localhost:")[1].split(":")[0])
        assert f"| {row['owner']} | {row['instance']} | {row['ip']} | [handouts/{row['owner']}/]" in markdown
        assert ssh(row["ip"], key, "hostname").returncode == 0
        check_handout(Path(row["handout"]), key, row["ip"])
    assert mode(handouts) == 0o700 and sorted(os.listdir(handouts)) == sorted(owners)
    assert len(ports) == len(owners), "each owner gets a tunnel port of its own"
    first, second = rows[0], rows[1]
    refused = ssh(second["ip"], playbooks.key_dir / f"jupyter-{first['owner']}.pem", "true", check=False)
    assert refused.returncode != 0, "one owner's key does not open another owner's VM"

    # A second run of the roster changes nothing, hand-outs included.
    stamps = {path: path.stat().st_mtime_ns for path in handouts.rglob("*")}
    assert playbooks.ok("launch.yml", "-e", f"@{roster}").changed == 0
    assert {path: path.stat().st_mtime_ns for path in handouts.rglob("*")} == stamps

    # Terminate the whole roster without AMIs: refused, then forced and purged.
    refused_run = playbooks.run("lifecycle.yml", "-e", f"@{roster}", "-e", "state=terminated")
    assert refused_run.returncode != 0 and "no available AMI made" in refused_run.output
    assert all(owned(ec2, owner)["instances"] for owner in owners)
    playbooks.ok("lifecycle.yml", "-e", f"@{roster}", "-e", "state=terminated", "-e", "force=true", "-e", "purge=true")
    for owner in owners:
        assert nothing_owned(ec2, owner), (owner, owned(ec2, owner))
