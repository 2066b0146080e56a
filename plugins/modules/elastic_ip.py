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
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    description: Can run in check mode and predict the change without making it.
    support: full
    details:
      - The address a run would allocate is not known in check mode, so RV(allocation_id) and
        RV(public_ip) are V(null) then.
  diff_mode:
    description: Returns the address before and after (public IP, instance, tags) in diff mode.
    support: full
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

from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List, Optional

# The import guard is the pattern ansible-test sanity expects of modules.
try:  # noqa: SIM105
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    pass  # AnsibleAWSModule reports the missing botocore

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_specifications

from ansible_collections.labcloud.jupyter.plugins.module_utils.eip_ownership import default_name
from ansible_collections.labcloud.jupyter.plugins.module_utils.eip_ownership import describe_address
from ansible_collections.labcloud.jupyter.plugins.module_utils.eip_ownership import instance_owner_error
from ansible_collections.labcloud.jupyter.plugins.module_utils.eip_ownership import lookup_filters
from ansible_collections.labcloud.jupyter.plugins.module_utils.eip_ownership import missing_tags
from ansible_collections.labcloud.jupyter.plugins.module_utils.eip_ownership import owned_addresses
from ansible_collections.labcloud.jupyter.plugins.module_utils.eip_ownership import tag_dict
from ansible_collections.labcloud.jupyter.plugins.module_utils.eip_ownership import validate_identity
from ansible_collections.labcloud.jupyter.plugins.module_utils.eip_ownership import wanted_tags

GONE_INSTANCE_STATES = ("shutting-down", "terminated")
# Owners handled at once with O(addresses): enough to hide the API's latency for a class.
WORKERS = 8


class ElasticIPError(AnsibleAWSError):
    """A step failed; message says what was being done, exception says why."""


# One wrapper per EC2 call, each retried on throttling with jittered exponential backoff.


@AWSRetry.jittered_backoff()
def _describe_addresses(client, **params: Any) -> List[Dict[str, Any]]:
    """Call DescribeAddresses (it has no paginator)."""
    return client.describe_addresses(**params)["Addresses"]


@AWSRetry.jittered_backoff()
def _describe_instance(client, instance_id: str) -> List[Dict[str, Any]]:
    """Call DescribeInstances for one instance ID and return the instances found."""
    reservations = client.describe_instances(InstanceIds=[instance_id])["Reservations"]
    return [instance for reservation in reservations for instance in reservation["Instances"]]


@AWSRetry.jittered_backoff()
def _allocate_address(client, tags: Dict[str, str]) -> Dict[str, Any]:
    """Call AllocateAddress in the VPC domain with the tags applied in the same call."""
    return client.allocate_address(Domain="vpc", TagSpecifications=boto3_tag_specifications(tags, ["elastic-ip"]))


@AWSRetry.jittered_backoff()
def _associate_address(client, allocation_id: str, instance_id: str, allow_reassociation: bool) -> str:
    """Call AssociateAddress and return the association ID."""
    response = client.associate_address(
        AllocationId=allocation_id, InstanceId=instance_id, AllowReassociation=allow_reassociation
    )
    return response["AssociationId"]


@AWSRetry.jittered_backoff()
def _disassociate_address(client, association_id: str) -> None:
    """Call DisassociateAddress."""
    client.disassociate_address(AssociationId=association_id)


@AWSRetry.jittered_backoff()
def _release_address(client, allocation_id: str) -> None:
    """Call ReleaseAddress."""
    client.release_address(AllocationId=allocation_id)


@AWSRetry.jittered_backoff()
def _create_tags(client, resource_id: str, tags: Dict[str, str]) -> None:
    """Call CreateTags (adds or overwrites the given tags only)."""
    client.create_tags(Resources=[resource_id], Tags=ansible_dict_to_boto3_tag_list(tags))


def find_owned_addresses(client, owner: str, name: str) -> List[Dict[str, Any]]:
    """Return the owner's addresses: tag-filtered by EC2, then compared exactly here."""
    try:
        addresses = _describe_addresses(client, Filters=lookup_filters(owner, name))
    except (BotoCoreError, ClientError) as e:
        raise ElasticIPError(f"Could not look up the Elastic IP of owner {owner} (Name {name})", e) from e
    return owned_addresses(addresses, owner, name)


def find_address(client, allocation_id: str) -> Dict[str, Any]:
    """Return the current description of one address."""
    try:
        return _describe_addresses(client, AllocationIds=[allocation_id])[0]
    except (BotoCoreError, ClientError) as e:
        raise ElasticIPError(f"Could not describe Elastic IP {allocation_id}", e) from e


def find_instance(client, instance_id: str) -> Dict[str, Any]:
    """Return the instance, failing when it does not exist or is going away."""
    try:
        instances = _describe_instance(client, instance_id)
    except ClientError as e:
        if e.response["Error"]["Code"] in ("InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"):
            raise ElasticIPError(f"Instance {instance_id} does not exist; no address was allocated", e) from e
        raise ElasticIPError(f"Could not describe instance {instance_id}", e) from e
    except BotoCoreError as e:
        raise ElasticIPError(f"Could not describe instance {instance_id}", e) from e
    if not instances:
        raise ElasticIPError(f"Instance {instance_id} does not exist; no address was allocated")
    instance = instances[0]
    state = instance.get("State", {}).get("Name")
    if state in GONE_INSTANCE_STATES:
        raise ElasticIPError(f"Instance {instance_id} is {state}; an Elastic IP cannot be associated with it")
    return instance


def foreign_addresses_on_instance(client, instance_id: str, own_allocation_id: Optional[str]) -> List[Dict[str, Any]]:
    """Return the Elastic IPs associated with the instance that are not the owner's address."""
    try:
        addresses = _describe_addresses(client, Filters=[{"Name": "instance-id", "Values": [instance_id]}])
    except (BotoCoreError, ClientError) as e:
        raise ElasticIPError(f"Could not list the Elastic IPs of instance {instance_id}", e) from e
    return [address for address in addresses if address.get("AllocationId") != own_allocation_id]


def allocate(client, owner: str, tags: Dict[str, str]) -> Dict[str, Any]:
    """Allocate a tagged VPC address for the owner."""
    try:
        return _allocate_address(client, tags)
    except (BotoCoreError, ClientError) as e:
        raise ElasticIPError(f"Could not allocate an Elastic IP for owner {owner}", e) from e


def associate(client, address: Dict[str, Any], instance_id: str, allow_reassociation: bool) -> str:
    """Associate the address with the instance and return the association ID."""
    try:
        return _associate_address(client, address["AllocationId"], instance_id, allow_reassociation)
    except (BotoCoreError, ClientError) as e:
        raise ElasticIPError(f"Could not associate {address['PublicIp']} with {instance_id}", e) from e


def release_after_failed_association(client, address: Dict[str, Any], failure: ElasticIPError) -> ElasticIPError:
    """Release the address this run allocated and return the error to report, saying what happened."""
    label = f"{address['PublicIp']} ({address['AllocationId']})"
    try:
        _release_address(client, address["AllocationId"])
    except (BotoCoreError, ClientError) as e:
        return ElasticIPError(
            f"{failure.message}; the address {label} this run allocated could not be released either "
            f"({e}): release it by hand, an unassociated address bills by the hour",
            failure.exception,
        )
    return ElasticIPError(
        f"{failure.message}; released {label}, which this run had allocated, so no unassociated address is left",
        failure.exception,
    )


def disassociate_and_release(client, address: Dict[str, Any]) -> None:
    """Disassociate the address when it is associated, then release it."""
    label = f"{address['PublicIp']} ({address['AllocationId']})"
    if address.get("AssociationId"):
        holder = address.get("InstanceId") or address.get("NetworkInterfaceId")
        try:
            _disassociate_address(client, address["AssociationId"])
        except (BotoCoreError, ClientError) as e:
            raise ElasticIPError(f"Could not disassociate {label} from {holder}", e) from e
    try:
        _release_address(client, address["AllocationId"])
    except (BotoCoreError, ClientError) as e:
        raise ElasticIPError(f"Could not release {label}", e) from e


def add_tags(client, address: Dict[str, Any], tags: Dict[str, str]) -> None:
    """Add or update tags on the address."""
    try:
        _create_tags(client, address["AllocationId"], tags)
    except (BotoCoreError, ClientError) as e:
        raise ElasticIPError(f"Could not tag {address['PublicIp']} ({address['AllocationId']})", e) from e


def single_owned_address(client, owner: str, name: str) -> Optional[Dict[str, Any]]:
    """Return the owner's address, None when there is none, and fail when there are several."""
    owned = find_owned_addresses(client, owner, name)
    if len(owned) > 1:
        listing = ", ".join(f"{a['PublicIp']} ({a['AllocationId']})" for a in owned)
        raise ElasticIPError(
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
    refusal = instance_owner_error(instance, owner)
    if refusal:
        raise ElasticIPError(refusal)
    address = single_owned_address(client, owner, name)
    foreign = foreign_addresses_on_instance(client, instance_id, address and address["AllocationId"])
    if foreign:
        listing = ", ".join(f"{a['PublicIp']} (tags {tag_dict(a)})" for a in foreign)
        raise ElasticIPError(
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
            except ElasticIPError as failure:
                raise release_after_failed_association(client, address, failure) from failure
        predicted = {"InstanceId": instance_id, "Tags": ansible_dict_to_boto3_tag_list(tags)}
    else:
        holder = holder_of(address)
        predicted = dict(address)
        if holder != instance_id:
            if holder and not module.params["allow_reassociation"]:
                raise ElasticIPError(
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
                add_tags(client, address, absent_tags)

    changed = result["allocated"] or before != describe_address(predicted)
    after = describe_address(predicted)
    if changed and not module.check_mode:
        after = describe_address(find_address(client, address["AllocationId"]))
    result.update(after, changed=changed)
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
            "name": entry["name"] or default_name(entry["owner"]),
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
    with ThreadPoolExecutor(max_workers=min(WORKERS, len(requests))) as pool:
        futures = [pool.submit(ensure, module, client, request) for request in requests]
    results, failures = [], []
    for request, future in zip(requests, futures):  # noqa: B905 (modules keep Python 3.6 syntax)
        identity = {"owner": request["owner"], "name": request["name"]}
        try:
            results.append({**identity, **future.result()})
        except ElasticIPError as e:
            failures.append(str(e))
            results.append({**identity, "changed": False, "error": str(e)})
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
    if module.params["addresses"] is not None:
        run_all(module, client, requests)
    try:
        if module.params["state"] == "present":
            result = ensure_present(module, client, requests[0])
        else:
            result = ensure_absent(module, client, requests[0])
    except ElasticIPError as e:
        module.fail_json_aws_error(e)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
