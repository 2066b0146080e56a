"""What an owner holds in the test cloud, made with boto3 (or in moto's backend where no API call can):
instances, key pairs with their private keys, addresses and images, for the owner_info and owner_access tests.
"""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami
from moto.ec2.utils import random_ami_id

from localcloud.controller import set_state

REGION = "us-east-1"
MANAGED_BY = "labcloud.jupyter"
ROOT_DEVICE = "/dev/xvda"


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    """An EC2 Tags list."""
    return [{"Key": key, "Value": value} for key, value in tags.items()]


def tag_spec(resource_type: str, tags: dict[str, str]) -> list[dict[str, Any]]:
    """TagSpecifications for one resource type."""
    return [{"ResourceType": resource_type, "Tags": tag_list(tags)}]


def owner_tags(owner: str) -> dict[str, str]:
    """The tags of an owner's instance, as the collection launches it."""
    return {"Name": f"jupyter-{owner}", "Owner": owner, "ManagedBy": MANAGED_BY}


def run_instance(aws, tags: dict[str, str], image_id: str | None = None) -> str:
    """Launch a t3.micro instance with these tags (of a public Amazon image unless given), running when returned."""
    image_id = image_id or aws.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance_id = aws.ec2.run_instances(
        ImageId=image_id,
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.micro",
        TagSpecifications=tag_spec("instance", tags),
    )["Instances"][0]["InstanceId"]
    wait_for_state(aws, instance_id, "running")
    return instance_id


def wait_for_state(aws, instance_id: str, state: str, timeout: float = 30) -> None:
    """Wait until the instance is in the state (the local cloud boots its machines on a queue)."""
    deadline = time.monotonic() + timeout
    while instance_state(aws, instance_id) != state:
        assert time.monotonic() < deadline, f"{instance_id} did not become {state}"
        time.sleep(0.1)


def instance_state(aws, instance_id: str) -> str:
    """The instance's state name, as DescribeInstances reports it."""
    (reservation,) = aws.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return reservation["Instances"][0]["State"]["Name"]


def set_instance_state(instance_id: str, state: str, reason: str | None = None, account: str = "123456789012") -> None:
    """Set an instance's state in moto's in-process backend (its instances are running at once)."""
    set_state(ec2_backends[account][REGION].get_instance(instance_id), state, reason)


def make_private_key(path: Path) -> str:
    """Make an ed25519 private key with ssh-keygen (no .pub left beside it) and return its public half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.stem, "-f", str(path)], check=True)
    public = path.with_name(path.name + ".pub")
    text = public.read_text().strip()
    public.unlink()
    return text


def public_half(path: Path) -> str:
    """The public key of a private key file, without its comment."""
    out = subprocess.run(["ssh-keygen", "-y", "-f", str(path)], check=True, capture_output=True, text=True).stdout
    return " ".join(out.split()[:2])


def import_key(aws, name: str, public_key: str, tags: dict[str, str] | None = None) -> dict[str, Any]:
    """Import a key pair, tagged when tags are given."""
    params: dict[str, Any] = {"KeyName": name, "PublicKeyMaterial": public_key.encode()}
    if tags:
        params["TagSpecifications"] = tag_spec("key-pair", tags)
    return aws.ec2.import_key_pair(**params)


def allocate(aws, tags: dict[str, str], instance_id: str | None = None) -> dict[str, Any]:
    """Allocate a tagged VPC address, associated with the instance when given."""
    address = aws.ec2.allocate_address(Domain="vpc", TagSpecifications=tag_spec("elastic-ip", tags))
    if instance_id:
        aws.ec2.associate_address(AllocationId=address["AllocationId"], InstanceId=instance_id)
    return address


def add_image(
    account: str,
    name: str,
    *,
    architecture: str = "x86_64",
    state: str = "available",
    root_size: int = 8,
    created: datetime | None = None,
    tags: dict[str, str] | None = None,
    public: bool = True,
) -> str:
    """Register an image of an account in moto's backend, with what RegisterImage cannot set here
    (architecture, state, creation date, root snapshot size), and return its ID."""
    backend = ec2_backends[account][REGION]
    image = Ami(
        backend,
        random_ami_id(),
        name=name,
        description="",
        owner_id=account,
        public=public,
        architecture=architecture,
        state=state,
        creation_date=created or datetime.now(tz=UTC),
        virtualization_type="hvm",
        root_device_type="ebs",
        root_device_name=ROOT_DEVICE,
        region_name=f"{REGION}a",
        tags=tags,
    )
    image.localcloud_mappings = [
        {
            "DeviceName": ROOT_DEVICE,
            "Ebs": {
                "SnapshotId": image.ebs_snapshot.id,
                "VolumeSize": root_size,
                "VolumeType": "gp3",
                "DeleteOnTermination": True,
                "Encrypted": False,
            },
        }
    ]
    backend.amis[image.id] = image
    return image.id


def set_image_state(image_id: str, state: str, account: str = "123456789012") -> None:
    """Set an image's state in moto's in-process backend."""
    ec2_backends[account][REGION].amis[image_id].state = state
