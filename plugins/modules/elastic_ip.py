#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
---
module: elastic_ip
version_added: 0.1.0
short_description: Keep one owner's Elastic IP associated with that owner's EC2 instance
description:
  - Gives one owner's VM a stable public IPv4 address that survives stop and start.
  - The owner's address is found by its C(Name) and C(Owner) tags, compared exactly. An address
    without these tags, or tagged for another owner, is never adopted, moved or released.
  - With O(state=present), the address is allocated in the VPC domain when the owner has none,
    tagged in the same call (so an interrupted run leaves an address the next run finds), and
    associated with O(instance_id). If the association fails, the address this run allocated is
    released before the module fails, and the error says so.
  - With O(state=absent), the owner's address is disassociated and released.
  - This closes gaps in M(amazon.aws.ec2_eip) for a one-address-per-owner workflow. There,
    allocation and association are two steps, so a failure between them leaves an unassociated
    address that bills by the hour, and O(amazon.aws.ec2_eip#module:reuse_existing_ip_allowed)
    without a tag filter can take another user's idle address.
options:
  owner:
    description:
      - Who the address belongs to. Stored in the C(Owner) tag and used, with O(name), to find it.
      - Wildcard characters (V(*), V(?)) are refused, because EC2 filters would expand them.
      - Required unless O(addresses) is given.
    type: str
  name:
    description:
      - The C(Name) tag of the owner's address.
      - Defaults to C(jupyter-<owner>).
    type: str
  instance_id:
    description:
      - The instance the owner's address must be associated with.
      - Required when O(state=present); not used when O(state=absent).
      - An instance tagged with another C(Owner) is refused.
      - An instance that already holds a different Elastic IP is refused, so that this module
        never silently displaces an address it does not own.
    type: str
  tags:
    description:
      - Extra tags for the address, set when it is allocated and added or updated on an
        existing address. Tags not listed here are left alone.
      - C(Name) and C(Owner) come from O(name) and O(owner) and cannot be set here to other values.
      - These tags are not used to find the address, so changing them never allocates a second one.
    type: dict
  addresses:
    description:
      - The addresses of several owners (a class roster), handled in one run with one AWS session,
        several owners at once, instead of one task run per owner.
      - Each entry takes the single-owner options O(owner), O(name), O(instance_id) and O(tags),
        which are then not given at the top level. O(allow_reassociation) and O(state) apply to all.
      - The result lists each owner's result in RV(addresses). When some owners fail, the others
        are still done, and the module fails naming each failure.
    type: list
    elements: dict
    suboptions:
      owner:
        description: As O(owner).
        type: str
        required: true
      name:
        description: As O(name).
        type: str
      instance_id:
        description: As O(instance_id); required when O(state=present).
        type: str
      tags:
        description: As O(tags).
        type: dict
  allow_reassociation:
    description:
      - Move the owner's address to O(instance_id) when it is associated with another instance
        or network interface. The move is reported in RV(moved_from).
      - When V(false) and the address is associated elsewhere, the module fails and changes nothing.
    type: bool
    default: false
  state:
    description:
      - V(present) makes sure the owner's address exists and is associated with O(instance_id).
      - V(absent) disassociates and releases every address tagged for the owner and O(name).
    type: str
    choices: [present, absent]
    default: present
  wait:
    description:
      - With O(state=present), first wait until every instance of the run has left the C(pending) state
        (EC2 associates an address only with a running or stopped instance), with one
        C(DescribeInstances) call for all of them every O(poll_interval) seconds.
      - An instance that ends in another state than C(running) or C(stopped) fails its owner, saying why.
      - Not done in check mode (nothing would be associated).
    type: bool
    default: false
  wait_timeout:
    description: Seconds to wait with O(wait).
    type: int
    default: 300
  poll_interval:
    description: Seconds between two looks at the pending instances with O(wait).
    type: int
    default: 2
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
      - The address a run would allocate is not known in check mode, so RV(allocation_id) and
        RV(public_ip) are V(null) then.
  diff_mode:
    details:
      - The address before and after (public IP, instance, tags).
notes:
  - Every public IPv4 address costs money by the hour, associated or not; use O(state=absent)
    when the VM is terminated.
  - Throttling errors are retried with jittered exponential backoff.
author:
  - labcloud.jupyter developers (@labcloud)
"""

EXAMPLES = r"""
- name: Give hedylamarr's VM a stable public address
  labcloud.jupyter.elastic_ip:
    owner: hedylamarr
    instance_id: "{{ instance.instance_ids[0] }}"
    tags:
      Project: ocean-models
  register: eip

- name: Show the SSH line
  ansible.builtin.debug:
    msg: "ssh -i hedylamarr.pem admin@{{ eip.public_ip }}"

- name: Move the address to a replacement VM (an explicit, reported change)
  labcloud.jupyter.elastic_ip:
    owner: hedylamarr
    instance_id: "{{ new_instance_id }}"
    allow_reassociation: true

- name: Release hedylamarr's address
  labcloud.jupyter.elastic_ip:
    owner: hedylamarr
    state: absent

- name: Set credentials once for every AWS module of the collection
  module_defaults:
    group/labcloud.jupyter.aws:
      region: eu-west-1
  block:
    - name: Give every student's VM a stable address, in one run
      labcloud.jupyter.elastic_ip:
        addresses:
          - owner: ada
            instance_id: i-0abc1234def567890
          - owner: grace
            instance_id: i-0fedcba9876543210
            tags:
              Course: cs101
      register: class_addresses

    - name: Show each student's address
      ansible.builtin.debug:
        msg: "{{ class_addresses.addresses | items2dict(key_name='owner', value_name='public_ip') }}"
"""

RETURN = r"""
addresses:
  description:
    - With O(addresses), one result per owner in the order given, each with the owner's C(owner)
      and C(name) and the keys below that describe one address (C(allocation_id), C(public_ip),
      C(association_id), C(instance_id), C(tags), C(allocated), C(moved_from), C(released),
      C(changed)), or C(error) for an owner that failed. The single-owner keys below are then
      not returned at the top level.
  returned: when O(addresses) is given
  type: list
  elements: dict
  sample: [{"owner": "ada", "name": "jupyter-ada", "public_ip": "203.0.113.7", "changed": true}]
allocation_id:
  description:
    - Allocation ID of the owner's address.
    - V(null) in check mode when the address would be allocated, and after O(state=absent)
      found nothing to release.
  returned: when O(owner) is given
  type: str
  sample: eipalloc-0a1b2c3d4e5f67890
public_ip:
  description:
    - The owner's public IPv4 address (the released one after O(state=absent)).
  returned: when O(owner) is given
  type: str
  sample: 203.0.113.7
association_id:
  description:
    - ID of the association with RV(instance_id).
    - V(null) when not associated, and in check mode when the association would change.
  returned: when O(owner) is given
  type: str
  sample: eipassoc-0a1b2c3d4e5f67890
instance_id:
  description: The instance the address is associated with after the run (V(null) after O(state=absent)).
  returned: when O(owner) is given
  type: str
  sample: i-0abc1234def567890
tags:
  description: Tags of the address after the run.
  returned: when O(owner) is given
  type: dict
  sample: {"Name": "jupyter-hedylamarr", "Owner": "hedylamarr", "Project": "ocean-models"}
instance_state:
  description: With O(state=present), the state of O(instance_id) when the address was associated (after O(wait)).
  returned: when O(owner) is given and O(state=present)
  type: str
  sample: running
instance_state_reason:
  description: Why the instance is in that state, when EC2 says (for example why a launch ended stopped).
  returned: when O(owner) is given and O(state=present)
  type: str
  sample: "Server.InternalError: Internal error on launch"
allocated:
  description: Whether this run allocated the address (or would, in check mode).
  returned: when O(owner) is given
  type: bool
  sample: false
moved_from:
  description: The instance or network interface the address was moved away from, when it was moved.
  returned: when O(owner) is given
  type: str
  sample: i-0fedcba9876543210
released:
  description: The addresses released by O(state=absent) (or that would be, in check mode).
  returned: when O(owner) is given
  type: list
  elements: dict
  contains:
    allocation_id:
      description: Allocation ID of the released address.
      type: str
      returned: always
      sample: eipalloc-0a1b2c3d4e5f67890
    public_ip:
      description: The released public IPv4 address.
      type: str
      returned: always
      sample: 203.0.113.7
    instance_id:
      description: The instance it was disassociated from, if any.
      type: str
      returned: always
      sample: i-0abc1234def567890
"""

import time
from typing import Any, Dict, List, Optional

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list

from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import LabcloudAWSError
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import call
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import create_tags
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import describe_all
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import missing_tags
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import run_each
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import tag_specifications
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import identity_tags
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import instance_owner_error
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import owned_addresses
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import resource_name
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import tag_dict
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import validate_identity
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import wanted_tags

GONE_INSTANCE_STATES = ("shutting-down", "terminated")
MISSING_INSTANCE_CODES = ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed")


def lookup_filters(owner: str, name: str) -> List[Dict[str, Any]]:
    """Return the DescribeAddresses filters that find the owner's VPC addresses."""
    filters = [{"Name": "domain", "Values": ["vpc"]}]
    filters += [{"Name": f"tag:{key}", "Values": [value]} for key, value in identity_tags(owner, name).items()]
    return filters


def describe_address(address: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Return the snake_case view of an address (all None when there is no address)."""
    address = address or {}
    return {
        "allocation_id": address.get("AllocationId"),
        "public_ip": address.get("PublicIp"),
        "association_id": address.get("AssociationId"),
        "instance_id": address.get("InstanceId") or None,
        "tags": tag_dict(address) if address else {},
    }


def label_of(address: Dict[str, Any]) -> str:
    """Return an address as messages name it: 203.0.113.7 (eipalloc-0abc)."""
    return f"{address['PublicIp']} ({address['AllocationId']})"


def find_owned_addresses(client, owner: str, name: str) -> List[Dict[str, Any]]:
    """Return the owner's addresses: tag-filtered by EC2, then compared exactly here."""
    doing = f"Could not look up the Elastic IP of owner {owner} (Name {name})"
    addresses = describe_all(client, "describe_addresses", "Addresses", doing, Filters=lookup_filters(owner, name))
    return owned_addresses(addresses, owner, name)


def find_address(client, allocation_id: str) -> Dict[str, Any]:
    """Return the current description of one address."""
    doing = f"Could not describe Elastic IP {allocation_id}"
    return describe_all(client, "describe_addresses", "Addresses", doing, AllocationIds=[allocation_id])[0]


def wait_until_started(client, instance_ids: List[str], timeout: int, interval: int) -> None:
    """Wait until none of the instances is pending any more (or the time is up; the owners then fail)."""
    deadline = time.monotonic() + timeout
    pending = sorted(set(instance_ids))
    while pending and time.monotonic() < deadline:
        try:
            reservations = describe_all(
                client,
                "describe_instances",
                "Reservations",
                f"Could not look at instances {', '.join(pending)}",
                # A filter, not IDs: an instance EC2 does not list yet is pending, not missing.
                Filters=[{"Name": "instance-id", "Values": pending}],
            )
        except LabcloudAWSError:
            reservations = []
        listed = {i["InstanceId"]: i for r in reservations for i in r.get("Instances", [])}
        pending = [i for i in pending if i not in listed or listed[i].get("State", {}).get("Name") == "pending"]
        if pending:
            time.sleep(interval)


def find_instance(client, instance_id: str) -> Dict[str, Any]:
    """Return the instance, failing when it does not exist or is going away."""
    missing = f"Instance {instance_id} does not exist; no address was allocated"
    try:
        reservations = describe_all(
            client,
            "describe_instances",
            "Reservations",
            f"Could not describe instance {instance_id}",
            InstanceIds=[instance_id],
        )
    except LabcloudAWSError as e:
        if e.code in MISSING_INSTANCE_CODES:
            raise LabcloudAWSError(missing, e.exception) from e
        raise
    instances = [instance for reservation in reservations for instance in reservation["Instances"]]
    if not instances:
        raise LabcloudAWSError(missing)
    instance = instances[0]
    state = instance.get("State", {}).get("Name")
    if state in GONE_INSTANCE_STATES:
        reason = (instance.get("StateReason") or {}).get("Message")
        raise LabcloudAWSError(
            f"Instance {instance_id} is {state}{f' ({reason})' if reason else ''}; "
            "an Elastic IP cannot be associated with it"
        )
    return instance


def foreign_addresses_on_instance(client, instance_id: str, own_allocation_id: Optional[str]) -> List[Dict[str, Any]]:
    """Return the Elastic IPs associated with the instance that are not the owner's address."""
    addresses = describe_all(
        client,
        "describe_addresses",
        "Addresses",
        f"Could not list the Elastic IPs of instance {instance_id}",
        Filters=[{"Name": "instance-id", "Values": [instance_id]}],
    )
    return [address for address in addresses if address.get("AllocationId") != own_allocation_id]


def allocate(client, owner: str, tags: Dict[str, str]) -> Dict[str, Any]:
    """Allocate a VPC address for the owner, tagged in the same call."""
    return call(
        client.allocate_address,
        f"Could not allocate an Elastic IP for owner {owner}",
        Domain="vpc",
        TagSpecifications=tag_specifications("elastic-ip", tags),
    )


def associate(client, address: Dict[str, Any], instance_id: str, allow_reassociation: bool) -> str:
    """Associate the address with the instance and return the association ID."""
    response = call(
        client.associate_address,
        f"Could not associate {address['PublicIp']} with {instance_id}",
        AllocationId=address["AllocationId"],
        InstanceId=instance_id,
        AllowReassociation=allow_reassociation,
    )
    return response["AssociationId"]


def release(client, address: Dict[str, Any]) -> None:
    """Release the address."""
    call(client.release_address, f"Could not release {label_of(address)}", AllocationId=address["AllocationId"])


def release_after_failed_association(client, address: Dict[str, Any], failure: LabcloudAWSError) -> LabcloudAWSError:
    """Release the address this run allocated and return the error to report, saying what happened."""
    label = label_of(address)
    try:
        release(client, address)
    except LabcloudAWSError as e:
        return LabcloudAWSError(
            f"{failure.message}; the address {label} this run allocated could not be released either "
            f"({e.exception}): release it by hand, an unassociated address bills by the hour",
            failure.exception,
        )
    return LabcloudAWSError(
        f"{failure.message}; released {label}, which this run had allocated, so no unassociated address is left",
        failure.exception,
    )


def disassociate_and_release(client, address: Dict[str, Any]) -> None:
    """Disassociate the address when it is associated, then release it."""
    if address.get("AssociationId"):
        holder = address.get("InstanceId") or address.get("NetworkInterfaceId")
        call(
            client.disassociate_address,
            f"Could not disassociate {label_of(address)} from {holder}",
            AssociationId=address["AssociationId"],
        )
    release(client, address)


def single_owned_address(client, owner: str, name: str) -> Optional[Dict[str, Any]]:
    """Return the owner's address, None when there is none, and fail when there are several."""
    owned = find_owned_addresses(client, owner, name)
    if len(owned) > 1:
        listing = ", ".join(label_of(address) for address in owned)
        raise LabcloudAWSError(
            f"Found {len(owned)} Elastic IPs tagged Owner={owner} Name={name}: {listing}; "
            "run with state: absent to release them all, then again with state: present"
        )
    return owned[0] if owned else None


def holder_of(address: Dict[str, Any]) -> Optional[str]:
    """Return the instance or network interface the address is associated with, if any."""
    if not address.get("AssociationId") and not address.get("InstanceId"):
        return None
    return address.get("InstanceId") or address.get("NetworkInterfaceId")


def ensure_present(module: AnsibleAWSModule, client, request: Dict[str, Any]) -> Dict[str, Any]:
    """Make sure the owner's address exists, carries its tags and is associated with the instance."""
    owner, name, instance_id = request["owner"], request["name"], request["instance_id"]
    tags = wanted_tags(owner, name, request["tags"])

    instance = find_instance(client, instance_id)
    if module.params["wait"] and not module.check_mode and instance.get("State", {}).get("Name") == "pending":
        raise LabcloudAWSError(
            f"Instance {instance_id} is still pending after {module.params['wait_timeout']} s; no address was "
            "allocated: run again once it is running, or raise wait_timeout"
        )
    refusal = instance_owner_error(instance, owner)
    if refusal:
        raise LabcloudAWSError(refusal)
    address = single_owned_address(client, owner, name)
    foreign = foreign_addresses_on_instance(client, instance_id, address and address["AllocationId"])
    if foreign:
        listing = ", ".join(f"{a['PublicIp']} (tags {tag_dict(a)})" for a in foreign)
        raise LabcloudAWSError(
            f"Instance {instance_id} already holds another Elastic IP: {listing}; it is not the address of "
            f"owner {owner} (Name {name}), so it is left alone: disassociate it first"
        )

    before = describe_address(address)
    result = {"allocated": False, "moved_from": None, "released": []}
    if address is None:
        result["allocated"] = True
        if not module.check_mode:
            address = allocate(client, owner, tags)
            try:
                associate(client, address, instance_id, allow_reassociation=False)
            except LabcloudAWSError as failure:
                raise release_after_failed_association(client, address, failure) from failure
        predicted = {"InstanceId": instance_id, "Tags": ansible_dict_to_boto3_tag_list(tags)}
    else:
        holder = holder_of(address)
        predicted = dict(address)
        if holder != instance_id:
            if holder and not module.params["allow_reassociation"]:
                raise LabcloudAWSError(
                    f"Elastic IP {address['PublicIp']} of owner {owner} is associated with {holder}; "
                    f"set allow_reassociation: true to move it to {instance_id}"
                )
            result["moved_from"] = holder
            predicted.update(InstanceId=instance_id, AssociationId=None)
            if not module.check_mode:
                associate(client, address, instance_id, allow_reassociation=bool(holder))
        absent_tags = missing_tags(tag_dict(address), tags)
        if absent_tags:
            predicted["Tags"] = ansible_dict_to_boto3_tag_list({**tag_dict(address), **absent_tags})
            if not module.check_mode:
                create_tags(client, [address["AllocationId"]], absent_tags, f"Could not tag {label_of(address)}")

    changed = result["allocated"] or before != describe_address(predicted)
    after = describe_address(predicted)
    if changed and not module.check_mode:
        after = describe_address(find_address(client, address["AllocationId"]))
    result.update(after, changed=changed)
    result["instance_state"] = instance.get("State", {}).get("Name")
    result["instance_state_reason"] = (instance.get("StateReason") or {}).get("Message")
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    return result


def ensure_absent(module: AnsibleAWSModule, client, request: Dict[str, Any]) -> Dict[str, Any]:
    """Disassociate and release every address tagged for the owner and name."""
    owner, name = request["owner"], request["name"]
    owned = find_owned_addresses(client, owner, name)
    released = []
    for address in owned:
        if not module.check_mode:
            disassociate_and_release(client, address)
        released.append(
            {
                "allocation_id": address["AllocationId"],
                "public_ip": address["PublicIp"],
                "instance_id": address.get("InstanceId") or None,
            }
        )
    first = owned[0] if owned else {}
    result = describe_address(None)
    result.update(
        changed=bool(owned),
        allocation_id=first.get("AllocationId"),
        public_ip=first.get("PublicIp"),
        allocated=False,
        moved_from=None,
        released=released,
    )
    if module._diff:
        result["diff"] = {
            "before": describe_address(owned[0] if owned else None),
            "after": describe_address(None),
        }
    return result


def requests_of(params: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Return one request (owner, name, instance_id, tags) per address the run is about."""
    entries = params["addresses"] if params["addresses"] is not None else [params]
    return [
        {
            "owner": entry["owner"],
            "name": entry["name"] or resource_name(entry["owner"]),
            "instance_id": entry["instance_id"],
            "tags": entry["tags"],
        }
        for entry in entries
    ]


def request_errors(requests: List[Dict[str, Any]], state: str) -> List[str]:
    """Return what is wrong with the requests (nothing is looked up yet)."""
    errors = []
    for request in requests:
        label = f"owner {request['owner']}: " if len(requests) > 1 else ""
        errors += [label + error for error in validate_identity(request["owner"], request["name"], request["tags"])]
        if state == "present" and not request["instance_id"]:
            errors.append(f"{label}instance_id is required when state is present")
    names = [request["name"] for request in requests]
    errors += [f"{name} is given more than once in addresses" for name in sorted(set(names)) if names.count(name) > 1]
    return errors


def run_all(module: AnsibleAWSModule, client, requests: List[Dict[str, Any]]) -> None:
    """Handle several owners' addresses at once and exit with one result per owner."""
    ensure = ensure_present if module.params["state"] == "present" else ensure_absent
    outcomes = run_each(lambda request: ensure(module, client, request), requests)
    results, failures = [], []
    for request, outcome in zip(requests, outcomes):  # noqa: B905 (modules keep Python 3.6 syntax)
        who = {"owner": request["owner"], "name": request["name"]}
        if outcome.error:
            failures.append(str(outcome.error))
            results.append({**who, "changed": False, "error": str(outcome.error)})
        else:
            results.append({**who, **outcome.result})
    changed = any(result["changed"] for result in results)
    if failures:
        module.fail_json(msg="; ".join(failures), addresses=results, changed=changed)
    if module._diff:
        diff = {side: {r["name"]: r["diff"][side] for r in results} for side in ("before", "after")}
        for result in results:
            del result["diff"]
        module.exit_json(changed=changed, addresses=results, diff=diff)
    module.exit_json(changed=changed, addresses=results)


def main() -> None:
    """Run the module."""
    identity_options = ["owner", "name", "instance_id", "tags"]
    argument_spec = dict(
        owner=dict(type="str"),
        name=dict(type="str"),
        instance_id=dict(type="str"),
        tags=dict(type="dict"),
        addresses=dict(
            type="list",
            elements="dict",
            options=dict(
                owner=dict(type="str", required=True),
                name=dict(type="str"),
                instance_id=dict(type="str"),
                tags=dict(type="dict"),
            ),
        ),
        allow_reassociation=dict(type="bool", default=False),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=300),
        poll_interval=dict(type="int", default=2),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_one_of=[("owner", "addresses")],
        mutually_exclusive=[("addresses", option) for option in identity_options],
    )
    requests = requests_of(module.params)
    errors = request_errors(requests, module.params["state"])
    if errors:
        module.fail_json(msg="; ".join(errors))
    if not requests:
        module.exit_json(changed=False, addresses=[])

    client = module.client("ec2")
    if module.params["wait"] and module.params["state"] == "present" and not module.check_mode:
        wait_until_started(
            client,
            [request["instance_id"] for request in requests],
            module.params["wait_timeout"],
            max(1, module.params["poll_interval"]),
        )
    if module.params["addresses"] is not None:
        run_all(module, client, requests)
    try:
        if module.params["state"] == "present":
            result = ensure_present(module, client, requests[0])
        else:
            result = ensure_absent(module, client, requests[0])
    except LabcloudAWSError as e:
        module.fail_json_aws_error(e)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
