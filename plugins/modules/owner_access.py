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
    three seconds after each group it creates.
options:
  vpc_id:
    description: The VPC the security groups are in.
    type: str
    required: true
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
          - Required when the key pair does not exist (in check mode, where the import is only
            predicted, it may still be missing); ignored when the key pair exists.
        type: str
      ssh_cidr:
        description: The only source network allowed to reach O(port), IPv4 or IPv6 (a bare address means /32 or /128).
        type: str
        required: true
      description:
        description: Description of the group when it is created (EC2 cannot change it later).
        type: str
      tags:
        description: Tags of the key pair (when imported) and of the group, besides C(Name) and C(Owner).
        type: dict
        default: {}
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
    tags:
      description: Tags of the group after the run.
      type: dict
      returned: always
      sample: {"Name": "jupyter-ada", "Owner": "ada", "Project": "ocean-models"}
"""

from typing import Any, Dict, List, Optional

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import LabcloudAWSError
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import call
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import create_tags
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import describe_all
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import missing_tags
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import run_each
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import tag_specifications
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import OWNER_TAG
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import tag_dict
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import validate_identity
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import wanted_tags
from ansible_collections.labcloud.jupyter.plugins.module_utils.ssh_ingress import describe_source
from ansible_collections.labcloud.jupyter.plugins.module_utils.ssh_ingress import normalize_cidr
from ansible_collections.labcloud.jupyter.plugins.module_utils.ssh_ingress import permission_of
from ansible_collections.labcloud.jupyter.plugins.module_utils.ssh_ingress import plan_ingress
from ansible_collections.labcloud.jupyter.plugins.module_utils.ssh_ingress import sources_of
from ansible_collections.labcloud.jupyter.plugins.module_utils.ssh_ingress import wanted_source

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
        try:
            normalize_cidr(entry["ssh_cidr"])
        except ValueError:
            errors.append(f"{entry['name']}: ssh_cidr {entry['ssh_cidr']!r} is not an IP address or CIDR")
    return errors


def entry_tags(entry: Dict[str, Any]) -> Dict[str, str]:
    """Return the tags of an owner's key pair and group: the given ones plus Name and Owner."""
    return wanted_tags(entry["owner"], entry["name"], entry["tags"])


def look_up(client, vpc_id: str, names: List[str]) -> Dict[str, Dict[str, Dict[str, Any]]]:
    """Return the existing key pairs and groups of all owners by name, in two calls."""
    keys = describe_all(
        client,
        "describe_key_pairs",
        "KeyPairs",
        f"Could not look up the key pairs {', '.join(names)}",
        # A filter, so that missing names are no error.
        Filters=[{"Name": "key-name", "Values": names}],
    )
    groups = describe_all(
        client,
        "describe_security_groups",
        "SecurityGroups",
        f"Could not look up the security groups {', '.join(names)} in {vpc_id}",
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": names}],
    )
    return {
        "keys": {key["KeyName"]: key for key in keys},
        "groups": {group["GroupName"]: group for group in groups if group.get("VpcId") == vpc_id},
    }


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
        if name not in found["keys"] and not module.check_mode and not (entry["public_key"] or "").strip():
            errors.append(f"Key pair {name} does not exist and no public_key was given to import")
    return errors


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
        TagSpecifications=tag_specifications("key-pair", entry_tags(entry)),
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
        TagSpecifications=tag_specifications("security-group", entry_tags(entry)),
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
    wanted = wanted_source(normalize_cidr(entry["ssh_cidr"]), module.params["port"])
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
        "tags": {**before_tags, **entry_tags(entry)},
        "_before": {
            "group_id": current["GroupId"],
            "ingress": [describe_source(source) for source in sources_of(current.get("IpPermissions") or [])],
            "tags": before_tags,
        },
        "_after_ingress": [describe_source(wanted)],
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
    result: Dict[str, Any] = {"name": entry["name"], "owner": entry["owner"], **key_state, **group_state}
    result["changed"] = bool(
        result["key_imported"]
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


def main() -> None:
    """Run the module."""
    argument_spec = dict(
        vpc_id=dict(type="str", required=True),
        owners=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(
                name=dict(type="str", required=True),
                owner=dict(type="str", required=True),
                public_key=dict(type="str", no_log=False),
                ssh_cidr=dict(type="str", required=True),
                description=dict(type="str"),
                tags=dict(type="dict", default={}),
            ),
        ),
        port=dict(type="int", default=22),
        rule_description=dict(type="str", default="SSH for the JupyterLab tunnel"),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    owners = module.params["owners"]
    errors = validate(owners)
    if not 1 <= module.params["port"] <= 65535:
        errors.append(f"port {module.params['port']} is not a TCP port (1-65535)")
    if errors:
        module.fail_json(msg="; ".join(errors))
    if not owners:
        module.exit_json(changed=False, owners=[])

    client = module.client("ec2")
    try:
        found = look_up(client, module.params["vpc_id"], [entry["name"] for entry in owners])
    except LabcloudAWSError as e:
        module.fail_json_aws_error(e)
    errors = refusals(module, owners, found)
    if errors:
        module.fail_json(msg="; ".join(errors) + "; nothing was changed")

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
    changed = any(result["changed"] for result in results)
    if failures:
        served = [result["name"] for result in results if "error" not in result]
        tail = f"; done for {', '.join(served)}" if served else ""
        module.fail_json(msg="; ".join(failures) + tail + "; run again once fixed", owners=public, changed=changed)
    extra = {"diff": diff_of(results)} if module._diff else {}
    module.exit_json(changed=changed, owners=public, **extra)


if __name__ == "__main__":
    main()
