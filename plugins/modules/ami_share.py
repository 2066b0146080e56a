#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
---
module: ami_share
version_added: 0.1.0
short_description: Decide who may launch and copy an AMI
description:
  - Adds, removes, or sets exactly the launch permissions of an AMI for AWS account IDs,
    organization ARNs and organizational-unit ARNs.
  - Grants (and revokes) C(createVolumePermission) on the AMI's EBS snapshots to the same
    accounts, so that the accounts can copy the AMI, not only launch it.
  - Every account ID and ARN is checked before any API call; a malformed value, a duplicate,
    V(all) or the AMI owner's own account is refused with a message that names it.
  - An AMI is made public only with O(public=true), and the result says so (RV(made_public)).
  - An AMI whose snapshots are encrypted with the AWS-managed key C(alias/aws/ebs), which other
    accounts cannot use, is refused, unless O(copy_with_key) names a customer-managed key. The AMI
    is then copied with that key (CopyImage; the copy is tagged like the AMI, plus C(CopyOf)), and
    the copy is what is shared. A later run finds that copy again rather than making another.
  - With a customer-managed key (the AMI's own or the copy's), each account of O(account_ids) gets
    a KMS grant for what a launch from the AMI needs (O(grant_key_use)); an account without it sees
    its launch end in C(terminated), as AWS does.
  - This closes gaps in M(amazon.aws.ec2_ami), whose O(amazon.aws.ec2_ami#module:launch_permissions)
    makes an AMI public with C(group_names=[all]), does not validate account IDs, and leaves the
    snapshots unshared so that copies fail.
options:
  image_id:
    description: ID of the AMI, owned by the account of the credentials in use.
    type: str
    required: true
  state:
    description:
      - V(present) grants the listed account IDs, organizations and organizational units
        (and with O(purge=true) revokes everybody else).
      - V(absent) revokes the listed ones.
    type: str
    choices: [present, absent]
    default: present
  account_ids:
    description:
      - 12-digit AWS account IDs. Quote them in YAML, so that leading zeros are kept.
      - They also get C(createVolumePermission) on the AMI's snapshots.
    type: list
    elements: str
    default: []
  organization_arns:
    description:
      - ARNs of AWS Organizations, for example
        V(arn:aws:organizations::123456789012:organization/o-abcde12345).
      - Snapshots cannot be shared with an organization; accounts in it can launch the AMI.
    type: list
    elements: str
    default: []
  organizational_unit_arns:
    description:
      - ARNs of organizational units, for example
        V(arn:aws:organizations::123456789012:ou/o-abcde12345/ou-ab12-cdefgh34).
    type: list
    elements: str
    default: []
  purge:
    description:
      - With O(state=present), make the listed grantees the complete list, on the AMI and on its
        snapshots, revoking every other one. Public access is revoked too, unless O(public=true).
      - Cannot be used with O(state=absent).
    type: bool
    default: false
  public:
    description:
      - V(true) makes the AMI public (anyone may launch it); it must be given explicitly, and
        V(all) in O(account_ids) is refused. The snapshots are never made public.
      - V(false) makes the AMI private again.
      - When omitted, public access is left as it is (except with O(purge=true), which revokes it).
      - AWS does not allow an AMI with encrypted snapshots to be public; this is refused.
      - Cannot be used with O(state=absent).
    type: bool
  copy_with_key:
    description:
      - A customer-managed KMS key (ID, ARN, alias or alias ARN) of this account. When the AMI's
        snapshots are encrypted with the AWS-managed key, the AMI is copied with this key, the run
        waits until the copy is available (up to O(wait_timeout) seconds), and the copy is shared.
      - The copy is named after the AMI with C(-shared) added, and tagged like it, plus C(CopyOf)
        with the AMI's ID.
      - Only with O(state=present). Ignored when the AMI needs no copy (unencrypted, or encrypted
        with a customer-managed key).
    type: str
  grant_key_use:
    description:
      - Give each account of O(account_ids) a KMS grant on the customer-managed key of the shared
        AMI's snapshots, named C(labcloud-launch-<account>), for the operations a launch from it
        needs (C(CreateGrant), C(Decrypt), C(DescribeKey), C(GenerateDataKeyWithoutPlaintext),
        C(ReEncryptFrom), C(ReEncryptTo)). The grant of an account that this run removes from the AMI
        (O(state=absent), or O(purge=true)) is revoked; other grants on the key are left alone, as
        the key may serve other AMIs.
      - Grants cannot name organizations or organizational units; their accounts need a key policy
        statement, and the module warns about it.
    type: bool
    default: true
  wait:
    description:
      - Wait until the AMI is C(available) before sharing it. A freshly created AMI is
        C(pending) for minutes, and its snapshots are only known once it is available.
      - When V(false) and the AMI is not available, the module fails and changes nothing. An AMI
        in another state than C(pending) (C(failed), C(disabled)) is refused without waiting.
    type: bool
    default: false
  wait_timeout:
    description: How many seconds to wait for the AMI to become available.
    type: int
    default: 1200
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - labcloud.jupyter.attributes
  - labcloud.jupyter.attributes.check_mode_full
  - labcloud.jupyter.attributes.diff_mode_full
attributes:
  check_mode:
    details:
      - With O(wait=true) it waits in check mode too, since the AMI's snapshots are only known
        once it is available.
  diff_mode:
    details:
      - The launch and snapshot permissions before and after.
notes:
  - The account of the credentials is read with C(sts:GetCallerIdentity), to refuse sharing with
    itself and AMIs it does not own.
  - Encrypted snapshots are checked with C(kms:DescribeKey); grants are listed, made and revoked
    with C(kms:ListGrants), C(kms:CreateGrant) and C(kms:RevokeGrant); copies are made with
    C(ec2:CopyImage).
  - Throttling errors are retried with jittered exponential backoff.
author:
  - labcloud.jupyter developers (@labcloud)
"""

EXAMPLES = r"""
- name: Let two collaborators launch and copy the lab image
  labcloud.jupyter.ami_share:
    image_id: "{{ image.image_id }}"
    account_ids:
      - "111122223333"
      - "444455556666"
    wait: true

- name: Share with the whole organization
  labcloud.jupyter.ami_share:
    image_id: ami-0123456789abcdef0
    organization_arns:
      - arn:aws:organizations::123456789012:organization/o-abcde12345

- name: Stop sharing with one account
  labcloud.jupyter.ami_share:
    image_id: ami-0123456789abcdef0
    account_ids:
      - "444455556666"
    state: absent

- name: Share with exactly this list, revoking everybody else
  labcloud.jupyter.ami_share:
    image_id: ami-0123456789abcdef0
    account_ids: "{{ lab_accounts }}"
    purge: true
  register: shared

- name: Show who could launch it before and who can now
  ansible.builtin.debug:
    msg: >-
      {{ shared.launch_permissions_before.account_ids }} ->
      {{ shared.launch_permissions_after.account_ids }}

- name: Share an image encrypted with the default EBS key, through a copy with the lab's key
  labcloud.jupyter.ami_share:
    image_id: "{{ image.image_id }}"
    account_ids: ["111122223333"]
    copy_with_key: alias/lab-images
    wait: true
  register: shared
  # shared.image_id is the copy's ID: the one to launch in account 111122223333.

- name: Make a teaching image public (explicit)
  labcloud.jupyter.ami_share:
    image_id: ami-0123456789abcdef0
    public: true
"""

RETURN = r"""
image_id:
  description: The AMI.
  returned: always
  type: str
  sample: ami-0123456789abcdef0
launch_permissions_before:
  description: Who could launch the AMI before the run.
  returned: always
  type: dict
  contains:
    account_ids:
      description: Account IDs, sorted.
      type: list
      elements: str
      returned: always
      sample: ["111122223333"]
    organization_arns:
      description: Organization ARNs, sorted.
      type: list
      elements: str
      returned: always
      sample: []
    organizational_unit_arns:
      description: Organizational-unit ARNs, sorted.
      type: list
      elements: str
      returned: always
      sample: []
    public:
      description: Whether anybody could launch it.
      type: bool
      returned: always
      sample: false
launch_permissions_after:
  description:
    - Who can launch the AMI after the run, read back from EC2 when something changed
      (predicted in check mode). Same keys as RV(launch_permissions_before).
  returned: always
  type: dict
  sample: {"account_ids": ["111122223333", "444455556666"], "organization_arns": [],
           "organizational_unit_arns": [], "public": false}
snapshot_permissions_before:
  description: C(createVolumePermission) of each EBS snapshot of the AMI before the run.
  returned: always
  type: dict
  sample: {"snap-0123456789abcdef0": {"account_ids": ["111122223333"], "public": false}}
snapshot_permissions_after:
  description: C(createVolumePermission) of each EBS snapshot of the AMI after the run.
  returned: always
  type: dict
  sample: {"snap-0123456789abcdef0": {"account_ids": ["111122223333", "444455556666"], "public": false}}
public:
  description: Whether the AMI is public after the run.
  returned: always
  type: bool
  sample: false
made_public:
  description: Whether this run made the AMI public (or would, in check mode).
  returned: always
  type: bool
  sample: false
source_image_id:
  description: The AMI asked for; RV(image_id) differs from it when a copy was shared instead.
  returned: always
  type: str
  sample: ami-0123456789abcdef0
copied:
  description: Whether this run copied the AMI with O(copy_with_key) (or would, in check mode).
  returned: always
  type: bool
  sample: false
key_grants:
  description: The KMS grants of the accounts on the key, after the run, by account.
  returned: always
  type: dict
  sample: {"111122223333": "labcloud-launch-111122223333"}
kms_key_ids:
  description: The customer-managed KMS keys that encrypt the AMI's snapshots.
  returned: always
  type: list
  elements: str
  sample: ["arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"]
"""

from typing import Any, Dict, List, Optional, Tuple

# The import guard is the pattern ansible-test sanity expects of modules.
try:  # noqa: SIM105
    from botocore.exceptions import BotoCoreError, ClientError, WaiterError
except ImportError:
    pass  # AnsibleAWSModule reports the missing botocore

# AnsibleAWSModule.warn() (amazon.aws 10.1) hands its warnings to exit_json() again, which
# ansible-core 2.19 reports as a deprecated use; the core function records them only once.
from ansible.module_utils.common.warnings import warn

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.waiters import get_waiter

from ansible_collections.labcloud.jupyter.plugins.module_utils.ami_permissions import PermissionSet
from ansible_collections.labcloud.jupyter.plugins.module_utils.ami_permissions import as_result
from ansible_collections.labcloud.jupyter.plugins.module_utils.ami_permissions import desired_set
from ansible_collections.labcloud.jupyter.plugins.module_utils.ami_permissions import desired_snapshot_set
from ansible_collections.labcloud.jupyter.plugins.module_utils.ami_permissions import difference
from ansible_collections.labcloud.jupyter.plugins.module_utils.ami_permissions import from_permission_list
from ansible_collections.labcloud.jupyter.plugins.module_utils.ami_permissions import (
    launch_permission_payload,
)
from ansible_collections.labcloud.jupyter.plugins.module_utils.ami_permissions import own_account_error
from ansible_collections.labcloud.jupyter.plugins.module_utils.ami_permissions import requested_set
from ansible_collections.labcloud.jupyter.plugins.module_utils.ami_permissions import validate_grantees
from ansible_collections.labcloud.jupyter.plugins.module_utils.ami_permissions import validate_request
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import LabcloudAWSError
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import aws_error
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import call
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import describe_all
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import COPY_OF_TAG

AWS_MANAGED_EBS_ALIAS = "alias/aws/ebs"
# The suffix of the name of a copy made to share an AMI with another key.
COPY_SUFFIX = "-shared"
# The module's grants on a key are named after the account they let launch the AMI.
GRANT_PREFIX = "labcloud-launch-"
# What EBS does with the key when another account launches the AMI.
GRANT_OPERATIONS = (
    "CreateGrant",
    "Decrypt",
    "DescribeKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
)
# Seconds between two DescribeImages calls while waiting for the AMI.
WAIT_DELAY = 5
VOLUME_PERMISSION = "createVolumePermission"
MISSING_IMAGE_CODES = ("InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable")
# DescribeKey of alias/aws/ebs answers these when the account has no such key or may not see it.
NO_MANAGED_EBS_KEY_CODES = ("NotFoundException", "AccessDeniedException")


def caller_account(sts) -> str:
    """Return the account ID of the credentials in use."""
    return call(sts.get_caller_identity, "Could not find out which account the credentials belong to")["Account"]


def find_image(ec2, image_id: str) -> Dict[str, Any]:
    """Return the AMI, failing when it does not exist."""
    try:
        images = describe_all(
            ec2, "describe_images", "Images", f"Could not describe AMI {image_id}", ImageIds=[image_id]
        )
    except LabcloudAWSError as e:
        if e.code in MISSING_IMAGE_CODES:
            raise LabcloudAWSError(f"AMI {image_id} does not exist", e.exception) from e
        raise
    if not images:
        raise LabcloudAWSError(f"AMI {image_id} does not exist")
    return images[0]


def wait_until_available(ec2, image_id: str, timeout: int) -> None:
    """Wait with the ImageAvailable waiter until the AMI is available."""
    waiter = get_waiter(ec2, "image_available")
    try:
        waiter.wait(
            ImageIds=[image_id],
            WaiterConfig={"Delay": WAIT_DELAY, "MaxAttempts": max(1, timeout // WAIT_DELAY)},
        )
    except WaiterError as e:
        raise LabcloudAWSError(f"AMI {image_id} did not become available within {timeout} seconds", e) from e
    except (BotoCoreError, ClientError) as e:
        raise aws_error(f"Could not wait for AMI {image_id}", e) from e


def available_image(module: AnsibleAWSModule, ec2, image_id: str, account: str) -> Dict[str, Any]:
    """Return the AMI once it is available (waiting if asked), after checking the caller owns it."""
    image = find_image(ec2, image_id)
    if image.get("OwnerId") != account:
        raise LabcloudAWSError(
            f"AMI {image_id} is owned by account {image.get('OwnerId')}, not by {account} (the account of "
            "these credentials); only its owner can decide who may launch it"
        )
    if image.get("State") == "available":
        return image
    if image.get("State") != "pending":
        raise LabcloudAWSError(f"AMI {image_id} is {image.get('State')}, not available, and cannot be shared")
    if not module.params["wait"]:
        raise LabcloudAWSError(
            f"AMI {image_id} is {image.get('State')}; set wait: true to wait until it is available before sharing"
        )
    wait_until_available(ec2, image_id, module.params["wait_timeout"])
    return find_image(ec2, image_id)


def snapshot_ids_of(image: Dict[str, Any]) -> List[str]:
    """Return the EBS snapshot IDs of the AMI's block device mappings."""
    return [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("SnapshotId")]


def read_launch_permissions(ec2, image_id: str) -> PermissionSet:
    """Return who may launch the AMI now."""
    response = call(
        ec2.describe_image_attribute,
        f"Could not read the launch permissions of {image_id}",
        ImageId=image_id,
        Attribute="launchPermission",
    )
    return from_permission_list(response["LaunchPermissions"])


def read_snapshots(ec2, image_id: str, snapshot_ids: List[str]) -> List[Dict[str, Any]]:
    """Return the descriptions of the AMI's snapshots."""
    if not snapshot_ids:
        return []
    doing = f"Could not describe the snapshots {', '.join(snapshot_ids)} of {image_id}"
    return describe_all(ec2, "describe_snapshots", "Snapshots", doing, SnapshotIds=snapshot_ids)


def read_volume_permissions(ec2, snapshot_ids: List[str]) -> Dict[str, PermissionSet]:
    """Return who may create volumes from each snapshot now."""
    permissions = {}
    for snapshot_id in snapshot_ids:
        response = call(
            ec2.describe_snapshot_attribute,
            f"Could not read the createVolumePermission of {snapshot_id}",
            SnapshotId=snapshot_id,
            Attribute=VOLUME_PERMISSION,
        )
        permissions[snapshot_id] = from_permission_list(response["CreateVolumePermissions"])
    return permissions


def describe_key(kms, key_id: str, doing: str) -> Dict[str, Any]:
    """Return the metadata of a KMS key."""
    return call(kms.describe_key, doing, KeyId=key_id)["KeyMetadata"]


def aws_managed_ebs_key_id(kms) -> Optional[str]:
    """Return the key ID behind alias/aws/ebs, or None when the account has none or may not see it."""
    try:
        return describe_key(kms, AWS_MANAGED_EBS_ALIAS, f"Could not describe the KMS key {AWS_MANAGED_EBS_ALIAS}")[
            "KeyId"
        ]
    except LabcloudAWSError as e:
        if e.code in NO_MANAGED_EBS_KEY_CODES:
            return None
        raise


def customer_managed_keys(kms, image_id: str, snapshots: List[Dict[str, Any]]) -> List[str]:
    """Return the KMS keys of the encrypted snapshots, refusing any AWS-managed key."""
    keys = []
    managed_ebs_key = None
    for snapshot in (s for s in snapshots if s.get("Encrypted")):
        snapshot_id = snapshot["SnapshotId"]
        key_ref = snapshot.get("KmsKeyId")
        if not key_ref:
            raise LabcloudAWSError(
                f"Snapshot {snapshot_id} of {image_id} is encrypted but EC2 did not report its KMS key, "
                "so it cannot be checked that other accounts can use it"
            )
        key = describe_key(kms, key_ref, f"Could not describe the KMS key {key_ref} of snapshot {snapshot_id}")
        if key.get("KeyManager") != "AWS" and managed_ebs_key is None:
            managed_ebs_key = aws_managed_ebs_key_id(kms) or ""
        if key.get("KeyManager") == "AWS" or key["KeyId"] == managed_ebs_key:
            raise LabcloudAWSError(
                f"Refusing to share {image_id}: snapshot {snapshot_id} is encrypted with the AWS-managed key "
                f"{AWS_MANAGED_EBS_ALIAS} ({key_ref}), which other accounts cannot use. Copy the AMI "
                "with a customer-managed KMS key (ec2 copy-image --encrypted --kms-key-id <key>), grant "
                "the accounts use of that key, and share the copy"
            )
        keys.append(key.get("Arn") or key_ref)
    return sorted(set(keys))


def uses_aws_managed_key(kms, snapshots: List[Dict[str, Any]]) -> bool:
    """Whether an encrypted snapshot of the AMI uses an AWS-managed key (which no other account can use)."""
    for snapshot in (s for s in snapshots if s.get("Encrypted") and s.get("KmsKeyId")):
        key = describe_key(kms, snapshot["KmsKeyId"], f"Could not describe the KMS key of {snapshot['SnapshotId']}")
        if key.get("KeyManager") == "AWS":
            return True
    return False


def customer_key(kms, key_ref: str) -> Dict[str, Any]:
    """Return the metadata of the key to copy with, refusing an AWS-managed or unusable one."""
    key = describe_key(kms, key_ref, f"Could not describe the KMS key {key_ref} (copy_with_key)")
    if key.get("KeyManager") == "AWS":
        raise LabcloudAWSError(f"copy_with_key {key_ref} is an AWS-managed key; give a customer-managed key")
    if key.get("KeyState") not in (None, "Enabled"):
        raise LabcloudAWSError(f"copy_with_key {key_ref} is {key.get('KeyState')}, not enabled")
    return key


def find_copy(ec2, image_id: str, key: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """Return this account's copy of the AMI made with the key (tagged CopyOf), if one is usable."""
    copies = describe_all(
        ec2,
        "describe_images",
        "Images",
        f"Could not look for copies of {image_id}",
        Owners=["self"],
        Filters=[{"Name": f"tag:{COPY_OF_TAG}", "Values": [image_id]}],
    )
    for copy in copies:
        if copy.get("State") not in ("available", "pending"):
            continue
        snapshots = read_snapshots(ec2, copy["ImageId"], snapshot_ids_of(copy))
        keys = {s.get("KmsKeyId") for s in snapshots if s.get("Encrypted")}
        if snapshots and keys and keys <= {key.get("Arn"), key.get("KeyId")}:
            return copy
    return None


def copy_image(module: AnsibleAWSModule, ec2, image: Dict[str, Any], key: Dict[str, Any]) -> str:
    """Copy the AMI with the key (tagged like it, plus CopyOf) and return the copy's ID."""
    tags = [t for t in image.get("Tags", []) if not t["Key"].lower().startswith("aws:") and t["Key"] != COPY_OF_TAG]
    tags.append({"Key": COPY_OF_TAG, "Value": image["ImageId"]})
    name = f"{image.get('Name') or image['ImageId']}{COPY_SUFFIX}"
    response = call(
        ec2.copy_image,
        f"Could not copy {image['ImageId']} with KMS key {key.get('Arn')}",
        SourceImageId=image["ImageId"],
        SourceRegion=module.region,
        Name=name[:128],
        Description=f"Copy of {image['ImageId']} with a customer-managed key, to share it",
        Encrypted=True,
        KmsKeyId=key.get("Arn") or key["KeyId"],
        TagSpecifications=[{"ResourceType": kind, "Tags": tags} for kind in ("image", "snapshot")],
    )
    return response["ImageId"]


def grant_name(account_id: str) -> str:
    """The name of the grant that lets an account launch the shared AMI."""
    return f"{GRANT_PREFIX}{account_id}"


def key_grants(kms, key_arn: str) -> Dict[str, Dict[str, Any]]:
    """Return the module's grants on the key, by account."""
    grants: Dict[str, Dict[str, Any]] = {}
    marker = None
    while True:
        params = {"KeyId": key_arn}
        if marker:
            params["Marker"] = marker
        response = call(kms.list_grants, f"Could not list the grants of KMS key {key_arn}", **params)
        for grant in response.get("Grants", []):
            name = grant.get("Name") or ""
            if name.startswith(GRANT_PREFIX):
                grants[name[len(GRANT_PREFIX) :]] = grant
        if not response.get("Truncated"):
            return grants
        marker = response.get("NextMarker")


def update_grants(
    module: AnsibleAWSModule, kms, key_arn: str, accounts: List[str], revoked: List[str]
) -> Tuple[bool, Dict[str, str]]:
    """Give the accounts the module's grant on the key and revoke it from those that lost access.

    Return whether a grant changed, and the module's grants on the key afterwards, by account.
    """
    existing = key_grants(kms, key_arn)
    partition = key_arn.split(":")[1] if key_arn.startswith("arn:") else "aws"
    missing = [a for a in accounts if a not in existing]
    extra = [a for a in revoked if a in existing and a not in accounts]
    if not module.check_mode:
        for account_id in missing:
            call(
                kms.create_grant,
                f"Could not grant account {account_id} use of KMS key {key_arn}",
                KeyId=key_arn,
                GranteePrincipal=f"arn:{partition}:iam::{account_id}:root",
                Operations=list(GRANT_OPERATIONS),
                Name=grant_name(account_id),
            )
        for account_id in extra:
            call(
                kms.revoke_grant,
                f"Could not revoke the grant of account {account_id} on KMS key {key_arn}",
                KeyId=key_arn,
                GrantId=existing[account_id]["GrantId"],
            )
    after = (set(existing) | set(missing)) - set(extra)
    return bool(missing or extra), {a: grant_name(a) for a in sorted(after)}


def keys_of(kms, snapshots: List[Dict[str, Any]]) -> List[str]:
    """Return the customer-managed keys of the encrypted snapshots (AWS-managed ones left out)."""
    keys = set()
    for snapshot in (s for s in snapshots if s.get("Encrypted") and s.get("KmsKeyId")):
        key = describe_key(kms, snapshot["KmsKeyId"], f"Could not describe the KMS key of {snapshot['SnapshotId']}")
        if key.get("KeyManager") != "AWS":
            keys.add(key.get("Arn") or snapshot["KmsKeyId"])
    return sorted(keys)


def check_shareable(kms, image_id: str, snapshots: List[Dict[str, Any]], making_public: bool) -> List[str]:
    """Refuse sharing that AWS would not honour; return the customer-managed keys in use."""
    encrypted = [s["SnapshotId"] for s in snapshots if s.get("Encrypted")]
    if making_public and encrypted:
        raise LabcloudAWSError(
            f"Refusing to make {image_id} public: its snapshots {', '.join(encrypted)} are encrypted, "
            "and AWS does not allow AMIs with encrypted snapshots to be public"
        )
    return customer_managed_keys(kms, image_id, snapshots)


def apply_launch_permissions(ec2, image_id: str, to_add: PermissionSet, to_remove: PermissionSet) -> None:
    """Change the launch permissions in one ModifyImageAttribute call."""
    payload = launch_permission_payload(to_add, to_remove)
    if not payload:
        return
    call(
        ec2.modify_image_attribute,
        f"Could not change the launch permissions of {image_id} ({payload})",
        ImageId=image_id,
        LaunchPermission=payload,
    )


def apply_volume_permissions(ec2, snapshot_id: str, to_add: PermissionSet, to_remove: PermissionSet) -> None:
    """Grant and revoke createVolumePermission on one snapshot."""
    for operation, change in (("add", to_add), ("remove", to_remove)):
        grantees = {}
        if change.account_ids:
            grantees["UserIds"] = sorted(change.account_ids)
        if change.public:
            grantees["GroupNames"] = ["all"]
        if not grantees:
            continue
        call(
            ec2.modify_snapshot_attribute,
            f"Could not {operation} createVolumePermission {grantees} on {snapshot_id}",
            SnapshotId=snapshot_id,
            Attribute=VOLUME_PERMISSION,
            OperationType=operation,
            **grantees,
        )


def shared_image(module: AnsibleAWSModule, ec2, kms, account: str) -> Tuple[Dict[str, Any], bool]:
    """Return the AMI to share (the one asked for, or its copy with copy_with_key) and whether a copy is new."""
    params = module.params
    image = available_image(module, ec2, params["image_id"], account)
    if not params["copy_with_key"] or params["state"] != "present":
        return image, False
    snapshots = read_snapshots(ec2, image["ImageId"], snapshot_ids_of(image))
    if not uses_aws_managed_key(kms, snapshots):
        return image, False
    key = customer_key(kms, params["copy_with_key"])
    found = find_copy(ec2, image["ImageId"], key)
    if found is not None:
        if found.get("State") != "available":
            wait_until_available(ec2, found["ImageId"], params["wait_timeout"])
        return find_image(ec2, found["ImageId"]), False
    if module.check_mode:
        # The copy does not exist yet: what it would be shared like is what the AMI is shared like now.
        return dict(image, ImageId=f"(a copy of {image['ImageId']})", Predicted=True), True
    copy_id = copy_image(module, ec2, image, key)
    wait_until_available(ec2, copy_id, params["wait_timeout"])
    return find_image(ec2, copy_id), True


def share(module: AnsibleAWSModule, ec2, kms, account: str) -> Dict[str, Any]:
    """Compute the change, refuse what cannot work, apply it unless in check mode, and report it."""
    params = module.params
    image, copied = shared_image(module, ec2, kms, account)
    if image.get("Predicted"):
        return predicted_copy(module, image)
    image_id = image["ImageId"]
    snapshot_ids = snapshot_ids_of(image)

    requested = requested_set(params["account_ids"], params["organization_arns"], params["organizational_unit_arns"])
    mode = (params["state"], params["purge"], params["public"])
    launch_before = read_launch_permissions(ec2, image_id)
    launch_after = desired_set(launch_before, requested, *mode)
    launch_add, launch_remove = difference(launch_before, launch_after)

    volumes_before = read_volume_permissions(ec2, snapshot_ids)
    volumes_after = {sid: desired_snapshot_set(perms, requested, *mode) for sid, perms in volumes_before.items()}
    volume_changes = {sid: difference(volumes_before[sid], volumes_after[sid]) for sid in snapshot_ids}

    grants = not launch_add.is_empty() or any(not add.is_empty() for add, _remove in volume_changes.values())
    keys: List[str] = []
    if grants:
        keys = check_shareable(kms, image_id, read_snapshots(ec2, image_id, snapshot_ids), launch_add.public)
    elif params["grant_key_use"] and (launch_after.account_ids or launch_remove.account_ids):
        keys = keys_of(kms, read_snapshots(ec2, image_id, snapshot_ids))
    changed = copied or launch_before != launch_after or volumes_before != volumes_after
    key_grants_after: Dict[str, str] = {}
    if params["grant_key_use"]:
        for key_arn in keys:
            grants_changed, key_grants_after = update_grants(
                module, kms, key_arn, sorted(launch_after.account_ids), sorted(launch_remove.account_ids)
            )
            changed = changed or grants_changed

    if changed and not module.check_mode:
        apply_launch_permissions(ec2, image_id, launch_add, launch_remove)
        for sid, (add, remove) in volume_changes.items():
            apply_volume_permissions(ec2, sid, add, remove)
        launch_after = read_launch_permissions(ec2, image_id)
        volumes_after = read_volume_permissions(ec2, snapshot_ids)

    if launch_add.public:
        warn(f"AMI {image_id} {'would be' if module.check_mode else 'is now'} public: any AWS account can launch it")
    if keys and launch_after.account_ids and not params["grant_key_use"]:
        warn(
            f"The snapshots of {image_id} are encrypted with {', '.join(keys)}: the accounts it is "
            "shared with also need permission to use that key "
            "(kms:DescribeKey, kms:CreateGrant, kms:Decrypt, kms:ReEncrypt*)"
        )
    if keys and (launch_after.organization_arns or launch_after.organizational_unit_arns):
        warn(
            f"The snapshots of {image_id} are encrypted with {', '.join(keys)}: KMS grants cannot name "
            "organizations, so their accounts need a statement in that key's policy allowing "
            "kms:DescribeKey, kms:CreateGrant, kms:Decrypt, kms:ReEncrypt* and kms:GenerateDataKeyWithoutPlaintext"
        )

    before = {
        "launch_permissions": as_result(launch_before),
        "snapshot_permissions": {sid: as_result(p, with_organizations=False) for sid, p in volumes_before.items()},
    }
    after = {
        "launch_permissions": as_result(launch_after),
        "snapshot_permissions": {sid: as_result(p, with_organizations=False) for sid, p in volumes_after.items()},
    }
    result = {
        "changed": changed,
        "image_id": image_id,
        "source_image_id": params["image_id"],
        "copied": copied,
        "key_grants": key_grants_after,
        "launch_permissions_before": before["launch_permissions"],
        "launch_permissions_after": after["launch_permissions"],
        "snapshot_permissions_before": before["snapshot_permissions"],
        "snapshot_permissions_after": after["snapshot_permissions"],
        "public": launch_after.public,
        "made_public": launch_add.public,
        "kms_key_ids": keys,
    }
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    return result


def predicted_copy(module: AnsibleAWSModule, image: Dict[str, Any]) -> Dict[str, Any]:
    """What check mode reports when the AMI would first be copied: the copy, shared with the accounts."""
    params = module.params
    requested = requested_set(params["account_ids"], params["organization_arns"], params["organizational_unit_arns"])
    after = as_result(desired_set(PermissionSet(), requested, params["state"], params["purge"], params["public"]))
    empty = as_result(PermissionSet())
    return {
        "changed": True,
        "image_id": image["ImageId"],
        "source_image_id": params["image_id"],
        "copied": True,
        "key_grants": {a: grant_name(a) for a in sorted(after["account_ids"])} if params["grant_key_use"] else {},
        "launch_permissions_before": empty,
        "launch_permissions_after": after,
        "snapshot_permissions_before": {},
        "snapshot_permissions_after": {},
        "public": after["public"],
        "made_public": after["public"],
        "kms_key_ids": [],
    }


def main() -> None:
    """Run the module."""
    argument_spec = dict(
        image_id=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        account_ids=dict(type="list", elements="str", default=[]),
        organization_arns=dict(type="list", elements="str", default=[]),
        organizational_unit_arns=dict(type="list", elements="str", default=[]),
        purge=dict(type="bool", default=False),
        public=dict(type="bool"),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=1200),
        copy_with_key=dict(type="str", no_log=False),
        grant_key_use=dict(type="bool", default=True),
    )
    # purge and public depend on the value of state, which required_if / mutually_exclusive
    # cannot express, so validate_request() checks them with the other input rules.
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    errors = validate_request(params["state"], params["purge"], params["public"])
    errors += validate_grantees(params["account_ids"], params["organization_arns"], params["organizational_unit_arns"])
    if params["wait_timeout"] < 0:
        errors.append(f"wait_timeout must not be negative, got {params['wait_timeout']}")
    if errors:
        module.fail_json(msg="; ".join(errors))

    try:
        account = caller_account(module.client("sts"))
        refusal = own_account_error(params["account_ids"], account)
        if refusal:
            module.fail_json(msg=refusal)
        result = share(module, module.client("ec2"), module.client("kms"), account)
    except LabcloudAWSError as e:
        module.fail_json_aws_error(e)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
