#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
---
module: owner_access
version_added: 0.1.0
short_description: Give each owner of a class an EC2 key pair and an SSH-only security group, in one run
description:
  - For every entry of O(owners), makes sure that the key pair O(owners[].name) exists (imported
    from O(owners[].public_key) when it does not) and that the security group O(owners[].name) in
    O(vpc_id) lets in exactly one thing, TCP to O(port) from O(owners[].ssh_cidr).
  - An existing key pair is never replaced, re-imported or retagged.
  - A group is created with its tags in the same call. Any other ingress permission of the group
    is revoked; egress is left as it is. Tags are added or updated, other tags are kept.
  - A group that exists but whose C(Owner) tag is not O(owners[].owner), or a key pair that does
    not exist without O(owners[].public_key) to import, fails the run before anything is changed
    for any owner, so one owner's run never touches the rules of another owner's group.
  - When an AWS call fails midway, the owners already served keep what they got, and the error
    says what this run had changed for the owner that failed.
  - All owners share one AWS session, with one look-up of the key pairs and one of the groups for the
    whole class, then only the calls that change something, run for several owners at once.
  - This closes a gap in M(amazon.aws.ec2_key) and M(amazon.aws.ec2_security_group) for class
    rosters, which handle one resource per task run. A class of forty then starts eighty module
    processes, each loading the EC2 service model, and M(amazon.aws.ec2_security_group) sleeps
    three seconds after each group it creates. C(bench/modules.py) measures the difference; for a
    roster of eight, those two modules on one host per owner took 11.7 s and this module 1.7 s (6.9
    times less), in one run on a 2-core machine.
options:
  vpc_id:
    description:
      - The VPC the security groups are in.
      - Required unless O(launch=true), which takes the VPC of the subnet the launch would use.
    type: str
  owners:
    description: One entry per owner.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Name of the owner's key pair and of the owner's security group (and their C(Name) tag).
          - Wildcard characters (V(*), V(?)) are refused in O(owners[].name) and O(owners[].owner),
            because EC2 filters would expand them, and O(owners[].tags) cannot set other C(Name) or
            C(Owner) values (the rules of M(labcloud.jupyter.elastic_ip)).
        type: str
        required: true
      owner:
        description: The owner, stored in the C(Owner) tag; an existing group must carry the same C(Owner) tag.
        type: str
        required: true
      public_key:
        description:
          - The public key (OpenSSH format) imported when the key pair does not exist yet.
          - Required when the key pair does not exist and O(owners[].key_file) is not given (in check
            mode, where the import is only predicted, it may still be missing); ignored when the key
            pair exists.
        type: str
      key_file:
        description:
          - The owner's private key on this machine (where the module runs). When it does not exist,
            an ed25519 key is made there (mode 0400, in a directory made 0700 when missing), and its
            public half is what is imported; an existing file is never rewritten.
          - When the key pair exists, its public key must be this key's public half, or the run fails
            before anything is changed for anyone (a key pair of the same name is another owner's).
          - The private key never leaves this machine; only its public half is sent to EC2.
        type: path
      ssh_cidr:
        description:
          - The only source networks allowed to reach O(port), IPv4 or IPv6 (a bare address means /32 or
            /128), for example the instructor's address and a campus range. Every other source is revoked.
          - Required when O(state=present).
        type: list
        elements: str
      description:
        description: Description of the group when it is created (EC2 cannot change it later).
        type: str
      tags:
        description: Tags of the key pair (when imported) and of the group, besides C(Name) and C(Owner).
        type: dict
        default: {}
      creation_tags:
        description:
          - Tags set only when the key pair or the group is made (for example the date of the first launch);
            an existing key pair's or group's values are kept, and O(owners[].tags) win over them.
        type: dict
        default: {}
      instance_type:
        description: With O(launch=true), the instance type the owner's VM is to be launched as (checked).
        type: str
      image:
        description:
          - With O(launch=true), the image the owner's VM is to be launched from (checked when the owner
            has no instance yet), as M(labcloud.jupyter.owner_info) takes it.
        type: str
      image_family:
        description: With O(launch=true), the image's family (V(debian), V(ubuntu), V(amazon)); empty detects it.
        type: str
        default: ""
      root_size:
        description: With O(launch=true), the size in GiB of the root volume to launch with (checked).
        type: int
      elastic_ip:
        description:
          - With O(launch=true), whether the owner gets an Elastic IP. An owner without one counts against
            the account's Elastic IP quota, which is checked with the vCPU quotas before anything is made.
        type: bool
        default: true
  launch:
    description:
      - First check, for all owners and before anything is changed, everything
        M(labcloud.jupyter.owner_info) checks with its O(labcloud.jupyter.owner_info#module:launch)
        option (credentials, region, instance types, images, subnet, other owners' groups and keys), and
        whether the account's quotas leave room for the launch (the Elastic IPs of the region, the limit
        DescribeAccountAttributes reports less the addresses held, and the running On-Demand vCPUs of each
        instance family group from Service Quotas, where a quota that cannot be read is warned about, not
        checked). Any problem fails the run with all of them, says what to request or change, and changes nothing.
      - The result then also carries what that look found (RV(subnet), RV(instance_types), and for each
        owner its C(instance), C(address), C(image) and C(address_in_order)), so that one run prepares a
        launch.
    type: bool
    default: false
  subnet_id:
    description:
      - With O(launch=true), the subnet to launch in; empty takes, for each owner, a default subnet in a zone that
        offers the owner's instance type.
      - A given subnet whose zone does not offer an owner's instance type fails the run before anything is changed,
        naming the zones that offer it.
    type: str
  lookup_region:
    description: With O(launch=true), the region in which the credentials and the account's regions are checked.
    type: str
    default: us-east-1
  state:
    description:
      - V(present) makes sure each owner's key pair and group exist as described above.
      - V(absent) deletes each owner's group and key pair, each only when it is tagged C(Owner) with
        that owner (never another owner's, never an untagged one), retrying the group while the network
        interface of a terminated instance still holds it. The private key files are left alone.
      - With V(absent), only O(owners[].name) and O(owners[].owner) are used, and O(vpc_id) is optional.
    type: str
    choices: [present, absent]
    default: present
  port:
    description: The TCP port the rule opens.
    type: int
    default: 22
  rule_description:
    description: Description of the rule, set when the rule is authorized.
    type: str
    default: SSH for the JupyterLab tunnel
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
      - Reports exactly what would be imported, created, authorized, revoked and tagged, and changes nothing.
  diff_mode:
    details:
      - Before and after per owner (key pair present, group ID, ingress sources, tags).
author:
  - labcloud.jupyter developers (@labcloud)
notes:
  - The rule's description is set when it is authorized; a rule that only differs in its description is not changed.
  - Making a private key needs C(ssh-keygen) on the machine the module runs on.
seealso:
  - module: amazon.aws.ec2_key
  - module: amazon.aws.ec2_security_group
"""

EXAMPLES = r"""
- name: Key pairs and SSH-only groups for a class
  labcloud.jupyter.owner_access:
    region: eu-west-1
    vpc_id: vpc-0a1b2c3d4e5f67890
    owners:
      - name: jupyter-ada
        owner: ada
        public_key: "{{ lookup('ansible.builtin.file', '~/.labcloud/keys/jupyter-ada.pub') }}"
        ssh_cidr: 203.0.113.7/32
        tags:
          Project: ocean-models
      - name: jupyter-grace
        owner: grace
        public_key: "{{ lookup('ansible.builtin.file', '~/.labcloud/keys/jupyter-grace.pub') }}"
        ssh_cidr: 203.0.113.7/32
  register: access

- name: Grace's group
  ansible.builtin.debug:
    msg: "{{ (access.owners | selectattr('name', '==', 'jupyter-grace') | first).group_id }}"
"""

RETURN = r"""
subnet:
  description:
    - With O(launch=true), the launch's subnet (its VPC holds the groups) - O(subnet_id), or the default subnet of the
      first zone that offers every instance type to launch (else of the first zone). Each owner's own is
      RV(owners[].subnet).
  returned: when O(launch=true)
  type: dict
  sample: {"subnet_id": "subnet-0a1b", "vpc_id": "vpc-0c2d", "availability_zone": "us-west-2a"}
instance_types:
  description: With O(launch=true), the instance types asked for, with vCPUs, memory and architectures.
  returned: when O(launch=true)
  type: dict
  sample: {"t3.micro": {"vcpus": 2, "memory_mib": 1024, "architectures": ["x86_64"], "instance_storage_gb": 0}}
owners:
  description: What each owner has after the run, in the order of O(owners).
  returned: always
  type: list
  elements: dict
  contains:
    error:
      description: Why this owner's key pair or group could not be made (the module then fails).
      type: str
      returned: when this owner failed
      sample: "Security group jupyter-ada (sg-0a1b2c3d4e5f67890) exists in vpc-0a1b2c3d but is not tagged Owner=ada"
    name:
      description: Name of the key pair and of the group.
      type: str
      returned: always
      sample: jupyter-ada
    owner:
      description: The owner.
      type: str
      returned: always
      sample: ada
    changed:
      description: Whether anything of this owner was (or, in check mode, would be) changed.
      type: bool
      returned: always
      sample: true
    key_file_made:
      description: Whether this run made the private key O(owners[].key_file) (or would, in check mode).
      type: bool
      returned: always
      sample: true
    key_imported:
      description: Whether this run imported the key pair (or would, in check mode).
      type: bool
      returned: always
      sample: true
    key_fingerprint:
      description: Fingerprint of the key pair (null in check mode for a key pair still to import).
      type: str
      returned: always
      sample: "SHA256:3c2Xp0W8hYz8kN8f9dQ2b3D2Yy3nR5zW1Wm0m0Qy6mI"
    group_id:
      description: ID of the group (null in check mode for a group still to create).
      type: str
      returned: always
      sample: sg-0a1b2c3d4e5f67890
    group_created:
      description: Whether this run created the group (or would, in check mode).
      type: bool
      returned: always
      sample: true
    authorized:
      description: Ingress sources authorized by this run.
      type: list
      elements: str
      returned: always
      sample: ["tcp/22 from 203.0.113.7/32"]
    revoked:
      description: Ingress sources revoked by this run.
      type: list
      elements: str
      returned: always
      sample: ["tcp/22 from 0.0.0.0/0"]
    group_deleted:
      description: With O(state=absent), whether this run deleted the owner's group (or would, in check mode).
      type: bool
      returned: when O(state=absent)
    key_deleted:
      description: With O(state=absent), whether this run deleted the owner's key pair (or would, in check mode).
      type: bool
      returned: when O(state=absent)
    tags:
      description: Tags of the group after the run.
      type: dict
      returned: always
      sample: {"Name": "jupyter-ada", "Owner": "ada", "Project": "ocean-models"}
    instance:
      description:
        - With O(launch=true), the owner's one instance as M(labcloud.jupyter.owner_info) returns it, or V(null).
      type: dict
      returned: when O(launch=true)
    address:
      description: With O(launch=true), the owner's Elastic IP, or V(null).
      type: dict
      returned: when O(launch=true)
    image:
      description:
        - With O(launch=true), the image the owner's launch would use, or V(null) when the owner has an instance.
      type: dict
      returned: when O(launch=true)
    subnet:
      description:
        - With O(launch=true), the subnet the owner's instance is launched in, in a zone that offers the owner's
          instance type (C(DescribeInstanceTypeOfferings) by zone), or V(null) when the owner has an instance.
      type: dict
      returned: when O(launch=true)
      sample: {"subnet_id": "subnet-0a1b", "vpc_id": "vpc-0c2d", "availability_zone": "us-west-2b"}
    address_in_order:
      description:
        - With O(launch=true), whether the owner's Elastic IP is already associated with its instance and tagged.
      type: bool
      returned: when O(launch=true)
"""

import os
from typing import Any, Dict, List, Optional

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import LabcloudAWSError
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import call
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import create_tags
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import missing_tags
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import run_each
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import tag_specifications
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import OWNER_TAG
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import tag_dict
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import validate_identity
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import wanted_tags
from ansible_collections.labcloud.jupyter.plugins.module_utils.owner_lookup import look_up
from ansible_collections.labcloud.jupyter.plugins.module_utils.owner_lookup import public_half
from ansible_collections.labcloud.jupyter.plugins.module_utils.owner_lookup import survey
from ansible_collections.labcloud.jupyter.plugins.module_utils.ssh_ingress import cidr_list
from ansible_collections.labcloud.jupyter.plugins.module_utils.ssh_ingress import cidrs_problem
from ansible_collections.labcloud.jupyter.plugins.module_utils.ssh_ingress import describe_source
from ansible_collections.labcloud.jupyter.plugins.module_utils.ssh_ingress import permission_of
from ansible_collections.labcloud.jupyter.plugins.module_utils.ssh_ingress import plan_ingress
from ansible_collections.labcloud.jupyter.plugins.module_utils.ssh_ingress import sources_of
from ansible_collections.labcloud.jupyter.plugins.module_utils.ssh_ingress import wanted_sources

# A new group may not be visible to the next call yet (EC2 is eventually consistent): calls on a
# group retry this error too.
NEW_GROUP_CODES = ("InvalidGroup.NotFound",)


def validate(owners: List[Dict[str, Any]]) -> List[str]:
    """Return what is wrong with the owners' entries (nothing is looked up yet)."""
    errors = []
    names = [entry["name"] for entry in owners]
    for name in sorted({name for name in names if names.count(name) > 1}):
        errors.append(f"{name} is given more than once in owners")
    for entry in owners:
        # The same rules as for an address: the names go into EC2 filters, where * and ? are wildcards.
        errors += [
            f"{entry['name']}: {error}" for error in validate_identity(entry["owner"], entry["name"], entry["tags"])
        ]
        if not cidr_list(entry["ssh_cidr"]):
            errors.append(f"{entry['name']}: ssh_cidr is required when state is present")
            continue
        problem = cidrs_problem(entry["ssh_cidr"])
        if problem:
            errors.append(f"{entry['name']}: {problem}")
    return errors


def entry_tags(entry: Dict[str, Any]) -> Dict[str, str]:
    """Return the tags of an owner's key pair and group: the given ones plus Name and Owner."""
    return wanted_tags(entry["owner"], entry["name"], entry["tags"])


def creation_tags(entry: Dict[str, Any]) -> Dict[str, str]:
    """Return the tags a new key pair or group gets: the creation tags, then the kept ones over them."""
    return {**{str(k): str(v) for k, v in (entry.get("creation_tags") or {}).items()}, **entry_tags(entry)}


def refusals(module: AnsibleAWSModule, owners: List[Dict[str, Any]], found: Dict[str, Any]) -> List[str]:
    """Return why owners cannot be served as they are (checked for all before anything is changed)."""
    errors = []
    for entry in owners:
        name, owner = entry["name"], entry["owner"]
        group = found["groups"].get(name)
        if group is not None and tag_dict(group).get(OWNER_TAG) != owner:
            errors.append(
                f"Security group {name} ({group['GroupId']}) exists in {module.params['vpc_id']} but is not "
                f"tagged Owner={owner}: it was not made for this owner, so its rules are left alone"
            )
        key, key_file = found["keys"].get(name), entry["key_file"]
        if key is not None and key_file:
            local = public_half(module, key_file) if os.path.exists(key_file) else None
            if local is None:
                errors.append(
                    f"Key pair {name} exists but its private key {key_file} is not on this machine: copy it there "
                    "(mode 0400), or delete the key pair so that a new one is made"
                )
            elif key.get("PublicKey") and key["PublicKey"].split()[:2] != local.split()[:2]:
                errors.append(
                    f"Key pair {name} does not match the private key {key_file}: it is not this owner's key; "
                    "use the matching key file, or another owner name"
                )
        has_key = (entry["public_key"] or "").strip() or key_file
        if key is None and not module.check_mode and not has_key:
            errors.append(f"Key pair {name} does not exist and no public_key was given to import")
    return errors


def make_private_keys(module: AnsibleAWSModule, owners: List[Dict[str, Any]], found: Dict[str, Any]) -> List[str]:
    """Make the missing private keys of owners whose key pair is still to import; return the files made.

    Each key is made and set to 0400 before the next one, so an interruption leaves either no file
    or a finished key that the next run imports. The public half of each owner's file becomes the
    key to import.
    """
    made = []
    for entry in owners:
        key_file = entry["key_file"]
        if not key_file or entry["name"] in found["keys"]:
            continue
        if not os.path.exists(key_file):
            if module.check_mode:
                entry["key_file_made"] = True
                continue
            directory = os.path.dirname(key_file) or "."
            if not os.path.isdir(directory):
                os.makedirs(directory, mode=0o700)
            rc, _out, err = module.run_command(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", entry["name"], "-f", key_file]
            )
            if rc != 0:
                module.fail_json(msg=f"Could not make the private key {key_file} of {entry['owner']}: {err.strip()}")
            os.chmod(key_file, 0o400)
            entry["key_file_made"] = True
            made.append(key_file)
        public = public_half(module, key_file)
        if public is None:
            module.fail_json(msg=f"Could not read the private key {key_file} of {entry['owner']}")
        entry["public_key"] = public
    return made


def ensure_key(
    module: AnsibleAWSModule, client, entry: Dict[str, Any], key: Optional[Dict[str, Any]], done: List[str]
) -> Dict[str, Any]:
    """Import the owner's key pair when it does not exist; an existing one is left as it is."""
    name = entry["name"]
    if key is not None:
        return {"key_imported": False, "key_fingerprint": key.get("KeyFingerprint")}
    if module.check_mode:
        return {"key_imported": True, "key_fingerprint": None}
    imported = call(
        client.import_key_pair,
        f"Could not import the public key of {entry['owner']} as key pair {name}",
        KeyName=name,
        PublicKeyMaterial=entry["public_key"].strip().encode(),
        TagSpecifications=tag_specifications("key-pair", creation_tags(entry)),
    )
    done.append(f"imported key pair {name}")
    return {"key_imported": True, "key_fingerprint": imported.get("KeyFingerprint")}


def create_group(module: AnsibleAWSModule, client, entry: Dict[str, Any], done: List[str]) -> Optional[str]:
    """Create the owner's group with its tags and return its ID (None in check mode)."""
    if module.check_mode:
        return None
    name, vpc_id = entry["name"], module.params["vpc_id"]
    description = entry["description"] or f"SSH to the JupyterLab VM of {entry['owner']}"
    group_id = call(
        client.create_security_group,
        f"Could not create security group {name} in {vpc_id}",
        GroupName=name,
        Description=description,
        VpcId=vpc_id,
        TagSpecifications=tag_specifications("security-group", creation_tags(entry)),
    )["GroupId"]
    done.append(f"created security group {name} ({group_id})")
    return group_id


def apply_group_changes(
    module: AnsibleAWSModule, client, label: str, group_id: str, plan: Dict[str, Any], done: List[str]
) -> None:
    """Revoke, authorize and tag as planned, noting each step in done once it succeeded."""
    if plan["revoke"]:
        revoked = ", ".join(map(describe_source, plan["revoke"]))
        call(
            client.revoke_security_group_ingress,
            f"Could not revoke {revoked} of {label}",
            retry_codes=NEW_GROUP_CODES,
            GroupId=group_id,
            IpPermissions=[permission_of(source) for source in plan["revoke"]],
        )
        done.append(f"revoked {revoked} of {label}")
    for source in plan["add"]:
        call(
            client.authorize_security_group_ingress,
            f"Could not allow {describe_source(source)} into {label}",
            retry_codes=NEW_GROUP_CODES,
            GroupId=group_id,
            IpPermissions=[permission_of(source, module.params["rule_description"])],
        )
        done.append(f"allowed {describe_source(source)} into {label}")
    if plan["tags"]:
        create_tags(client, [group_id], plan["tags"], f"Could not tag {label}", retry_codes=NEW_GROUP_CODES)
        done.append(f"tagged {label}")


def ensure_group(
    module: AnsibleAWSModule, client, entry: Dict[str, Any], group: Optional[Dict[str, Any]], done: List[str]
) -> Dict[str, Any]:
    """Create the owner's group when absent, leave it only the SSH source, and add missing tags."""
    name = entry["name"]
    wanted = wanted_sources(entry["ssh_cidr"], module.params["port"])
    current = group or {"GroupId": None, "IpPermissions": [], "Tags": []}
    add, revoke = plan_ingress(current.get("IpPermissions") or [], wanted)
    before_tags = tag_dict(current)
    group_id = current["GroupId"] if group else create_group(module, client, entry, done)
    # A new group got its tags when it was created.
    plan = {"add": add, "revoke": revoke, "tags": missing_tags(before_tags, entry_tags(entry)) if group else {}}
    if not module.check_mode:
        apply_group_changes(module, client, f"security group {name} ({group_id})", group_id, plan, done)
    return {
        "group_id": group_id,
        "group_created": group is None,
        "authorized": [describe_source(source) for source in add],
        "revoked": [describe_source(source) for source in revoke],
        "tags": {**(before_tags if group else creation_tags(entry)), **entry_tags(entry)},
        "_before": {
            "group_id": current["GroupId"],
            "ingress": [describe_source(source) for source in sources_of(current.get("IpPermissions") or [])],
            "tags": before_tags,
        },
        "_after_ingress": [describe_source(source) for source in wanted],
    }


def ensure_owner(module: AnsibleAWSModule, client, entry: Dict[str, Any], found: Dict[str, Any]) -> Dict[str, Any]:
    """Make sure one owner has its key pair and its group; return what it has.

    A failure raises LabcloudAWSError with kwargs["done"], the changes made before it.
    """
    done: List[str] = []
    try:
        key_state = ensure_key(module, client, entry, found["keys"].get(entry["name"]), done)
        group_state = ensure_group(module, client, entry, found["groups"].get(entry["name"]), done)
    except LabcloudAWSError as e:
        e.kwargs["done"] = done
        raise
    result: Dict[str, Any] = {
        "name": entry["name"],
        "owner": entry["owner"],
        "key_file_made": entry.get("key_file_made", False),
        **key_state,
        **group_state,
    }
    result["changed"] = bool(
        result["key_file_made"]
        or result["key_imported"]
        or result["group_created"]
        or result["authorized"]
        or result["revoked"]
        or result["tags"] != result["_before"]["tags"]
    )
    return result


def diff_of(results: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """Return the before and after of every owner's key pair and group."""
    before, after = {}, {}
    for result in results:
        before[result["name"]] = dict(result["_before"], key_pair=not result["key_imported"])
        after[result["name"]] = {
            "group_id": result["group_id"],
            "ingress": result["_after_ingress"],
            "tags": result["tags"],
            "key_pair": True,
        }
    return {"before": before, "after": after}


# A terminated instance's network interface keeps its group for a while after the instance is gone.
GROUP_IN_USE_CODES = ("DependencyViolation", "InvalidGroup.InUse")


def remove_owner(module: AnsibleAWSModule, client, entry: Dict[str, Any], found: Dict[str, Any]) -> Dict[str, Any]:
    """Delete the owner's own group and key pair (tagged for the owner); others are left alone."""
    name, owner = entry["name"], entry["owner"]
    group, key = found["groups"].get(name), found["keys"].get(name)
    result = {"name": name, "owner": owner, "group_id": None, "group_deleted": False, "key_deleted": False}
    if group is not None and tag_dict(group).get(OWNER_TAG) == owner:
        result.update(group_id=group["GroupId"], group_deleted=True)
        if not module.check_mode:
            call(
                client.delete_security_group,
                f"Could not delete security group {name} ({group['GroupId']}) of {owner}",
                retry_codes=GROUP_IN_USE_CODES,
                GroupId=group["GroupId"],
            )
    if key is not None and tag_dict(key).get(OWNER_TAG) == owner:
        result["key_deleted"] = True
        if not module.check_mode:
            call(client.delete_key_pair, f"Could not delete key pair {name} of {owner}", KeyName=name)
    result["changed"] = result["group_deleted"] or result["key_deleted"]
    return result


def remove_all(module: AnsibleAWSModule, owners: List[Dict[str, Any]]) -> None:
    """Delete every owner's group and key pair, and exit."""
    errors = [error for entry in owners for error in validate_identity(entry["owner"], entry["name"], entry["tags"])]
    if errors:
        module.fail_json(msg="; ".join(errors))
    client = module.client("ec2")
    try:
        found = look_up(client, owners, module.params["vpc_id"], kinds=("keys", "groups"))
    except LabcloudAWSError as e:
        module.fail_json_aws_error(e)
    outcomes = run_each(lambda entry: remove_owner(module, client, entry, found), owners)
    results = [
        outcome.result
        or {"name": entry["name"], "owner": entry["owner"], "changed": False, "error": str(outcome.error)}
        for entry, outcome in zip(owners, outcomes)  # noqa: B905 (modules keep Python 3.6 syntax)
    ]
    failures = [result["error"] for result in results if "error" in result]
    changed = any(result["changed"] for result in results)
    if failures:
        module.fail_json(msg="; ".join(failures), owners=results, changed=changed)
    module.exit_json(changed=changed, owners=results)


def main() -> None:
    """Run the module."""
    argument_spec = dict(
        vpc_id=dict(type="str"),
        launch=dict(type="bool", default=False),
        subnet_id=dict(type="str"),
        lookup_region=dict(type="str", default="us-east-1"),
        owners=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(
                name=dict(type="str", required=True),
                owner=dict(type="str", required=True),
                public_key=dict(type="str", no_log=False),
                key_file=dict(type="path"),
                instance_type=dict(type="str"),
                image=dict(type="str"),
                image_family=dict(type="str", default=""),
                root_size=dict(type="int"),
                elastic_ip=dict(type="bool", default=True),
                ssh_cidr=dict(type="list", elements="str"),
                description=dict(type="str"),
                tags=dict(type="dict", default={}),
                creation_tags=dict(type="dict", default={}),
            ),
        ),
        port=dict(type="int", default=22),
        rule_description=dict(type="str", default="SSH for the JupyterLab tunnel"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec, supports_check_mode=True, mutually_exclusive=[("launch", "state")]
    )
    owners = module.params["owners"]
    if module.params["state"] == "absent":
        remove_all(module, owners)
    if not module.params["launch"] and not module.params["vpc_id"]:
        module.fail_json(msg="vpc_id is required unless launch is true (or state is absent)")
    errors = validate(owners)
    if not 1 <= module.params["port"] <= 65535:
        errors.append(f"port {module.params['port']} is not a TCP port (1-65535)")
    if errors:
        module.fail_json(msg="; ".join(errors))
    if not owners:
        module.exit_json(changed=False, owners=[])

    info: Dict[str, Any] = {}
    if module.params["launch"]:
        info = survey(module, owners, launch=True, subnet_id=module.params["subnet_id"], vpc_id=module.params["vpc_id"])
        if info["problems"]:
            module.fail_json(msg=" ".join(info["problems"]), problems=info["problems"], changed=False)
        module.params["vpc_id"] = module.params["vpc_id"] or info["subnet"]["vpc_id"]
        client, found = info["client"], info["found"]
    else:
        client = module.client("ec2")
        try:
            found = look_up(client, owners, module.params["vpc_id"], kinds=("keys", "groups"))
        except LabcloudAWSError as e:
            module.fail_json_aws_error(e)
    errors = refusals(module, owners, found)
    if errors:
        module.fail_json(msg="; ".join(errors) + "; nothing was changed")
    make_private_keys(module, owners, found)

    outcomes = run_each(lambda entry: ensure_owner(module, client, entry, found), owners)
    results, failures = [], []
    for entry, outcome in zip(owners, outcomes):  # noqa: B905 (modules keep Python 3.6 syntax)
        if outcome.error:
            done = outcome.error.kwargs.get("done", [])
            failures.append(str(outcome.error) + (f" (after it {', '.join(done)})" if done else ""))
            results.append(
                {"name": entry["name"], "owner": entry["owner"], "changed": bool(done), "error": str(outcome.error)}
            )
        else:
            results.append(outcome.result)
    public = [{key: value for key, value in result.items() if not key.startswith("_")} for result in results]
    if info:
        looked = {entry["name"]: entry for entry in info["owners"]}
        for result in public:
            seen = looked.get(result["name"], {})
            result.update(
                {key: seen.get(key) for key in ("instance", "address", "image", "address_in_order", "subnet")}
            )
    changed = any(result["changed"] for result in results)
    if failures:
        served = [result["name"] for result in results if "error" not in result]
        tail = f"; done for {', '.join(served)}" if served else ""
        module.fail_json(msg="; ".join(failures) + tail + "; run again once fixed", owners=public, changed=changed)
    extra = {"diff": diff_of(results)} if module._diff else {}
    if info:
        extra.update(subnet=info["subnet"], instance_types=info["instance_types"], account=info["account"])
    module.exit_json(changed=changed, owners=public, **extra)


if __name__ == "__main__":
    main()
