#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
---
module: zombies
version_added: 0.1.0
short_description: Find the collection's zombie resources, with what each costs, and remove them when confirmed
description:
  - Looks only at resources tagged C(ManagedBy) with the collection's value; nothing else is ever listed or
    touched. Among them, the zombies are Elastic IPs associated with nothing, volumes attached to nothing,
    snapshots that back no image, image versions beyond the newest O(keep) of an owner's project or older
    than O(image_days), instances stopped for more than O(stopped_days), and the key pairs and security
    groups of owners who have no instance.
  - An image version is every image of an owner's project tagged with the version (the image made by
    C(playbooks/image.yml) and the copies made by C(playbooks/share.yml), tagged C(CopyOf)), as the image
    role's prune counts them. The newest version of each owner's project is never a zombie. A shared
    version (launch permissions, public, or copies made to share it) is held, not removed, unless O(force).
  - A stopped instance is terminated only when an available image made from it (tagged C(SourceInstance))
    outlives the clean-up, unless O(force); otherwise it is held.
  - The zombies are found as they will be once removed, so that a second run finds none - the Elastic IP
    and the volumes kept on termination of an instance terminated here, the snapshots of an image removed
    here, the key pair and group of an owner whose last instance is terminated here.
  - Nothing is removed unless O(confirm=true). Removal goes in order (instances, addresses, volumes,
    images, snapshots, key pairs, groups), waiting for what must be gone first; a removal that fails is
    reported and the others go on.
  - This closes a gap. C(amazon.aws) removes one resource it is told about, and nothing tells which of
    the collection's resources nothing uses any more.
options:
  confirm:
    description: Remove the zombies. Without it, they are only listed.
    type: bool
    default: false
  keep:
    description: How many of the newest image versions of each owner's project to keep (1 or more).
    type: int
    default: 3
  image_days:
    description:
      - An image version older than this many days is a zombie (the newest of its project excepted); 0 turns this off.
    type: int
    default: 0
  stopped_days:
    description: An instance stopped for more than this many days is a zombie; 0 turns this off.
    type: int
    default: 30
  force:
    description: Also remove shared image versions, and stopped instances of which no image exists.
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait for terminated instances and their volumes.
    type: int
    default: 600
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - labcloud.jupyter.attributes
  - labcloud.jupyter.attributes.check_mode_full
  - labcloud.jupyter.attributes.diff_mode_none
attributes:
  check_mode:
    details:
      - With O(confirm=true), reports what it would remove and removes nothing.
author:
  - labcloud.jupyter developers (@labcloud)
seealso:
  - module: labcloud.jupyter.cost_report
"""

EXAMPLES = r"""
- name: List the zombies and what they cost
  labcloud.jupyter.zombies:
    region: us-east-1
  register: found

- name: Remove them, keeping two image versions per project and nothing stopped for more than a week
  labcloud.jupyter.zombies:
    keep: 2
    stopped_days: 7
    confirm: true
"""

RETURN = r"""
zombies:
  description: The zombies, in the order of their removal.
  returned: always
  type: list
  elements: dict
  contains:
    kind:
      description: V(instance), V(elastic-ip), V(volume), V(image), V(snapshot), V(key-pair) or V(security-group).
      type: str
    id:
      description: Its ID (the name of a key pair).
      type: str
    owner:
      description: Its C(Owner) tag.
      type: str
    project:
      description: Its C(Project) tag.
      type: str
    name:
      description: Its name.
      type: str
    reason:
      description: Why it is a zombie.
      type: str
    action:
      description: What removing it does (V(terminate), V(release), V(deregister), V(delete)).
      type: str
    per_month_usd:
      description: What it costs per month (730 hours); null when the prices do not cover it.
      type: float
  sample:
    - {"kind": "elastic-ip", "id": "eipalloc-0abc", "owner": "hedylamarr", "project": "ocean",
       "name": "jupyter-hedylamarr", "reason": "198.51.100.7: not associated with anything",
       "action": "release", "per_month_usd": 3.65}
held:
  description:
    - Resources that would be zombies but are kept, each with why (shared, or without an image), with the
      fields of RV(zombies).
  returned: always
  type: list
  elements: dict
removed:
  description: The IDs removed by this run (none in check mode or without O(confirm)).
  returned: always
  type: list
  elements: str
failed:
  description: The removals that failed, each with its error.
  returned: always
  type: list
  elements: dict
per_month_usd:
  description: What the zombies cost per month together.
  returned: always
  type: float
  sample: 11.95
prices:
  description: Which prices the amounts come from (the bundled table, with its date, source and regions).
  returned: always
  type: str
"""

from datetime import datetime, timezone
from typing import Any, Dict, List

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import LabcloudAWSError
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import call
from ansible_collections.labcloud.jupyter.plugins.module_utils.holdings import describe
from ansible_collections.labcloud.jupyter.plugins.module_utils.prices import PriceTable
from ansible_collections.labcloud.jupyter.plugins.module_utils.zombies import find_zombies
from ansible_collections.labcloud.jupyter.plugins.module_utils.zombies import monthly_total
from ansible_collections.labcloud.jupyter.plugins.module_utils.zombies import settings_errors

# Codes that mean the resource is already gone: removed, as wanted.
GONE = (
    "InvalidInstanceID.NotFound",
    "InvalidAllocationID.NotFound",
    "InvalidVolume.NotFound",
    "InvalidAMIID.NotFound",
    "InvalidAMIID.Unavailable",
    "InvalidSnapshot.NotFound",
    "InvalidKeyPair.NotFound",
    "InvalidGroup.NotFound",
)
# A group is still held for a while by the network interface of an instance just terminated.
GROUP_BUSY = ("DependencyViolation",)


def wait(client: Any, waiter: str, doing: str, timeout: int, **params: Any) -> None:
    """Wait with a botocore waiter, LabcloudAWSError(doing) when it gives up."""
    delay = 2
    call(
        client.get_waiter(waiter).wait, doing,
        WaiterConfig={"Delay": delay, "MaxAttempts": max(timeout // delay, 1)}, **params,
    )  # fmt: skip


def remove(client: Any, entry: Dict[str, Any], timeout: int) -> None:
    """Remove one zombie (the instance's termination is waited for by remove_all)."""
    kind, resource_id = entry["kind"], entry["id"]
    doing = f"Could not {entry['action']} {kind} {resource_id} ({entry['reason']})"
    if kind == "elastic-ip":
        # An address of an instance terminated here may still show the association for a moment.
        (address,) = call(client.describe_addresses, doing, AllocationIds=[resource_id])["Addresses"]
        if address.get("AssociationId"):
            call(client.disassociate_address, doing, AssociationId=address["AssociationId"])
        call(client.release_address, doing, AllocationId=resource_id)
    elif kind == "volume":
        wait(client, "volume_available", f"{doing}: it did not become available", timeout, VolumeIds=[resource_id])
        call(client.delete_volume, doing, VolumeId=resource_id)
    elif kind == "image":
        call(client.deregister_image, doing, ImageId=resource_id)
    elif kind == "snapshot":
        call(client.delete_snapshot, doing, SnapshotId=resource_id)
    elif kind == "key-pair":
        call(client.delete_key_pair, doing, KeyName=resource_id)
    elif kind == "security-group":
        call(client.delete_security_group, doing, retry_codes=GROUP_BUSY, GroupId=resource_id)


def remove_all(client: Any, zombies: List[Dict[str, Any]], timeout: int) -> Dict[str, List[Any]]:
    """Remove the zombies in order; return the IDs removed and the failures."""
    removed, failed = [], []
    instances = [z["id"] for z in zombies if z["kind"] == "instance"]
    if instances:
        try:
            call(client.terminate_instances, f"Could not terminate {', '.join(instances)}", InstanceIds=instances)
            wait(
                client, "instance_terminated", "Could not see the instances terminated", timeout, InstanceIds=instances
            )
            removed += instances
        except LabcloudAWSError as e:
            failed.append({"id": ", ".join(instances), "error": f"{e.message}: {e.exception}"})
            # What the instances hold stays until they are gone.
            return {"removed": removed, "failed": failed}
    for entry in zombies:
        if entry["kind"] == "instance":
            continue
        try:
            remove(client, entry, timeout)
            removed.append(entry["id"])
        except LabcloudAWSError as e:
            if e.code in GONE:
                removed.append(entry["id"])
            else:
                failed.append({"id": entry["id"], "error": f"{e.message}: {e.exception}"})
    return {"removed": removed, "failed": failed}


def main() -> None:
    """Run the module."""
    argument_spec = dict(
        confirm=dict(type="bool", default=False),
        keep=dict(type="int", default=3),
        image_days=dict(type="int", default=0),
        stopped_days=dict(type="int", default=30),
        force=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=600),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    errors = settings_errors(params["keep"], params["image_days"], params["stopped_days"])
    if errors:
        module.fail_json(msg="; ".join(errors) + ". Nothing was looked at or changed.")
    if not module.region:
        module.fail_json(msg="Which region? Give region, or set AWS_REGION.")
    client = module.client("ec2")
    try:
        resources = describe(client, module.region, access=True)
    except LabcloudAWSError as e:
        module.fail_json_aws(e.exception, msg=e.message)
    prices = PriceTable(module.region)
    now = datetime.now(tz=timezone.utc)
    found = find_zombies(
        resources, now, prices, keep=params["keep"], image_days=params["image_days"],
        stopped_days=params["stopped_days"], force=params["force"],
    )  # fmt: skip
    result: Dict[str, Any] = dict(
        changed=bool(found["zombies"]) and params["confirm"],
        zombies=found["zombies"],
        held=found["held"],
        removed=[],
        failed=[],
        per_month_usd=monthly_total(found["zombies"]),
        prices=prices.describe()["text"],
    )
    if params["confirm"] and found["zombies"] and not module.check_mode:
        result.update(remove_all(client, found["zombies"], params["wait_timeout"]))
    if result["failed"]:
        failures = "; ".join(f"{f['id']}: {f['error']}" for f in result["failed"])
        module.fail_json(msg=f"Could not remove every zombie: {failures}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
