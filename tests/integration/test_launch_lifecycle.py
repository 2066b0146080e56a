"""One owner's VM through its whole life: launch, SSH, idempotence, stop/start, reboot, terminate."""

from __future__ import annotations

import stat
import subprocess

import pytest

from tests.integration.conftest import REPO, Playbooks, nothing_owned, owned
from tests.localcloud_harness import ssh, wait_ssh

pytestmark = [pytest.mark.localcloud, pytest.mark.slow]


def describe(ec2, instance_id: str) -> dict:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def boot_id(address: str, key) -> str:
    return ssh(address, key, "cat /proc/sys/kernel/random/boot_id").stdout.strip()


def test_launch_then_every_lifecycle_state(playbooks: Playbooks) -> None:
    ec2 = playbooks.cloud.client()
    owner = playbooks.owner("life")
    name = f"jupyter-{owner}"
    key = playbooks.key_dir / f"{name}.pem"

    # Check mode predicts a change and creates nothing.
    predicted = playbooks.ok("launch.yml", "-e", f"owner={owner}", check=True)
    assert predicted.changed > 0, predicted.tail()
    assert nothing_owned(ec2, owner), owned(ec2, owner)
    assert not key.exists()

    launched = playbooks.ok("launch.yml", "-e", f"owner={owner}")
    assert launched.changed > 0
    found = owned(ec2, owner)
    assert len(found["instances"]) == 1 and len(found["addresses"]) == 1, found
    assert found["security_groups"] and found["key_pairs"] == [name], found
    instance = describe(ec2, found["instances"][0])
    instance_id = instance["InstanceId"]
    address = ec2.describe_addresses(AllocationIds=found["addresses"])["Addresses"][0]
    assert address["InstanceId"] == instance_id
    eip = address["PublicIp"]
    assert instance["PublicIpAddress"] == eip

    # Names, tags and the security baseline.
    tags = {t["Key"]: t["Value"] for t in instance["Tags"]}
    assert tags["Name"] == name and tags["Owner"] == owner and tags["ManagedBy"] == "labcloud.jupyter"
    assert tags["Project"] == "labcloud-jupyter" and len(tags["Date"]) == 10
    assert instance["MetadataOptions"]["HttpTokens"] == "required"
    assert instance["KeyName"] == name and instance["InstanceType"] == "t3.micro"
    behaviour = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="instanceInitiatedShutdownBehavior")
    assert behaviour["InstanceInitiatedShutdownBehavior"]["Value"] == "stop"
    root = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])["Volumes"]
    assert [(v["Size"], v["VolumeType"], v["Encrypted"]) for v in root] == [(100, "gp3", True)]
    group = ec2.describe_security_groups(GroupIds=found["security_groups"])["SecurityGroups"][0]
    assert group["GroupName"] == name
    assert [
        (p["IpProtocol"], p["FromPort"], p["ToPort"], [r["CidrIp"] for r in p["IpRanges"]])
        for p in group["IpPermissions"]
    ] == [("tcp", 22, 22, ["169.254.1.1/32"])]
    for resource in ("security_groups", "key_pairs", "addresses", "volumes"):
        assert found[resource], f"{resource} carry the Owner tag"

    # The private key was saved once, 0400, and logs in; the summary says how.
    assert stat.S_IMODE(key.stat().st_mode) == 0o400
    assert ssh(eip, key, "id -un").stdout.strip() == "admin"
    assert f"ssh -i {key} admin@{eip}" in launched.stdout
    assert f"-L localhost:7005:localhost:8887 admin@{eip}" in launched.stdout
    assert "0.0104 USD/hour" in launched.stdout and "costs money" in launched.stdout
    table = (playbooks.key_dir.parent / "launches" / f"{name}.csv").read_text().splitlines()
    handout = playbooks.key_dir.parent / "launches" / "handouts" / owner
    assert table[0] == "owner,instance,ip,handout,ssh,tunnel" and table[1].startswith(
        f'"{owner}","{instance_id}","{eip}","{handout}"'
    )
    assert (handout / key.name).read_bytes() == key.read_bytes()
    assert f"Hand-outs, a folder to give each owner (key and page): {handout.parent}/<owner>" in launched.stdout

    # The inventory plugin finds it in the local cloud.
    graph = subprocess.run(
        [str(REPO / ".venv/bin/ansible-inventory"), "-i", "inventory/localcloud", "--graph"],
        cwd=REPO,
        env=playbooks.env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for group_name in (
        "@jupyter:",
        f"@owner_{owner.replace('-', '_')}:",
        "@project_labcloud_jupyter:",
        "@family_debian:",
    ):
        assert group_name in graph, graph
    assert f"--{name}" in graph

    # Second run, in check mode and for real: nothing changes, and the key file is the same.
    before = key.read_bytes()
    assert playbooks.ok("launch.yml", "-e", f"owner={owner}", check=True).changed == 0
    again = playbooks.ok("launch.yml", "-e", f"owner={owner}")
    assert again.changed == 0, again.tail()
    assert key.read_bytes() == before
    assert owned(ec2, owner)["instances"] == [instance_id]

    # Terminate is refused while no AMI of the instance exists, and nothing is touched.
    refused = playbooks.run("lifecycle.yml", "-e", f"owner={owner}", "-e", "state=terminated")
    assert refused.returncode != 0 and "no available AMI made" in refused.output, refused.tail()
    assert describe(ec2, instance_id)["State"]["Name"] == "running"
    assert owned(ec2, owner)["addresses"] == found["addresses"]

    # Stop: check (changed), real, check (not changed), real (not changed); the address stays.
    stop = ("-e", f"owner={owner}", "-e", "state=stopped")
    assert playbooks.ok("lifecycle.yml", *stop, check=True).changed > 0
    assert describe(ec2, instance_id)["State"]["Name"] == "running"
    assert playbooks.ok("lifecycle.yml", *stop).changed > 0
    assert describe(ec2, instance_id)["State"]["Name"] == "stopped"
    assert playbooks.ok("lifecycle.yml", *stop, check=True).changed == 0
    assert playbooks.ok("lifecycle.yml", *stop).changed == 0

    # Start: the Elastic IP is the same and SSH answers on it.
    start = ("-e", f"owner={owner}", "-e", "state=running")
    assert playbooks.ok("lifecycle.yml", *start).changed > 0
    assert describe(ec2, instance_id)["PublicIpAddress"] == eip
    wait_ssh(eip, key, timeout=30)
    assert playbooks.ok("lifecycle.yml", *start).changed == 0

    # Reboot: the operating system really restarts and comes back on the same address.
    first_boot = boot_id(eip, key)
    rebooted = playbooks.ok("lifecycle.yml", "-e", f"owner={owner}", "-e", "state=rebooted")
    assert rebooted.changed > 0
    assert boot_id(eip, key) != first_boot

    # A newer or different image does not make launch.yml start a second VM.
    image_id = ec2.create_image(InstanceId=instance_id, Name=f"{name}-image", NoReboot=True)["ImageId"]
    ec2.create_tags(Resources=[image_id], Tags=[{"Key": "Owner", "Value": owner}])
    ec2.get_waiter("image_available").wait(ImageIds=[image_id], WaiterConfig={"Delay": 1})
    relaunch = playbooks.ok("launch.yml", "-e", f"owner={owner}", "-e", f"image={image_id}")
    assert relaunch.changed == 0, relaunch.tail()
    assert owned(ec2, owner)["instances"] == [instance_id]

    # With an AMI of the instance, terminate goes ahead; purge removes the rest but the key file.
    ended = playbooks.ok("lifecycle.yml", "-e", f"owner={owner}", "-e", "state=terminated", "-e", "purge=true")
    assert ended.changed > 0
    assert describe(ec2, instance_id)["State"]["Name"] == "terminated"
    assert nothing_owned(ec2, owner), owned(ec2, owner)
    assert key.exists()
    assert (
        playbooks.ok("lifecycle.yml", "-e", f"owner={owner}", "-e", "state=terminated", "-e", "purge=true").changed == 0
    )
    ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
