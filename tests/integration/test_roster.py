"""A class roster: one isolated VM per owner, launched in one run, then terminated in one run."""

from __future__ import annotations

import csv

import pytest

from tests.integration.conftest import Playbooks, nothing_owned, owned
from tests.localcloud_harness import ssh

pytestmark = [pytest.mark.localcloud, pytest.mark.slow]


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

    # The connection table lists everyone, and each key logs in to its owner's VM only.
    with (playbooks.key_dir.parent / "launches" / "roster.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["owner"] for row in rows] == sorted(owners)
    markdown = (playbooks.key_dir.parent / "launches" / "roster.md").read_text()
    ports = set()
    for row in rows:
        instance = instances[row["owner"]]
        assert row["instance"] == instance["InstanceId"] and row["ip"] == instance["PublicIpAddress"]
        assert row["key_file"] == str(playbooks.key_dir / f"jupyter-{row['owner']}.pem")
        assert row["ssh"] == f"ssh -i {row['key_file']} admin@{row['ip']}"
        ports.add(row["tunnel"].split("-L localhost:")[1].split(":")[0])
        assert f"| {row['owner']} | {row['instance']} | {row['ip']} |" in markdown
        assert ssh(row["ip"], row["key_file"], "hostname").returncode == 0
    assert len(ports) == len(owners), "each owner gets a tunnel port of its own"
    first, second = rows[0], rows[1]
    refused = ssh(second["ip"], first["key_file"], "true", check=False)
    assert refused.returncode != 0, "one owner's key does not open another owner's VM"

    # A second run of the roster changes nothing.
    assert playbooks.ok("launch.yml", "-e", f"@{roster}").changed == 0

    # Terminate the whole roster without AMIs: refused, then forced and purged.
    refused_run = playbooks.run("lifecycle.yml", "-e", f"@{roster}", "-e", "state=terminated")
    assert refused_run.returncode != 0 and "no available AMI made" in refused_run.output
    assert all(owned(ec2, owner)["instances"] for owner in owners)
    playbooks.ok("lifecycle.yml", "-e", f"@{roster}", "-e", "state=terminated", "-e", "force=true", "-e", "purge=true")
    for owner in owners:
        assert nothing_owned(ec2, owner), (owner, owned(ec2, owner))
