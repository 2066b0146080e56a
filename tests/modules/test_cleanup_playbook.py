"""playbooks/cleanup.yml against the local cloud's EC2 API: the zombies among the collection's resources
(an idle address, an unattached volume, an orphan snapshot, image versions beyond the newest ones, an
instance stopped for weeks with an image of it, the key pairs and groups of owners without an instance)
are listed with their monthly cost and removed only with confirm=true; what is in use, what is shared,
and everything the collection did not make (lookalike tags without ManagedBy) stays; a second run finds
nothing; bad input stops the run before any API call."""

from __future__ import annotations

import re
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto.ec2.models import ec2_backends
from owner_cloud import REGION, add_image, allocate, owner_tags, run_instance, tag_list, wait_for_state
from test_owner_access import make_group

from tests.modules.conftest import ACCOUNT_B
from tests.modules.test_share_playbook import changed, run_share

ACCOUNT_A = "123456789012"
MANAGED = {"ManagedBy": "labcloud.jupyter"}
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGmXL2Wq8h3y0x9Qw0fQ8J7i3V7w2m4l2lq1m3b5x6y7 test"


def run_cleanup(endpoint: str, *extra: str) -> subprocess.CompletedProcess:
    """Run playbooks/cleanup.yml as a user does (with the collection's summary)."""
    return run_share(endpoint, *extra, playbook="cleanup.yml")


def access(aws, vpc_id: str, owner: str, tags: dict[str, str]) -> dict[str, str]:
    """An owner's key pair and security group, with these tags."""
    aws.ec2.import_key_pair(
        KeyName=f"jupyter-{owner}", PublicKeyMaterial=PUBLIC_KEY.encode(),
        TagSpecifications=[{"ResourceType": "key-pair", "Tags": tag_list(tags)}],
    )  # fmt: skip
    return {"key": f"jupyter-{owner}", "group": make_group(aws, vpc_id, f"jupyter-{owner}", tags, [])}


def stopped_long_ago(aws, instance_id: str, days: int) -> None:
    """Stop an instance and make EC2 say it was stopped that many days ago (moto's in-process backend)."""
    aws.ec2.stop_instances(InstanceIds=[instance_id])
    wait_for_state(aws, instance_id, "stopped")
    instance = ec2_backends[ACCOUNT_A][REGION].get_instance(instance_id)
    instance._reason = f"User initiated ({datetime.now(tz=UTC) - timedelta(days=days):%Y-%m-%d %H:%M:%S} GMT)"


def image_version(aws, owner: str, version: str, days_old: int, **more: str) -> dict[str, str]:
    """An image of the owner's project as image.yml tags it (its snapshot too), made days_old ago."""
    tags = {**owner_tags(owner), "Project": "ocean", "Version": version, **more}
    image_id = add_image(
        ACCOUNT_A, f"jupyter-{owner}-ocean-{version}", created=datetime.now(tz=UTC) - timedelta(days=days_old),
        tags=tags, public=False, root_size=10,
    )  # fmt: skip
    (mapping,) = aws.ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"]
    aws.ec2.create_tags(Resources=[mapping["Ebs"]["SnapshotId"]], Tags=tag_list(tags))
    return {"image": image_id, "snapshot": mapping["Ebs"]["SnapshotId"]}


def everything(aws) -> dict[str, set[str]]:
    """Every resource of the account in the region, by kind (terminated instances left out)."""
    ec2 = aws.ec2
    return {
        "instance": {
            i["InstanceId"]
            for r in ec2.describe_instances()["Reservations"]
            for i in r["Instances"]
            if i["State"]["Name"] != "terminated"
        },
        "elastic-ip": {a["AllocationId"] for a in ec2.describe_addresses()["Addresses"]},
        "volume": {v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]},
        "image": {i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]},
        "snapshot": {s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]},
        "key-pair": {k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]},
        "security-group": {g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"]},
    }


@pytest.fixture
def vpc_id(aws) -> str:
    (vpc,) = aws.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    return vpc["VpcId"]


def make_class(aws, vpc_id: str) -> dict[str, set[str]]:
    """A class with zombies, resources in use, shared ones and foreign ones; return the zombies by kind."""
    zombies: dict[str, set[str]] = {kind: set() for kind in everything(aws)}
    # ada works: her VM, address, key pair and group stay; of her images the two newest stay (keep=2), the
    # oldest is shared (kept), the third newest goes with its snapshot.
    ada = run_instance(aws, {**owner_tags("ada"), "Project": "ocean"})
    allocate(aws, {"Name": "jupyter-ada", "Owner": "ada", **MANAGED}, ada)
    access(aws, vpc_id, "ada", {"Name": "jupyter-ada", "Owner": "ada", **MANAGED})
    shared = image_version(aws, "ada", "v1", 120)
    aws.ec2.modify_image_attribute(
        ImageId=shared["image"], LaunchPermission={"Add": [{"UserId": ACCOUNT_B}]}, Attribute="launchPermission"
    )
    old = image_version(aws, "ada", "v2", 90)
    zombies["image"].add(old["image"])
    zombies["snapshot"].add(old["snapshot"])
    image_version(aws, "ada", "v3", 60)
    image_version(aws, "ada", "v4", 30)

    # bob left: his key pair, group, idle address and unattached volume are zombies.
    bob = access(aws, vpc_id, "bob", {"Name": "jupyter-bob", "Owner": "bob", **MANAGED})
    zombies["key-pair"].add(bob["key"])
    zombies["security-group"].add(bob["group"])
    zombies["elastic-ip"].add(allocate(aws, {"Name": "jupyter-bob", "Owner": "bob", **MANAGED})["AllocationId"])
    zone = aws.ec2.describe_availability_zones()["AvailabilityZones"][0]["ZoneName"]
    volume = aws.ec2.create_volume(
        AvailabilityZone=zone, Size=25, VolumeType="gp3",
        TagSpecifications=[{"ResourceType": "volume", "Tags": tag_list({"Owner": "bob", **MANAGED})}],
    )["VolumeId"]  # fmt: skip
    zombies["volume"].add(volume)
    # An orphan snapshot of the collection's.
    orphan = aws.ec2.create_snapshot(
        VolumeId=volume, TagSpecifications=[{"ResourceType": "snapshot", "Tags": tag_list({"Owner": "bob", **MANAGED})}]
    )["SnapshotId"]
    zombies["snapshot"].add(orphan)

    # carol's VM has been stopped for 40 days and an image of it exists: it is terminated, her address
    # released, her data volume (kept on termination) deleted, her key pair and group deleted.
    carol = run_instance(aws, {**owner_tags("carol"), "Project": "ocean"})
    image_version(aws, "carol", "v1", 45, SourceInstance=carol)
    data = aws.ec2.create_volume(
        AvailabilityZone=zone, Size=5, TagSpecifications=[{"ResourceType": "volume", "Tags": tag_list(MANAGED)}]
    )["VolumeId"]
    aws.ec2.attach_volume(VolumeId=data, InstanceId=carol, Device="/dev/sdf")
    zombies["volume"].add(data)
    carols = access(aws, vpc_id, "carol", {"Name": "jupyter-carol", "Owner": "carol", **MANAGED})
    zombies["elastic-ip"].add(
        allocate(aws, {"Name": "jupyter-carol", "Owner": "carol", **MANAGED}, carol)["AllocationId"]
    )
    stopped_long_ago(aws, carol, 40)
    zombies["instance"].add(carol)
    zombies["key-pair"].add(carols["key"])
    zombies["security-group"].add(carols["group"])
    # dan's VM has been stopped as long, but no image of it exists: it stays, and so does his access.
    dan = run_instance(aws, owner_tags("dan"))
    access(aws, vpc_id, "dan", {"Name": "jupyter-dan", "Owner": "dan", **MANAGED})
    stopped_long_ago(aws, dan, 40)

    # Not the collection's, though they look like it: none may be touched.
    zed_tags = {"Name": "jupyter-zed", "Owner": "zed"}
    access(aws, vpc_id, "zed", zed_tags)
    allocate(aws, zed_tags)
    foreign = aws.ec2.create_volume(
        AvailabilityZone=zone, Size=3, TagSpecifications=[{"ResourceType": "volume", "Tags": tag_list(zed_tags)}]
    )["VolumeId"]
    aws.ec2.create_snapshot(VolumeId=foreign)
    add_image(ACCOUNT_A, "jupyter-zed-ocean-v1", created=datetime.now(tz=UTC) - timedelta(days=900), tags=zed_tags)
    stopped_long_ago(aws, run_instance(aws, zed_tags), 400)
    return zombies


def listed(result: subprocess.CompletedProcess) -> dict[str, set[str]]:
    """The zombies a run's summary lists, by kind."""
    found: dict[str, set[str]] = {}
    for kind, resource_id in re.findall(r"(?:would|removed:) \w+ ([\w-]+) ([\w-]+) \(", result.stdout):
        found.setdefault(kind, set()).add(resource_id)
    return found


def test_cleanup_lists_then_removes_exactly_the_zombies_and_a_second_run_finds_none(endpoint, aws, vpc_id):
    zombies = make_class(aws, vpc_id)
    wanted = {kind: ids for kind, ids in zombies.items() if ids}
    before = everything(aws)

    listing = run_cleanup(endpoint, "-e", "keep=2")
    assert listing.returncode == 0 and changed(listing) == 0, listing.stdout[-4000:]
    assert listed(listing) == wanted
    assert everything(aws) == before, "nothing removed without confirm"
    assert "Nothing was removed: run again with -e confirm=true" in listing.stdout
    # What each costs: bob's idle address 3.65, his 25 GiB gp3 volume 2.00, his 25 GiB snapshot 1.25, ada's
    # 10 GiB image 0.50, carol's 5 GiB data volume 0.25 (gp2 by default) and her stopped VM's own volumes.
    assert "3.65 USD/month" in listing.stdout and "2.00 USD/month" in listing.stdout
    assert "kept instance" in listing.stdout and "no available image of it exists" in listing.stdout
    assert "shared with 210987654321" in listing.stdout

    predicted = run_cleanup(endpoint, "-e", "keep=2", "-e", "confirm=true", "--check")
    assert predicted.returncode == 0 and changed(predicted) == 1, predicted.stdout[-4000:]
    assert listed(predicted) == wanted
    assert everything(aws) == before, "check mode removes nothing"

    removed = run_cleanup(endpoint, "-e", "keep=2", "-e", "confirm=true")
    assert removed.returncode == 0 and changed(removed) == 1, removed.stdout[-4000:]
    after = everything(aws)
    for kind, ids in before.items():
        assert after[kind] == ids - zombies[kind], kind
    assert "removed: terminate instance" in removed.stdout

    again = run_cleanup(endpoint, "-e", "keep=2", "-e", "confirm=true")
    assert again.returncode == 0 and changed(again) == 0, again.stdout[-4000:]
    assert "No zombie among the collection's resources in us-east-1." in again.stdout
    assert everything(aws) == after


def test_age_and_force_reach_old_and_shared_images_but_never_the_newest(endpoint, aws):
    shared = image_version(aws, "ada", "v1", 400)
    aws.ec2.modify_image_attribute(
        ImageId=shared["image"], LaunchPermission={"Add": [{"UserId": ACCOUNT_B}]}, Attribute="launchPermission"
    )
    middle = image_version(aws, "ada", "v2", 200)
    newest = image_version(aws, "ada", "v3", 150)
    result = run_cleanup(endpoint, "-e", "image_days=100", "-e", "keep=5", "-e", "confirm=true")
    assert result.returncode == 0, result.stdout[-3000:]
    images = {i["ImageId"] for i in aws.ec2.describe_images(Owners=["self"])["Images"]}
    assert images == {shared["image"], newest["image"]}, "older than 100 days, not shared, not the newest"
    forced = run_cleanup(endpoint, "-e", "image_days=100", "-e", "confirm=true", "-e", "force=true")
    assert forced.returncode == 0, forced.stdout[-3000:]
    images = {i["ImageId"] for i in aws.ec2.describe_images(Owners=["self"])["Images"]}
    assert images == {newest["image"]}
    snapshots = {s["SnapshotId"] for s in aws.ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]}
    assert middle["snapshot"] not in snapshots and shared["snapshot"] not in snapshots
    assert newest["snapshot"] in snapshots


@pytest.mark.parametrize(
    "extra",
    [
        ["-e", "stopped_days=two"],
        ["-e", "image_days=-1"],
        ["-e", "keep=0"],
        ["-e", "keep=1.5"],
        ["-e", "confirm=sure"],
    ],
)
def test_bad_input_stops_before_any_call(fault_proxy, extra: list[str]) -> Any:
    result = run_cleanup(fault_proxy.endpoint, "-e", "confirm=true", *extra)
    assert result.returncode != 0
    assert "Nothing was looked at or changed" in result.stdout, result.stdout[-3000:]
    assert fault_proxy.calls == []
