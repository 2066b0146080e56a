"""The image cycle under EBS encryption, as strict as AWS: the AWS-managed key, CopyImage with a
customer-managed key, the cross-account key rule at launch and start, and `cloud-init clean`."""

from __future__ import annotations

import json
import re
import subprocess
import time
from typing import Any

import pytest

from tests.localcloud.test_images import ACCOUNT_B, other_account
from tests.localcloud_harness import Cloud, ssh, unique, wait_ssh

# What EBS needs of a key to make volumes of another account's encrypted snapshots, as a grant.
GRANT_OPERATIONS = [
    "CreateGrant",
    "Decrypt",
    "DescribeKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
]
LAUNCH_ERROR = {"Code": "Client.InternalError", "Message": "Client.InternalError: Client error on launch"}


def wait_image(ec2: Any, image_id: str) -> dict:
    """The image once it is no longer pending."""
    deadline = time.monotonic() + 180
    while True:
        image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
        if image["State"] != "pending" or time.monotonic() > deadline:
            return image
        time.sleep(0.5)


def snapshot_keys(ec2: Any, image: dict) -> list[str | None]:
    """The KmsKeyId DescribeSnapshots reports for each snapshot of an image."""
    ids = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]
    return [s.get("KmsKeyId") for s in ec2.describe_snapshots(SnapshotIds=ids)["Snapshots"]]


def root_volume(ec2: Any, instance: dict) -> dict:
    volume_id = instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    return ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]


def assert_failed_launch(cloud: Cloud, ec2: Any, instance: dict) -> None:
    """RunInstances answered, the instance went pending, then terminated with EC2's reason; no machine ran."""
    instance_id = instance["InstanceId"]
    assert instance["State"]["Name"] == "pending"
    ended = cloud.wait_state(ec2, instance_id, "terminated", timeout=60)
    assert ended["StateReason"] == LAUNCH_ERROR
    assert not (cloud.settings.machines / instance_id).exists(), "no machine was made"
    assert not ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [instance_id]}])["Volumes"]


def test_copy_image_with_a_customer_managed_key_copies_the_data_under_that_key(cloud: Cloud) -> None:
    ec2, kms = cloud.client(), cloud.client("kms")
    key_name, key = cloud.key_pair(ec2)
    encrypted_root = [{"DeviceName": "/dev/xvda", "Ebs": {"Encrypted": True}}]
    source = cloud.launch(ec2, key_name=key_name, BlockDeviceMappings=encrypted_root)
    # Encrypted without a key named: the account's AWS-managed key for EBS, made on first use.
    aws_ebs = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]
    assert aws_ebs["KeyManager"] == "AWS"
    assert root_volume(ec2, source)["KmsKeyId"] == aws_ebs["Arn"]
    wait_ssh(source["PublicIpAddress"], key)
    ssh(source["PublicIpAddress"], key, "echo baked > ~/baked && sync")
    baked_id = ec2.create_image(InstanceId=source["InstanceId"], Name=unique("baked"), NoReboot=True)["ImageId"]
    baked = wait_image(ec2, baked_id)
    assert baked["State"] == "available"
    assert baked["BlockDeviceMappings"][0]["Ebs"]["KmsKeyId"] == aws_ebs["Arn"]
    assert snapshot_keys(ec2, baked) == [aws_ebs["Arn"]]
    with pytest.raises(ec2.exceptions.ClientError, match=r"InvalidParameter.*AWS Managed CMK can't be shared"):
        ec2.modify_image_attribute(ImageId=baked_id, LaunchPermission={"Add": [{"UserId": ACCOUNT_B}]})

    created = kms.create_key(Description="lab images")["KeyMetadata"]
    key_arn = created["Arn"]
    alias = f"alias/{unique('lab')}"
    kms.create_alias(AliasName=alias, TargetKeyId=key_arn)
    ec2.create_tags(Resources=[baked_id], Tags=[{"Key": "Course", "Value": "ocean-101"}])
    copy_id = ec2.copy_image(
        SourceImageId=baked_id,
        SourceRegion=cloud.env["AWS_REGION"],
        Name=unique("shareable"),
        Description="for sharing",
        Encrypted=True,
        KmsKeyId=alias,
        CopyImageTags=True,
        TagSpecifications=[{"ResourceType": "snapshot", "Tags": [{"Key": "Owner", "Value": "tester"}]}],
    )["ImageId"]
    assert ec2.describe_images(ImageIds=[copy_id])["Images"][0]["State"] in ("pending", "available")
    copied = wait_image(ec2, copy_id)
    assert copied["State"] == "available"
    assert copied["SourceImageId"] == baked_id and copied["Description"] == "for sharing"
    assert {"Key": "Course", "Value": "ocean-101"} in copied["Tags"]
    ebs = copied["BlockDeviceMappings"][0]["Ebs"]
    assert ebs["Encrypted"] is True and ebs["KmsKeyId"] == key_arn, "the alias is reported as the key's ARN"
    assert snapshot_keys(ec2, copied) == [key_arn]
    copy_snapshot = ec2.describe_snapshots(SnapshotIds=[ebs["SnapshotId"]])["Snapshots"][0]
    assert copy_snapshot["State"] == "completed" and {"Key": "Owner", "Value": "tester"} in copy_snapshot["Tags"]
    assert ebs["SnapshotId"] != baked["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert (cloud.settings.snapshots / ebs["SnapshotId"]).is_dir()

    # The copy holds its own data: the source and its snapshots can go first.
    cloud.cleanup()
    cloud.idle()
    ec2.deregister_image(ImageId=baked_id, DeleteAssociatedSnapshots=True)
    cloud.idle()
    relaunched = cloud.launch(ec2, image_id=copy_id, key_name=key_name)
    assert root_volume(ec2, relaunched)["KmsKeyId"] == key_arn
    wait_ssh(relaunched["PublicIpAddress"], key)
    assert ssh(relaunched["PublicIpAddress"], key, "cat ~/baked").stdout.strip() == "baked"
    cloud.cleanup()
    cloud.idle()
    ec2.deregister_image(ImageId=copy_id, DeleteAssociatedSnapshots=True)
    kms.schedule_key_deletion(KeyId=created["KeyId"], PendingWindowInDays=7)


def test_another_account_launches_a_shared_encrypted_image_only_with_the_key(cloud: Cloud) -> None:
    ec2, kms = cloud.client(), cloud.client("kms")
    region = cloud.env["AWS_REGION"]
    created = kms.create_key(Description="lab images")["KeyMetadata"]
    key_arn = created["Arn"]
    image_id = ec2.copy_image(
        SourceImageId=cloud.base_image(ec2)["ImageId"],
        SourceRegion=region,
        Name=unique("shared"),
        Encrypted=True,
        KmsKeyId=key_arn,
    )["ImageId"]
    image = wait_image(ec2, image_id)
    assert image["State"] == "available"
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": ACCOUNT_B}]})
    snapshot_id = image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    ec2.modify_snapshot_attribute(
        SnapshotId=snapshot_id, Attribute="createVolumePermission", OperationType="add", UserIds=[ACCOUNT_B]
    )
    other = cloud.client(**other_account(cloud))
    key_name, key = cloud.key_pair(other)

    # (b) A customer-managed key of account A that nothing opens to B: the launch fails as on EC2.
    assert_failed_launch(cloud, other, cloud.launch(other, image_id=image_id, key_name=key_name, wait=False))
    volume = other.create_volume(AvailabilityZone=f"{region}a", SnapshotId=snapshot_id)
    assert volume["State"] == "creating" and volume["KmsKeyId"] == key_arn
    time.sleep(4)
    with pytest.raises(other.exceptions.ClientError, match=r"InvalidVolume\.NotFound"):
        other.describe_volumes(VolumeIds=[volume["VolumeId"]])

    # (c) Once A grants B the key, B's instance runs and answers SSH.
    grant = kms.create_grant(
        KeyId=key_arn, GranteePrincipal=f"arn:aws:iam::{ACCOUNT_B}:root", Operations=GRANT_OPERATIONS
    )
    running = cloud.launch(other, image_id=image_id, key_name=key_name)
    assert root_volume(other, running)["KmsKeyId"] == key_arn, "the volume keeps the snapshot's key"
    wait_ssh(running["PublicIpAddress"], key)

    # (a) A's AWS-managed key can never be used by B, whatever else B may use.
    aws_ebs = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"]
    with_aws_key = [{"DeviceName": "/dev/xvda", "Ebs": {"Encrypted": True, "KmsKeyId": aws_ebs}}]
    assert_failed_launch(
        cloud,
        other,
        cloud.launch(other, image_id=image_id, key_name=key_name, wait=False, BlockDeviceMappings=with_aws_key),
    )

    # Without the grant B's stopped instance cannot start again (pending, then stopped) ...
    kms.revoke_grant(KeyId=key_arn, GrantId=grant["GrantId"])
    other.stop_instances(InstanceIds=[running["InstanceId"]])
    cloud.wait_state(other, running["InstanceId"], "stopped")
    other.start_instances(InstanceIds=[running["InstanceId"]])
    refused = cloud.wait_state(other, running["InstanceId"], "stopped", timeout=60)
    assert refused["StateReason"] == LAUNCH_ERROR and "PublicIpAddress" not in refused
    # ... until the key policy allows B: then it starts, and B's volumes from the snapshot work.
    policy = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    policy["Statement"].append(
        {
            "Sid": "Allow account B to use the key through EBS",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_B}:root"},
            "Action": ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
            "Resource": "*",
        }
    )
    kms.put_key_policy(KeyId=key_arn, PolicyName="default", Policy=json.dumps(policy))
    other.start_instances(InstanceIds=[running["InstanceId"]])
    started = cloud.wait_state(other, running["InstanceId"], "running")
    wait_ssh(started["PublicIpAddress"], key)
    volume = other.create_volume(AvailabilityZone=f"{region}a", SnapshotId=snapshot_id)
    time.sleep(4)
    assert other.describe_volumes(VolumeIds=[volume["VolumeId"]])["Volumes"][0]["State"] == "available"
    other.delete_volume(VolumeId=volume["VolumeId"])

    cloud.cleanup()
    cloud.idle()
    ec2.deregister_image(ImageId=image_id, DeleteAssociatedSnapshots=True)
    kms.schedule_key_deletion(KeyId=created["KeyId"], PendingWindowInDays=7)


USER_DATA = "#!/bin/sh\necho ran >> /var/tmp/user-data-runs\necho user data ran\n"


def host_state(address: str, key: Any) -> dict[str, str]:
    """What a first boot makes anew: host key, machine ID; and what it keeps or adds."""
    script = (
        "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub | cut -d' ' -f2; cat /etc/machine-id; "
        "cat ~/.ssh/authorized_keys | wc -l; wc -l < /var/tmp/user-data-runs"
    )
    host_key, machine_id, keys, runs = ssh(address, key, script).stdout.split()
    return {"host_key": host_key, "machine_id": machine_id, "authorized_keys": keys, "user_data_runs": runs}


def test_cloud_init_clean_makes_the_next_boot_of_the_same_instance_a_first_boot(cloud: Cloud) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    instance = cloud.launch(ec2, key_name=key_name, UserData=USER_DATA)
    address = instance["PublicIpAddress"]
    wait_ssh(address, key)
    ssh(address, key, "cloud-init status --wait >/dev/null", timeout=180)
    before = host_state(address, key)
    assert before["user_data_runs"] == "1" and before["authorized_keys"] == "1"
    assert re.fullmatch(r"[0-9a-f]{32}", before["machine_id"])
    extra = cloud.tmp / unique("extra")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(extra)], check=True)
    ssh(address, key, f"echo '{extra.with_suffix('.pub').read_text().strip()}' >> ~/.ssh/authorized_keys")

    denied = ssh(address, key, "cloud-init clean --logs", check=False)
    assert denied.returncode == 1 and denied.stderr.startswith("Error:\nCould not remove"), denied.stderr
    cleaned = ssh(address, key, "sudo cloud-init clean --logs --machine-id; echo rc=$?").stdout
    assert cleaned.strip() == "rc=0", cleaned
    after_clean = ssh(
        address,
        key,
        "cat /etc/machine-id; ls -A /var/lib/cloud; ls /var/lib/localcloud; ls /var/log | grep -c init-output",
        check=False,
    ).stdout.split()
    assert after_clean == ["uninitialized", "0"], after_clean

    ec2.stop_instances(InstanceIds=[instance["InstanceId"]])
    cloud.wait_state(ec2, instance["InstanceId"], "stopped")
    ec2.start_instances(InstanceIds=[instance["InstanceId"]])
    address = cloud.wait_state(ec2, instance["InstanceId"], "running")["PublicIpAddress"]
    wait_ssh(address, key)
    assert ssh(address, key, "cloud-init status").stdout.strip() == "status: running", "a first boot again"
    waited = ssh(address, key, "cloud-init status --wait >/dev/null; echo rc=$?", timeout=180).stdout
    assert waited.strip() == "rc=0"
    assert ssh(address, key, "cloud-init status").stdout.strip() == "status: done"
    after = host_state(address, key)
    assert after["host_key"] != before["host_key"], "new SSH host keys"
    assert re.fullmatch(r"[0-9a-f]{32}", after["machine_id"]) and after["machine_id"] != before["machine_id"]
    assert after["user_data_runs"] == "2", "the user data ran again"
    assert after["authorized_keys"] == "2", "the key pair's key is there and the added key kept"
    assert ssh(address, key, "cat /var/log/localcloud-init-output.log").stdout == "user data ran\n", "a new log"
    wait_ssh(address, extra, timeout=5)
    # The machine ID systemd made at that boot stays: a later boot is not a first boot.
    ec2.reboot_instances(InstanceIds=[instance["InstanceId"]])
    time.sleep(3)
    wait_ssh(address, key, timeout=120)
    assert host_state(address, key) == after
