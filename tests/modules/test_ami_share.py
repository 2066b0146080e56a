"""labcloud.jupyter.ami_share against a moto server over HTTP, run through `ansible`.

The state is checked with boto3 describe calls on the same endpoint after each run, as the AMI's
owner (account A) and, for launching and copying, as account B.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.ec2.models import ec2_backends

REGION = "us-east-1"
# The account moto gives the modules' credentials (tests/modules/conftest.py): the AMI owner.
ACCOUNT_A = "123456789012"
# The account the account_b fixture's credentials act as.
ACCOUNT_B = "210987654321"
ACCOUNT_C = "333344445555"
ACCOUNT_D = "444455556666"
ORG = "arn:aws:organizations::123456789012:organization/o-abcde12345"
OU = "arn:aws:organizations::123456789012:ou/o-abcde12345/ou-ab12-cdefgh34"


def launch_permissions(ec2, image_id: str) -> dict[str, Any]:
    """Return the AMI's launch permissions as the owner sees them."""
    items = ec2.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")["LaunchPermissions"]
    return {
        "account_ids": sorted(i["UserId"] for i in items if "UserId" in i),
        "organization_arns": sorted(i["OrganizationArn"] for i in items if "OrganizationArn" in i),
        "organizational_unit_arns": sorted(i["OrganizationalUnitArn"] for i in items if "OrganizationalUnitArn" in i),
        "public": {"Group": "all"} in items,
    }


def snapshot_of(ec2, image_id: str) -> str:
    """Return the ID of the AMI's (only) EBS snapshot."""
    (image,) = ec2.describe_images(ImageIds=[image_id])["Images"]
    (snapshot_id,) = [m["Ebs"]["SnapshotId"] for m in image["BlockDeviceMappings"] if "Ebs" in m]
    return snapshot_id


def volume_permissions(ec2, snapshot_id: str) -> dict[str, Any]:
    """Return the snapshot's createVolumePermission as the owner sees it."""
    items = ec2.describe_snapshot_attribute(SnapshotId=snapshot_id, Attribute="createVolumePermission")[
        "CreateVolumePermissions"
    ]
    return {"account_ids": sorted(i["UserId"] for i in items if "UserId" in i), "public": {"Group": "all"} in items}


def state(ec2, image_id: str) -> dict[str, Any]:
    """Return everything the module may change: launch permissions and snapshot permissions."""
    return {
        "launch": launch_permissions(ec2, image_id),
        "snapshot": volume_permissions(ec2, snapshot_of(ec2, image_id)),
    }


EMPTY_LAUNCH = {"account_ids": [], "organization_arns": [], "organizational_unit_arns": [], "public": False}
EMPTY_VOLUME = {"account_ids": [], "public": False}


@pytest.fixture
def image(aws) -> str:
    """An available AMI of account A, with one (unencrypted) EBS snapshot."""
    return aws.ec2.register_image(Name="lab-image", Description="JupyterLab image")["ImageId"]


def share_directly(ec2, image_id: str, accounts: list[str], **launch_extra: Any) -> None:
    """Share the AMI and its snapshot with boto3, to set up a starting state."""
    items = [{"UserId": a} for a in accounts]
    items += [{k: v} for k, v in launch_extra.items() if k != "Group"]
    if launch_extra.get("Group"):
        items.append({"Group": "all"})
    ec2.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": items})
    ec2.modify_snapshot_attribute(
        SnapshotId=snapshot_of(ec2, image_id),
        Attribute="createVolumePermission",
        OperationType="add",
        UserIds=accounts,
    )


def encrypt_image_snapshot(aws, image_id: str, kms_key_id: str) -> str:
    """Make the AMI's root snapshot one encrypted with kms_key_id, and return its ID.

    moto gap: RegisterImage ignores BlockDeviceMappings and CreateImage always makes a fresh
    unencrypted snapshot, so no API call yields an AMI backed by an encrypted snapshot. The
    encrypted snapshot is made through the API (an encrypted volume, its snapshot, and a copy with
    the key, since moto's CreateSnapshot drops the volume's KmsKeyId); only the AMI's link to its
    snapshot is set in moto's in-process backend.
    """
    volume = aws.ec2.create_volume(Size=8, AvailabilityZone=f"{REGION}a", Encrypted=True)
    source = aws.ec2.create_snapshot(VolumeId=volume["VolumeId"])["SnapshotId"]
    copy = aws.ec2.copy_snapshot(SourceSnapshotId=source, SourceRegion=REGION, Encrypted=True, KmsKeyId=kms_key_id)[
        "SnapshotId"
    ]
    backend = ec2_backends[ACCOUNT_A][REGION]
    backend.amis[image_id].ebs_snapshot = backend.snapshots[copy]
    (snapshot,) = aws.ec2.describe_snapshots(SnapshotIds=[snapshot_of(aws.ec2, image_id)])["Snapshots"]
    assert snapshot["Encrypted"] is True
    return copy


def aws_managed_ebs_key(aws) -> str:
    """Return the ARN of alias/aws/ebs, which AWS creates with the account's first encrypted volume."""
    aws.ec2.create_volume(Size=1, AvailabilityZone=f"{REGION}a", Encrypted=True)
    return aws.kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"]


def test_share_with_accounts_check_real_check_real(run_module, aws, image):
    args = {"image_id": image, "account_ids": [ACCOUNT_B, ACCOUNT_C]}
    snapshot = snapshot_of(aws.ec2, image)
    shared = {"account_ids": [ACCOUNT_B, ACCOUNT_C], "public": False}

    predicted = run_module("ami_share", args, check=True, diff=True)
    assert predicted["changed"] is True
    assert predicted["launch_permissions_before"] == EMPTY_LAUNCH
    assert predicted["launch_permissions_after"] == {**EMPTY_LAUNCH, "account_ids": [ACCOUNT_B, ACCOUNT_C]}
    assert predicted["snapshot_permissions_after"] == {snapshot: shared}
    assert predicted["diff"]["before"]["snapshot_permissions"] == {snapshot: EMPTY_VOLUME}
    assert state(aws.ec2, image) == {"launch": EMPTY_LAUNCH, "snapshot": EMPTY_VOLUME}, "check mode shared"

    applied = run_module("ami_share", args, diff=True)
    assert applied["changed"] is True
    assert state(aws.ec2, image) == {
        "launch": {**EMPTY_LAUNCH, "account_ids": [ACCOUNT_B, ACCOUNT_C]},
        "snapshot": shared,
    }
    assert applied["launch_permissions_after"] == launch_permissions(aws.ec2, image)
    assert applied["snapshot_permissions_after"] == {snapshot: shared}
    assert applied["diff"]["after"]["launch_permissions"]["account_ids"] == [ACCOUNT_B, ACCOUNT_C]
    assert applied["made_public"] is False
    assert applied["public"] is False

    again_predicted = run_module("ami_share", args, check=True)
    assert again_predicted["changed"] is False
    assert again_predicted["launch_permissions_before"] == again_predicted["launch_permissions_after"]

    again = run_module("ami_share", args)
    assert again["changed"] is False
    assert state(aws.ec2, image)["launch"]["account_ids"] == [ACCOUNT_B, ACCOUNT_C]


def test_share_with_organization_and_unit_check_real_check_real(run_module, aws, image):
    args = {"image_id": image, "organization_arns": [ORG], "organizational_unit_arns": [OU]}
    expected = {**EMPTY_LAUNCH, "organization_arns": [ORG], "organizational_unit_arns": [OU]}

    predicted = run_module("ami_share", args, check=True)
    assert predicted["changed"] is True
    assert predicted["launch_permissions_after"] == expected
    assert launch_permissions(aws.ec2, image) == EMPTY_LAUNCH

    applied = run_module("ami_share", args)
    assert applied["changed"] is True
    # Snapshots cannot be shared with organizations; their permissions stay as they are.
    assert state(aws.ec2, image) == {"launch": expected, "snapshot": EMPTY_VOLUME}

    assert run_module("ami_share", args, check=True)["changed"] is False
    assert run_module("ami_share", args)["changed"] is False
    assert launch_permissions(aws.ec2, image) == expected


def test_remove_check_real_check_real(run_module, aws, image):
    share_directly(aws.ec2, image, [ACCOUNT_B, ACCOUNT_C], OrganizationArn=ORG)
    args = {"image_id": image, "account_ids": [ACCOUNT_B], "state": "absent"}
    remaining = {"launch": {**EMPTY_LAUNCH, "account_ids": [ACCOUNT_C], "organization_arns": [ORG]}}
    remaining["snapshot"] = {"account_ids": [ACCOUNT_C], "public": False}

    predicted = run_module("ami_share", args, check=True)
    assert predicted["changed"] is True
    assert predicted["launch_permissions_after"] == remaining["launch"]
    assert state(aws.ec2, image)["launch"]["account_ids"] == [ACCOUNT_B, ACCOUNT_C]

    applied = run_module("ami_share", args)
    assert applied["changed"] is True
    assert applied["launch_permissions_before"]["account_ids"] == [ACCOUNT_B, ACCOUNT_C]
    assert state(aws.ec2, image) == remaining

    assert run_module("ami_share", args, check=True)["changed"] is False
    assert run_module("ami_share", args)["changed"] is False
    assert state(aws.ec2, image) == remaining


def test_purge_sets_exactly_check_real_check_real(run_module, aws, image):
    share_directly(aws.ec2, image, [ACCOUNT_B, ACCOUNT_C], OrganizationArn=ORG, Group="all")
    args = {"image_id": image, "account_ids": [ACCOUNT_D], "purge": True}
    exact = {
        "launch": {**EMPTY_LAUNCH, "account_ids": [ACCOUNT_D]},
        "snapshot": {"account_ids": [ACCOUNT_D], "public": False},
    }

    predicted = run_module("ami_share", args, check=True, diff=True)
    assert predicted["changed"] is True
    assert predicted["launch_permissions_before"]["public"] is True
    assert predicted["launch_permissions_after"] == exact["launch"]
    assert predicted["diff"]["after"]["launch_permissions"] == exact["launch"]
    assert state(aws.ec2, image)["launch"]["public"] is True, "check mode purged"

    applied = run_module("ami_share", args)
    assert applied["changed"] is True
    assert applied["public"] is False
    assert state(aws.ec2, image) == exact

    assert run_module("ami_share", args, check=True)["changed"] is False
    assert run_module("ami_share", args)["changed"] is False
    assert state(aws.ec2, image) == exact


def test_public_is_explicit_and_reported(run_module, aws, image):
    args = {"image_id": image, "public": True}

    predicted = run_module("ami_share", args, check=True)
    assert predicted["changed"] is True
    assert predicted["made_public"] is True
    assert f"AMI {image} would be public: any AWS account can launch it" in predicted["warnings"]
    assert aws.ec2.describe_images(ImageIds=[image])["Images"][0]["Public"] is False

    applied = run_module("ami_share", args)
    assert applied["changed"] is True
    assert applied["made_public"] is True
    assert applied["public"] is True
    assert f"AMI {image} is now public: any AWS account can launch it" in applied["warnings"]
    assert aws.ec2.describe_images(ImageIds=[image])["Images"][0]["Public"] is True
    # The snapshot is never made public: launching a public AMI does not need it.
    assert volume_permissions(aws.ec2, snapshot_of(aws.ec2, image)) == EMPTY_VOLUME

    again_predicted = run_module("ami_share", args, check=True)
    assert again_predicted["changed"] is False
    assert again_predicted["made_public"] is False
    again = run_module("ami_share", args)
    assert again["changed"] is False
    assert again["made_public"] is False
    assert "warnings" not in again

    private = run_module("ami_share", {"image_id": image, "public": False})
    assert private["changed"] is True
    assert aws.ec2.describe_images(ImageIds=[image])["Images"][0]["Public"] is False


BAD_INPUTS = [
    pytest.param({"account_ids": ["21098765432"]}, '"21098765432" has 11 digits', id="11-digits"),
    pytest.param({"account_ids": ["2109876543210"]}, '"2109876543210" has 13 digits', id="13-digits"),
    pytest.param({"account_ids": ["21098765432x"]}, '"21098765432x" is not an AWS account ID', id="not-digits"),
    pytest.param(
        {"account_ids": ["all"]}, '"all" is not an account ID; to make the AMI public set public: true', id="all"
    ),
    pytest.param({"account_ids": [ACCOUNT_C, ACCOUNT_C]}, f'"{ACCOUNT_C}" is listed more than once', id="duplicate"),
    pytest.param(
        {"organization_arns": ["arn:aws:organizations::123456789012:organization/o-short"]},
        '"arn:aws:organizations::123456789012:organization/o-short" is not an organization ARN',
        id="organization-arn",
    ),
    pytest.param(
        {"organizational_unit_arns": ["arn:aws:organizations::123456789012:ou/o-abcde12345/ou-x"]},
        '"arn:aws:organizations::123456789012:ou/o-abcde12345/ou-x" is not an organizational unit ARN',
        id="unit-arn",
    ),
    pytest.param({"organization_arns": [OU]}, "list it under organizational_unit_arns", id="unit-as-organization"),
    pytest.param({"state": "absent", "purge": True}, "purge: true sets the permissions exactly", id="absent-purge"),
    pytest.param(
        {"state": "absent", "public": False}, "public cannot be combined with state: absent", id="absent-public"
    ),
]


@pytest.mark.parametrize(("args", "message"), BAD_INPUTS)
def test_bad_input_is_refused_before_any_api_call(run_module, aws, image, fault_proxy, args, message):
    share_directly(aws.ec2, image, [ACCOUNT_B])
    before = state(aws.ec2, image)

    result = run_module("ami_share", {"image_id": image, **args}, endpoint=fault_proxy.endpoint)
    assert result["failed"] is True
    assert message in result["msg"]
    assert fault_proxy.calls == []
    assert state(aws.ec2, image) == before


def test_own_account_is_refused_before_any_ec2_call(run_module, aws, image, fault_proxy):
    result = run_module(
        "ami_share", {"image_id": image, "account_ids": [ACCOUNT_B, ACCOUNT_A]}, endpoint=fault_proxy.endpoint
    )
    assert result["failed"] is True
    assert f'"{ACCOUNT_A}" is the account that owns the AMI' in result["msg"]
    assert fault_proxy.calls == ["GetCallerIdentity"]
    assert state(aws.ec2, image) == {"launch": EMPTY_LAUNCH, "snapshot": EMPTY_VOLUME}


def test_missing_ami_is_reported(run_module):
    result = run_module("ami_share", {"image_id": "ami-0123456789abcdef0", "account_ids": [ACCOUNT_B]})
    assert result["failed"] is True
    assert "AMI ami-0123456789abcdef0 does not exist" in result["msg"]


@pytest.mark.parametrize("check", [True, False], ids=["check", "real"])
def test_aws_managed_key_is_refused(run_module, aws, image, check):
    key = aws_managed_ebs_key(aws)
    snapshot = encrypt_image_snapshot(aws, image, key)

    result = run_module("ami_share", {"image_id": image, "account_ids": [ACCOUNT_B]}, check=check)
    assert result["failed"] is True
    assert f"snapshot {snapshot} is encrypted with the AWS-managed key alias/aws/ebs" in result["msg"]
    assert "customer-managed KMS key" in result["msg"]
    assert state(aws.ec2, image) == {"launch": EMPTY_LAUNCH, "snapshot": EMPTY_VOLUME}


def grants_on(aws, key: str) -> dict[str, list[str]]:
    """The module's grants on the key: grantee principal -> operations."""
    grants = aws.kms.list_grants(KeyId=key)["Grants"]
    return {
        g["GranteePrincipal"]: sorted(g["Operations"])
        for g in grants
        if g.get("Name", "").startswith("labcloud-launch-")
    }


LAUNCH_OPERATIONS = sorted(
    ["CreateGrant", "Decrypt", "DescribeKey", "GenerateDataKeyWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo"]
)


def test_customer_managed_key_is_shared_and_granted(run_module, aws, image):
    key = aws.kms.create_key(Description="lab images")["KeyMetadata"]["Arn"]
    aws_managed_ebs_key(aws)  # the AWS-managed key exists too, and is not this one
    snapshot = encrypt_image_snapshot(aws, image, key)
    args = {"image_id": image, "account_ids": [ACCOUNT_B]}

    predicted = run_module("ami_share", args, check=True)
    assert predicted["changed"] is True
    assert predicted["key_grants"] == {ACCOUNT_B: f"labcloud-launch-{ACCOUNT_B}"}
    assert state(aws.ec2, image) == {"launch": EMPTY_LAUNCH, "snapshot": EMPTY_VOLUME}
    assert grants_on(aws, key) == {}
    applied = run_module("ami_share", args)
    assert applied["changed"] is True
    assert applied["kms_key_ids"] == [key]
    assert applied["key_grants"] == {ACCOUNT_B: f"labcloud-launch-{ACCOUNT_B}"}
    assert not any("need permission to use that key" in warning for warning in applied.get("warnings", []))
    assert grants_on(aws, key) == {f"arn:aws:iam::{ACCOUNT_B}:root": LAUNCH_OPERATIONS}
    assert state(aws.ec2, image) == {
        "launch": {**EMPTY_LAUNCH, "account_ids": [ACCOUNT_B]},
        "snapshot": {"account_ids": [ACCOUNT_B], "public": False},
    }
    assert snapshot_of(aws.ec2, image) == snapshot
    assert run_module("ami_share", args, check=True)["changed"] is False
    assert run_module("ami_share", args)["changed"] is False
    assert len(aws.kms.list_grants(KeyId=key)["Grants"]) == 1, "no second grant"


def test_without_key_grants_the_accounts_need_is_a_warning(run_module, aws, image):
    key = aws.kms.create_key(Description="lab images")["KeyMetadata"]["Arn"]
    encrypt_image_snapshot(aws, image, key)
    applied = run_module("ami_share", {"image_id": image, "account_ids": [ACCOUNT_B], "grant_key_use": False})
    assert applied["changed"] is True
    assert any(key in warning and "need permission to use that key" in warning for warning in applied["warnings"])
    assert grants_on(aws, key) == {}


def test_an_account_removed_loses_its_grant_and_the_others_keep_theirs(run_module, aws, image):
    key = aws.kms.create_key(Description="lab images")["KeyMetadata"]["Arn"]
    encrypt_image_snapshot(aws, image, key)
    run_module("ami_share", {"image_id": image, "account_ids": [ACCOUNT_B, ACCOUNT_C]})
    assert set(grants_on(aws, key)) == {f"arn:aws:iam::{ACCOUNT_B}:root", f"arn:aws:iam::{ACCOUNT_C}:root"}

    removed = run_module("ami_share", {"image_id": image, "account_ids": [ACCOUNT_B], "state": "absent"})
    assert removed["changed"] is True
    assert removed["key_grants"] == {ACCOUNT_C: f"labcloud-launch-{ACCOUNT_C}"}
    assert set(grants_on(aws, key)) == {f"arn:aws:iam::{ACCOUNT_C}:root"}
    assert launch_permissions(aws.ec2, image)["account_ids"] == [ACCOUNT_C]


def test_an_image_on_the_aws_managed_key_is_shared_through_a_copy_with_the_lab_key(run_module, aws, image):
    ebs_key = aws_managed_ebs_key(aws)
    encrypt_image_snapshot(aws, image, ebs_key)
    lab_key = aws.kms.create_key(Description="lab images")["KeyMetadata"]["Arn"]
    aws.kms.create_alias(AliasName="alias/lab-images", TargetKeyId=lab_key)
    aws.ec2.create_tags(Resources=[image], Tags=[{"Key": "Owner", "Value": "hedylamarr"}])
    args = {"image_id": image, "account_ids": [ACCOUNT_B], "copy_with_key": "alias/lab-images", "wait": True}

    predicted = run_module("ami_share", args, check=True)
    assert predicted["changed"] is True and predicted["copied"] is True
    assert aws.ec2.describe_images(Owners=["self"], Filters=[{"Name": "tag:CopyOf", "Values": [image]}])["Images"] == []

    applied = run_module("ami_share", args)
    assert applied["changed"] is True and applied["copied"] is True
    copy = applied["image_id"]
    assert copy != image and applied["source_image_id"] == image
    (described,) = aws.ec2.describe_images(ImageIds=[copy])["Images"]
    tags = {t["Key"]: t["Value"] for t in described.get("Tags", [])}
    assert tags["CopyOf"] == image and tags["Owner"] == "hedylamarr"
    assert described["Name"] == "lab-image-shared"
    (snapshot,) = aws.ec2.describe_snapshots(SnapshotIds=[snapshot_of(aws.ec2, copy)])["Snapshots"]
    assert snapshot["Encrypted"] is True and snapshot["KmsKeyId"] == lab_key
    assert state(aws.ec2, copy)["launch"]["account_ids"] == [ACCOUNT_B]
    assert grants_on(aws, lab_key) == {f"arn:aws:iam::{ACCOUNT_B}:root": LAUNCH_OPERATIONS}
    assert state(aws.ec2, image) == {"launch": EMPTY_LAUNCH, "snapshot": EMPTY_VOLUME}, "the source stays private"

    again = run_module("ami_share", args)
    assert again["changed"] is False and again["copied"] is False and again["image_id"] == copy
    assert (
        len(aws.ec2.describe_images(Owners=["self"], Filters=[{"Name": "tag:CopyOf", "Values": [image]}])["Images"])
        == 1
    )


def test_copy_with_an_aws_managed_key_is_refused(run_module, aws, image):
    ebs_key = aws_managed_ebs_key(aws)
    encrypt_image_snapshot(aws, image, ebs_key)
    result = run_module("ami_share", {"image_id": image, "account_ids": [ACCOUNT_B], "copy_with_key": "alias/aws/ebs"})
    assert result["failed"] is True
    assert "copy_with_key alias/aws/ebs is an AWS-managed key" in result["msg"]


def test_encrypted_ami_is_not_made_public(run_module, aws, image):
    key = aws.kms.create_key(Description="lab images")["KeyMetadata"]["Arn"]
    snapshot = encrypt_image_snapshot(aws, image, key)

    result = run_module("ami_share", {"image_id": image, "public": True})
    assert result["failed"] is True
    assert f"Refusing to make {image} public: its snapshots {snapshot} are encrypted" in result["msg"]
    assert launch_permissions(aws.ec2, image) == EMPTY_LAUNCH


def set_image_state(image_id: str, value: str) -> None:
    """Set the AMI's state in moto's in-process backend (moto's AMIs are available at once)."""
    ec2_backends[ACCOUNT_A][REGION].amis[image_id].state = value


def test_pending_ami_needs_wait(run_module, aws, image):
    set_image_state(image, "pending")
    result = run_module("ami_share", {"image_id": image, "account_ids": [ACCOUNT_B]})
    assert result["failed"] is True
    assert f"AMI {image} is pending; set wait: true" in result["msg"]
    assert launch_permissions(aws.ec2, image) == EMPTY_LAUNCH


def test_wait_until_available_then_share(run_module, aws, image, fault_proxy):
    set_image_state(image, "pending")
    # The first DescribeImages finds it pending, the waiter's first poll too; then it becomes available.
    fault_proxy.after_call("DescribeImages", 2, lambda: set_image_state(image, "available"))
    result = run_module(
        "ami_share",
        {"image_id": image, "account_ids": [ACCOUNT_B], "wait": True, "wait_timeout": 60},
        endpoint=fault_proxy.endpoint,
    )
    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is True
    # Found pending, polled twice by the waiter, described again once available.
    assert fault_proxy.count("DescribeImages") == 4
    assert launch_permissions(aws.ec2, image)["account_ids"] == [ACCOUNT_B]


def test_failed_ami_is_refused_without_waiting(run_module, aws, image):
    set_image_state(image, "failed")
    result = run_module("ami_share", {"image_id": image, "account_ids": [ACCOUNT_B], "wait": True})
    assert result["failed"] is True
    assert f"AMI {image} is failed, not available, and cannot be shared" in result["msg"]
    assert launch_permissions(aws.ec2, image) == EMPTY_LAUNCH


def test_wait_times_out_with_a_clear_message(run_module, aws, image):
    set_image_state(image, "pending")
    result = run_module("ami_share", {"image_id": image, "account_ids": [ACCOUNT_B], "wait": True, "wait_timeout": 5})
    assert result["failed"] is True
    assert f"AMI {image} did not become available within 5 seconds" in result["msg"]
    assert launch_permissions(aws.ec2, image) == EMPTY_LAUNCH


def launch_as(clients, image_id: str) -> str:
    """Launch one instance from the AMI with the given account's credentials."""
    return clients.ec2.run_instances(ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t3.micro")["Instances"][0][
        "InstanceId"
    ]


def test_account_b_can_launch_and_copy_after_sharing_and_not_after_purge(run_module, aws, account_b, image):
    shared = run_module("ami_share", {"image_id": image, "account_ids": [ACCOUNT_B]})
    assert shared["changed"] is True
    assert state(aws.ec2, image) == {
        "launch": {**EMPTY_LAUNCH, "account_ids": [ACCOUNT_B]},
        "snapshot": {"account_ids": [ACCOUNT_B], "public": False},
    }

    seen_by_b = account_b.ec2.describe_images(ImageIds=[image])["Images"]
    assert [i["ImageId"] for i in seen_by_b] == [image]
    executable = account_b.ec2.describe_images(ExecutableUsers=["self"])["Images"]
    assert image in {i["ImageId"] for i in executable}
    assert launch_as(account_b, image).startswith("i-")
    copy = account_b.ec2.copy_image(SourceImageId=image, SourceRegion=REGION, Name="copy-of-lab-image")
    assert copy["ImageId"].startswith("ami-")

    purged = run_module("ami_share", {"image_id": image, "account_ids": [], "purge": True})
    assert purged["changed"] is True
    assert state(aws.ec2, image) == {"launch": EMPTY_LAUNCH, "snapshot": EMPTY_VOLUME}
    with pytest.raises(ClientError) as hidden:
        account_b.ec2.describe_images(ImageIds=[image])
    assert hidden.value.response["Error"]["Code"].startswith("InvalidAMIID")
    assert image not in {i["ImageId"] for i in account_b.ec2.describe_images(ExecutableUsers=["self"])["Images"]}
    with pytest.raises(ClientError):
        launch_as(account_b, image)
    with pytest.raises(ClientError):
        account_b.ec2.copy_image(SourceImageId=image, SourceRegion=REGION, Name="second-copy")
