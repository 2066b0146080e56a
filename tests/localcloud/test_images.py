"""Images on the local cloud: CreateImage snapshots the real disk, and launch permissions cross accounts."""

from __future__ import annotations

import pytest

from tests.localcloud_harness import Cloud, ssh, unique, wait_ssh

ACCOUNT_B = "210987654321"


def other_account(cloud: Cloud, account: str = ACCOUNT_B) -> dict:
    """Credentials that act as another account (moto answers an assumed role's keys as its account)."""
    role = cloud.client("sts").assume_role(RoleArn=f"arn:aws:iam::{account}:role/tester", RoleSessionName="test")
    keys = role["Credentials"]
    return {
        "access_key": keys["AccessKeyId"],
        "secret_key": keys["SecretAccessKey"],
        "session_token": keys["SessionToken"],
    }


def test_create_image_snapshots_the_disk_and_a_new_instance_boots_a_copy(cloud: Cloud) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    source = cloud.launch(ec2, key_name=key_name)
    wait_ssh(source["PublicIpAddress"], key)
    ssh(source["PublicIpAddress"], key, "echo baked > ~/baked && sync")
    name = unique("image")
    image_id = ec2.create_image(
        InstanceId=source["InstanceId"],
        Name=name,
        Description="test image",
        TagSpecifications=[
            {"ResourceType": "image", "Tags": [{"Key": "Owner", "Value": "tester"}]},
            {"ResourceType": "snapshot", "Tags": [{"Key": "Owner", "Value": "tester"}]},
        ],
    )["ImageId"]
    assert ec2.describe_images(ImageIds=[image_id])["Images"][0]["State"] in ("pending", "available")
    ec2.get_waiter("image_available").wait(ImageIds=[image_id], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    assert {"Key": "Owner", "Value": "tester"} in image["Tags"]
    assert image["SourceInstanceId"] == source["InstanceId"]
    snapshot_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    snapshot = ec2.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"][0]
    assert {"Key": "Owner", "Value": "tester"} in snapshot["Tags"]
    assert snapshot["State"] == "completed"
    assert (cloud.settings.snapshots / snapshot_id).is_dir()
    # CreateImage without NoReboot restarts the source; it comes back with its disk.
    cloud.wait_state(ec2, source["InstanceId"], "running")
    wait_ssh(source["PublicIpAddress"], key)
    ssh(source["PublicIpAddress"], key, "echo after-image > ~/later")

    copy = cloud.launch(ec2, image_id=image_id, key_name=key_name)
    wait_ssh(copy["PublicIpAddress"], key)
    assert ssh(copy["PublicIpAddress"], key, "cat ~/baked").stdout.strip() == "baked"
    assert ssh(copy["PublicIpAddress"], key, "test -e ~/later", check=False).returncode != 0
    with pytest.raises(ec2.exceptions.ClientError, match=r"InvalidAMIName\.Duplicate"):
        ec2.create_image(InstanceId=source["InstanceId"], Name=name, NoReboot=True)

    cloud.cleanup()
    cloud.idle()
    with pytest.raises(ec2.exceptions.ClientError, match=r"InvalidSnapshot\.InUse"):
        ec2.delete_snapshot(SnapshotId=snapshot_id)
    ec2.deregister_image(ImageId=image_id)
    assert (cloud.settings.snapshots / snapshot_id).is_dir(), "deregistering keeps the snapshot, as on EC2"
    ec2.delete_snapshot(SnapshotId=snapshot_id)
    cloud.idle()
    assert not (cloud.settings.snapshots / snapshot_id).exists()


def test_deregister_with_delete_associated_snapshots_frees_the_copy(cloud: Cloud) -> None:
    ec2 = cloud.client()
    source = cloud.launch(ec2)
    image_id = ec2.create_image(InstanceId=source["InstanceId"], Name=unique("image"), NoReboot=True)["ImageId"]
    ec2.get_waiter("image_available").wait(ImageIds=[image_id], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    snapshot_id = ec2.describe_images(ImageIds=[image_id])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    cloud.idle()
    assert not ec2.describe_snapshots(Filters=[{"Name": "snapshot-id", "Values": [snapshot_id]}])["Snapshots"]
    assert not (cloud.settings.snapshots / snapshot_id).exists()


def test_a_private_image_is_launchable_by_another_account_only_once_shared(cloud: Cloud) -> None:
    ec2 = cloud.client()
    source = cloud.launch(ec2)
    image_id = ec2.create_image(InstanceId=source["InstanceId"], Name=unique("shared"), NoReboot=True)["ImageId"]
    ec2.get_waiter("image_available").wait(ImageIds=[image_id], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    other = cloud.client(**other_account(cloud))
    assert image_id not in [i["ImageId"] for i in other.describe_images()["Images"]]
    with pytest.raises(other.exceptions.ClientError, match=r"InvalidAMIID\.NotFound"):
        other.describe_images(ImageIds=[image_id])
    key_name, key = cloud.key_pair(other)
    with pytest.raises(other.exceptions.ClientError, match=r"InvalidAMIID\.NotFound"):
        other.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, KeyName=key_name, InstanceType="t3.micro")
    with pytest.raises(other.exceptions.ClientError, match=r"InvalidAMIID\.NotFound"):
        other.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": ACCOUNT_B}]})

    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": ACCOUNT_B}]})
    assert [i["ImageId"] for i in other.describe_images(ImageIds=[image_id])["Images"]] == [image_id]
    assert image_id in [i["ImageId"] for i in other.describe_images(ExecutableUsers=["self"])["Images"]]
    with pytest.raises(other.exceptions.ClientError, match="AuthFailure"):
        other.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": "444455556666"}]})
    launched = cloud.launch(other, image_id=image_id, key_name=key_name)
    assert launched["ImageId"] == image_id
    wait_ssh(launched["PublicIpAddress"], key)

    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Remove": [{"UserId": ACCOUNT_B}]})
    with pytest.raises(other.exceptions.ClientError, match=r"InvalidAMIID\.NotFound"):
        other.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, KeyName=key_name, InstanceType="t3.micro")
    cloud.cleanup()
    cloud.idle()
    ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)


def test_the_base_image_is_found_by_name_and_owner_like_debians_own(cloud: Cloud) -> None:
    ec2 = cloud.client()
    image = cloud.base_image(ec2)
    assert image["OwnerId"] == "136693071363"
    assert image["Public"] is True
    assert image["RootDeviceName"] == "/dev/xvda"
    assert image["Name"].startswith("debian-12-amd64-")
    other = cloud.client(**other_account(cloud, "444455556666"))
    found = other.describe_images(Filters=[{"Name": "name", "Values": [image["Name"]]}])["Images"]
    assert [i["ImageId"] for i in found] == [image["ImageId"]]
