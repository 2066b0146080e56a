# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure logic of labcloud.jupyter.elastic_ip: who owns an address, and which tags it needs.

labcloud.jupyter.owner_access uses the same identity rules and tags for key pairs and groups.

An address belongs to an owner when its ``Owner`` and ``Name`` tags equal the owner's values
exactly. Nothing here talks to AWS, so the rules can be unit-tested on their own.
"""

from typing import Any, Dict, List, Optional

OWNER_TAG = "Owner"
NAME_TAG = "Name"
# EC2 limits tag values to 256 characters.
MAX_TAG_VALUE = 256
# DescribeAddresses filters treat these as wildcards: "al*" would match alice's address.
WILDCARDS = ("*", "?")


def default_name(owner: str) -> str:
    """Return the Name tag an owner's address gets when no name is given."""
    return f"jupyter-{owner}"


def _tag_value_error(option: str, value: str) -> Optional[str]:
    """Return why value cannot identify an address in a tag, or None when it can."""
    if not value or not value.strip():
        return f"{option} must not be empty"
    if value != value.strip():
        return f'{option}: "{value}" has leading or trailing spaces'
    if len(value) > MAX_TAG_VALUE:
        return f"{option} is {len(value)} characters long; EC2 tag values hold at most {MAX_TAG_VALUE}"
    if value.lower().startswith("aws:"):
        return f'{option}: "{value}" starts with "aws:", which AWS reserves'
    for wildcard in WILDCARDS:
        if wildcard in value:
            return f'{option}: "{value}" contains "{wildcard}", which EC2 filters treat as a wildcard'
    return None


def validate_identity(owner: str, name: str, tags: Optional[Dict[str, Any]]) -> List[str]:
    """Return one message per problem with owner, name and extra tags (empty when all are valid)."""
    errors = [error for error in (_tag_value_error("owner", owner), _tag_value_error("name", name)) if error]
    identity = {OWNER_TAG: owner, NAME_TAG: name}
    for key, value in (tags or {}).items():
        if key in identity and str(value) != identity[key]:
            option = "owner" if key == OWNER_TAG else "name"
            errors.append(f'tags: "{key}" is set by the {option} option and cannot be "{value}"')
        if key.lower().startswith("aws:"):
            errors.append(f'tags: "{key}" starts with "aws:", which AWS reserves')
    return errors


def identity_tags(owner: str, name: str) -> Dict[str, str]:
    """Return the tags that identify the owner's address."""
    return {NAME_TAG: name, OWNER_TAG: owner}


def wanted_tags(owner: str, name: str, tags: Optional[Dict[str, Any]]) -> Dict[str, str]:
    """Return every tag the owner's address must carry: the extra tags plus Name and Owner."""
    wanted = {str(key): str(value) for key, value in (tags or {}).items()}
    wanted.update(identity_tags(owner, name))
    return wanted


def lookup_filters(owner: str, name: str) -> List[Dict[str, Any]]:
    """Return the DescribeAddresses filters that find the owner's VPC addresses."""
    filters = [{"Name": "domain", "Values": ["vpc"]}]
    filters += [{"Name": f"tag:{key}", "Values": [value]} for key, value in identity_tags(owner, name).items()]
    return filters


def tag_dict(resource: Dict[str, Any]) -> Dict[str, str]:
    """Return the Tags list of an EC2 resource description as a dict."""
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags") or []}


def is_owned_by(address: Dict[str, Any], owner: str, name: str) -> bool:
    """Return True when the address carries exactly this owner's Owner and Name tags."""
    tags = tag_dict(address)
    return tags.get(OWNER_TAG) == owner and tags.get(NAME_TAG) == name


def owned_addresses(addresses: List[Dict[str, Any]], owner: str, name: str) -> List[Dict[str, Any]]:
    """Keep only the addresses whose tags match exactly (a server-side filter is not trusted alone)."""
    return [address for address in addresses if is_owned_by(address, owner, name)]


def missing_tags(current: Dict[str, str], wanted: Dict[str, str]) -> Dict[str, str]:
    """Return the wanted tags that are absent or differ; tags not wanted are left alone."""
    return {key: value for key, value in wanted.items() if current.get(key) != value}


def instance_owner_error(instance: Dict[str, Any], owner: str) -> Optional[str]:
    """Return a message when the instance is tagged for another owner, or None."""
    instance_owner = tag_dict(instance).get(OWNER_TAG)
    if instance_owner is not None and instance_owner != owner:
        return (
            f"Instance {instance['InstanceId']} belongs to owner {instance_owner} (tag {OWNER_TAG}), "
            f"not to {owner}; an owner's address is only associated with that owner's instances"
        )
    return None


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
