"""The tutorial's image cycle on the local cloud, as a user runs it: configure a VM whose disks use
the lab's customer-managed KMS key, refuse to bake it while it holds AWS credentials, bake and
verify its image, run the bake again (nothing changes), terminate the VM (its image now exists),
share the image with a second account (share.yml: launch permission, snapshots, a grant on the
key) and relaunch a student's VM from it in that account.

The VM is configured once (JupyterLab with the research packages) and every step reuses it: this
is the suite's one configured-VM image cycle.
"""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest
from ansible_collections.labcloud.jupyter.plugins.module_utils.jupyter_client import run_code

from tests.integration.conftest import Playbooks, nothing_owned, owned, remove_everything_of
from tests.localcloud.test_images import ACCOUNT_B, other_account
from tests.localcloud_harness import free_port, ssh, wait_ssh

pytestmark = pytest.mark.slow

TOKEN_FILE = "/var/lib/jupyterlab/token"
PACKAGES_FILE = "/var/lib/labcloud/image-packages.txt"


def instance_of(ec2: Any, owner: str) -> dict:
    """The owner's one live instance."""
    found = [
        instance
        for reservation in ec2.describe_instances(
            Filters=[
                {"Name": "tag:Owner", "Values": [owner]},
                {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
            ]
        )["Reservations"]
        for instance in reservation["Instances"]
    ]
    assert len(found) == 1, found
    return found[0]


def tags(resource: dict) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}


def public_key(private_key: Any) -> str:
    """The public half of a private key file, as "<type> <key>"."""
    found = subprocess.run(["ssh-keygen", "-y", "-f", str(private_key)], capture_output=True, text=True, check=True)
    return " ".join(found.stdout.split()[:2])


def host_key(address: str, key: Any) -> str:
    return ssh(address, key, "cat /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[1]


def test_bake_verify_and_relaunch_from_the_image(playbooks: Playbooks) -> None:
    ec2 = playbooks.cloud.client()
    owner, student = playbooks.owner("img"), playbooks.owner("imgnew")
    # The verification's temporary owner, removed by the fixture should the test stop half-way.
    playbooks.owners.append(f"{owner[:25]}-verify")
    keys = playbooks.key_dir
    kms = playbooks.cloud.client("kms")
    lab_key = kms.create_key(Description="lab images")["KeyMetadata"]["Arn"]
    alias = f"alias/{owner}-images"
    kms.create_alias(AliasName=alias, TargetKeyId=lab_key)
    playbooks.ok(
        "launch.yml",
        "-e",
        f"owner={owner}",
        "-e",
        "configure=true",
        "-e",
        "ec2_instance_project=ocean",
        "-e",
        f"kms_key_id={alias}",
    )
    builder = instance_of(ec2, owner)
    root = builder["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    assert ec2.describe_volumes(VolumeIds=[root])["Volumes"][0]["KmsKeyId"] == lab_key
    address, key = builder["PublicIpAddress"], keys / f"jupyter-{owner}.pem"
    builder_token = ssh(address, key, f"sudo cat {TOKEN_FILE}").stdout.strip()
    builder_host_key = host_key(address, key)
    ssh(address, key, "printf '{\"cells\": []}' > ~/notebooks/kept.ipynb")

    # A VM holding AWS credentials is not baked: the run names the file, before anything is stopped.
    ssh(
        address,
        key,
        "mkdir -p ~/.aws && printf '[default]\\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\\n"
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\\n' > ~/.aws/credentials",
    )
    refused = playbooks.run("image.yml", "-e", f"owner={owner}", "-e", "version=v1")
    assert refused.returncode != 0
    assert "/home/admin/.aws/credentials: AWS credentials file" in refused.output, refused.tail()
    assert instance_of(ec2, owner)["State"]["Name"] == "running"
    assert not ec2.describe_images(Owners=["self"], Filters=[{"Name": "tag:Owner", "Values": [owner]}])["Images"]
    ssh(address, key, "rm -r ~/.aws")

    baked = playbooks.ok("image.yml", "-e", f"owner={owner}", "-e", "version=v1", "-e", "verify=true")
    name = f"jupyter-{owner}-ocean-v1"
    image_id = re.search(rf"^{name}: (ami-[0-9a-f]+) \(new, from {builder['InstanceId']}\)$", baked.stdout, re.M)
    assert image_id, baked.tail()
    image_id = image_id.group(1)
    assert re.search(r"storage: at most [0-9.]+ USD/month", baked.stdout)
    assert f"{name}: verified:" in baked.stdout
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    image_tags = tags(image)
    assert image["State"] == "available" and image["Name"] == name
    assert {k: image_tags.get(k) for k in ("Owner", "Project", "Version", "SourceInstance", "ManagedBy")} == {
        "Owner": owner,
        "Project": "ocean",
        "Version": "v1",
        "SourceInstance": builder["InstanceId"],
        "ManagedBy": "labcloud.jupyter",
    }
    assert image_tags["Verified"] == "passed"
    snapshot_ids = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]
    for snapshot in ec2.describe_snapshots(SnapshotIds=snapshot_ids)["Snapshots"]:
        assert tags(snapshot)["PackagesDigest"] == image_tags["PackagesDigest"]
        assert tags(snapshot)["Owner"] == owner
        assert snapshot["KmsKeyId"] == lab_key
    # The verification's VM, key pair and group are gone.
    assert nothing_owned(ec2, f"{owner[:25]}-verify")
    assert not (keys / f"jupyter-{owner[:25]}-verify.pem").exists()

    # The builder runs again as a new instance would: new host keys (accepted anew), new token.
    again = instance_of(ec2, owner)
    assert again["State"]["Name"] == "running"
    wait_ssh(again["PublicIpAddress"], key)
    ssh(again["PublicIpAddress"], key, "cloud-init status --wait >/dev/null")
    assert host_key(again["PublicIpAddress"], key) != builder_host_key
    listed = ssh(again["PublicIpAddress"], key, f"cat {PACKAGES_FILE}").stdout.splitlines()
    assert any(line.startswith("jupyterlab") for line in listed), listed[:20]

    # The same version again: the image is adopted, nothing changes.
    second = playbooks.ok("image.yml", "-e", f"owner={owner}", "-e", "version=v1", "-e", "verify=true")
    assert second.changed == 0, second.tail()
    assert f"{name}: {image_id} (it existed: adopted, nothing was made)" in second.stdout

    # A VM from the image with a setting of its own is configured: what differs is changed, not reinstalled.
    other, port = playbooks.owner("imgset"), free_port()
    differs = playbooks.ok(
        "launch.yml",
        "-e", f"owner={other}",
        "-e", f"image={image_id}",
        "-e", "configure=true",
        "-e", "jupyter_service_terminals_enabled=false",
        "-e", "tunnel=true",
        "-e", f"tunnel_local_port={port}",
    )  # fmt: skip
    # The launch opened the tunnel and printed the URL: a kernel answers through it.
    url = re.search(rf"http://localhost:{port}/lab\?token=[0-9a-f]+", differs.stdout)
    assert url, differs.tail()
    assert run_code(url.group(0), "print(6 * 7)", timeout=120)["stdout"].strip() == "42"
    playbooks.ok("tunnel.yml", "-e", f"owner={other}", "-e", "tunnel_state=closed")
    changed = differs.ran_on(f"jupyter-{other}", "changed")
    assert "labcloud.jupyter.jupyter_service : Write the JupyterLab server settings" in changed, changed
    for role in ("jupyterlab", "research_packages"):
        assert f"labcloud.jupyter.{role} : Install the packages into the virtualenv" not in changed, changed
    remove_everything_of(ec2, other)

    # Its image exists, so the VM may be terminated without force.
    playbooks.ok("lifecycle.yml", "-e", f"owner={owner}", "-e", "state=terminated")

    # A student in a second account: the image is not there for them until it is shared.
    b_keys = other_account(playbooks.cloud)
    as_b = playbooks.env(
        AWS_ACCESS_KEY_ID=b_keys["access_key"],
        AWS_SECRET_ACCESS_KEY=b_keys["secret_key"],
        AWS_SESSION_TOKEN=b_keys["session_token"],
    )
    b_ec2 = playbooks.cloud.client(**b_keys)
    unseen = playbooks.run("launch.yml", "-e", f"owner={student}", "-e", f"image={image_id}", env=as_b)
    assert unseen.returncode != 0 and image_id in unseen.output, unseen.tail()
    assert not owned(b_ec2, student)["instances"], "nothing was launched"
    # Shared without a grant on the key, the launch ends as on AWS, and launch.yml says why.
    playbooks.ok("share.yml", "-e", f"owner={owner}", "-e", f"accounts={ACCOUNT_B}", "-e", "grant_key_use=false")
    try:
        refused = playbooks.run(
            "launch.yml", "-e", f"owner={student}", "-e", f"image={image_id}", "-e", "configure=true", env=as_b
        )
        assert refused.returncode != 0
        assert "is terminated (Client.InternalError: Client error on launch)" in refused.output, refused.tail()
        assert "EC2 could not use a KMS key of its volumes" in refused.output, refused.tail()
        shared = playbooks.ok("share.yml", "-e", f"owner={owner}", "-e", f"accounts={ACCOUNT_B}")
        assert f"key grants (launching needs them): {ACCOUNT_B}" in shared.stdout

        # The student's VM from the image (the failed launch's key pair, group and address reused):
        # configure finds everything in place; the notebook is there; the token, the host keys and
        # the authorized keys are its own.
        relaunch = playbooks.ok(
            "launch.yml", "-e", f"owner={student}", "-e", f"image={image_id}", "-e", "configure=true", env=as_b
        )
        assert relaunch.recap[f"jupyter-{student}"]["changed"] == 0, "configure reinstalled nothing"
        # Configured with the same settings by the same roles, the image is recognised: no role runs.
        ran = relaunch.ran_on(f"jupyter-{student}")
        assert not [task for task in ran if task.startswith("labcloud.jupyter.")], ran
        relaunched = instance_of(b_ec2, student)
        assert relaunched["ImageId"] == image_id
        volume = relaunched["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
        assert b_ec2.describe_volumes(VolumeIds=[volume])["Volumes"][0]["KmsKeyId"] == lab_key
        new_address, new_key = relaunched["PublicIpAddress"], keys / f"jupyter-{student}.pem"
        ssh(new_address, new_key, "cloud-init status --wait >/dev/null")
        assert ssh(new_address, new_key, "cat ~/notebooks/kept.ipynb").stdout == '{"cells": []}'
        assert ssh(new_address, new_key, "systemctl is-active jupyterlab").stdout.strip() == "active"
        token = ssh(new_address, new_key, f"sudo cat {TOKEN_FILE}").stdout.strip()
        assert token and token != builder_token
        assert host_key(new_address, new_key) != builder_host_key
        authorized = ssh(new_address, new_key, "cat ~/.ssh/authorized_keys").stdout
        assert public_key(key) not in authorized, "the builder's key is not authorized on the new VM"
        assert authorized.split()[:2] == public_key(new_key).split()[:2] and len(authorized.splitlines()) == 1
        status = ssh(
            new_address, new_key, f"curl -s -H 'Authorization: token {token}' http://127.0.0.1:8887/api/status"
        ).stdout
        assert "started" in json.loads(status)
    finally:
        remove_everything_of(b_ec2, student)
