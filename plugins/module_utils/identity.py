# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The owner identity of labcloud.jupyter: what an owner's resources are called and tagged.

An owner (a researcher, a student of a class) has one instance, key pair, security group and
Elastic IP, all named ``jupyter-<owner>`` and tagged ``Name`` and ``Owner`` (the instance also
``ManagedBy``). The modules use these rules directly; the filter, test and lookup plugins
``labcloud.jupyter.identity`` hand them to roles and playbooks, so that no rule is written twice.

A resource belongs to an owner when its ``Owner`` and ``Name`` tags equal the owner's values
exactly. Nothing here talks to AWS, so the rules can be unit-tested on their own.
"""

import os
import re
from typing import Any, Dict, List, Mapping, Optional

# Value of the ManagedBy tag of the instances this collection launches (the inventories group by it).
MANAGED_BY = "labcloud.jupyter"

NAME_TAG = "Name"
OWNER_TAG = "Owner"
MANAGED_BY_TAG = "ManagedBy"
# The login user and the image family of an instance, set when it is launched.
LOGIN_USER_TAG = "LoginUser"
IMAGE_FAMILY_TAG = "ImageFamily"
# What an image of an owner's VM carries besides Name, Owner, ManagedBy and its ImageFamily and
# LoginUser: its project and version (its name is made of them), the instance it was made from, a
# digest of its environment's package list, and the outcome of its verification.
PROJECT_TAG = "Project"
VERSION_TAG = "Version"
SOURCE_INSTANCE_TAG = "SourceInstance"
PACKAGES_TAG = "PackagesDigest"
VERIFIED_TAG = "Verified"
# A copy of an image made for sharing (under a customer-managed key) names its source image.
COPY_OF_TAG = "CopyOf"
# An instance carrying this tag key (any value) is left running by the daily stop.
DAILY_STOP_OPT_OUT_TAG = "DailyStopOptOut"
# The tag keys above by the names playbooks use for them.
TAG_KEYS = {
    "name": NAME_TAG,
    "owner": OWNER_TAG,
    "managed_by": MANAGED_BY_TAG,
    "login_user": LOGIN_USER_TAG,
    "image_family": IMAGE_FAMILY_TAG,
    "project": PROJECT_TAG,
    "version": VERSION_TAG,
    "source_instance": SOURCE_INSTANCE_TAG,
    "packages": PACKAGES_TAG,
    "verified": VERIFIED_TAG,
    "copy_of": COPY_OF_TAG,
}

# An owner's name goes into resource names, file names and ssh configuration, so it is kept plain.
OWNER_PATTERN = r"^[a-z][a-z0-9-]{1,31}$"
OWNER_RULE = "2 to 32 lower-case letters, digits and hyphens, starting with a letter"

# The default user cloud-init makes on the images of each family.
LOGIN_USERS = {"debian": "admin", "ubuntu": "ubuntu", "amazon": "ec2-user"}
# How an image's name or description tells its family (case-insensitive), tried in this order.
FAMILY_PATTERNS = (
    ("debian", r"debian"),
    ("ubuntu", r"ubuntu"),
    ("amazon", r"amzn|amazon linux|al20[0-9]{2}"),
)
# A Linux user name as useradd takes it by default: nothing ssh could read as an option or a host.
LOGIN_USER_PATTERN = r"^[a-z_][a-z0-9_-]{0,31}$"
LOGIN_USER_RULE = "1 to 32 lower-case letters, digits, underscores and hyphens, starting with a letter or underscore"

# How one reaches an owner's JupyterLab, the tutorial's way: where the owners' private keys are kept
# on the user's computer, the port JupyterLab listens on inside the VM (on 127.0.0.1), and the
# first local port of the SSH tunnel (a roster's owners get the next ones).
KEY_DIR = "~/.labcloud/keys"
JUPYTER_PORT = 8887
LOCAL_PORT = 7005
# The command on the VM that prints JupyterLab's URL with its token (for root and the Jupyter user).
URL_COMMAND = "/usr/local/bin/jupyterlab-url"

# EC2 limits tag values to 256 characters.
MAX_TAG_VALUE = 256
# DescribeAddresses filters treat these as wildcards: "al*" would match alice's address.
WILDCARDS = ("*", "?")


def _shown(value: Any) -> str:
    """Return a value as a message quotes it: text in quotes, anything else as Python writes it."""
    return repr(str(value)) if isinstance(value, str) else repr(value)


def owner_error(owner: Any) -> Optional[str]:
    """Return why owner cannot name an owner's resources, or None when it can."""
    if isinstance(owner, str) and re.fullmatch(OWNER_PATTERN, owner):
        return None
    return f"Invalid owner {_shown(owner)}: use {OWNER_RULE} (for example hedylamarr)"


def resource_name(owner: str) -> str:
    """Return the name of the owner's instance, key pair, security group and Elastic IP."""
    return f"jupyter-{owner}"


# An image's project and version go into its name: plain words, as in jupyter-ada-ocean-2026-12-01.
IMAGE_PART_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$"
IMAGE_PART_RULE = "1 to 40 letters, digits, dots, underscores and hyphens, starting with a letter or digit"


def image_name(owner: str, project: str, version: str) -> str:
    """Return the name of an image of the owner's VM for a project and version (ValueError when invalid)."""
    error = owner_error(owner)
    if error:
        raise ValueError(error)
    for part, value in (("project", project), ("version", version)):
        if not isinstance(value, str) or not re.fullmatch(IMAGE_PART_PATTERN, value):
            raise ValueError(f"Invalid image {part} {_shown(value)}: use {IMAGE_PART_RULE}")
    return f"{resource_name(owner)}-{project}-{version}"


def key_file_name(owner: str) -> str:
    """Return the file name of the owner's private key."""
    return f"{resource_name(owner)}.pem"


def identity_tags(owner: str, name: str) -> Dict[str, str]:
    """Return the tags that identify a resource of the owner."""
    return {NAME_TAG: name, OWNER_TAG: owner}


def identity(owner: str, key_dir: Optional[str] = None) -> Dict[str, Any]:
    """Return the names, tags and instance filters of the owner's resources (ValueError for a bad owner)."""
    error = owner_error(owner)
    if error:
        raise ValueError(error)
    owner = str(owner)
    name = resource_name(owner)
    tags = dict(identity_tags(owner, name), **{MANAGED_BY_TAG: MANAGED_BY})
    result = {
        "owner": owner,
        "name": name,
        "key_pair": name,
        "security_group": name,
        "address": name,
        "tags": tags,
        "instance_filters": {f"tag:{key}": value for key, value in tags.items()},
    }
    if key_dir:
        result["key_file"] = os.path.join(os.path.expanduser(str(key_dir)), key_file_name(owner))
    return result


def tag_dict(resource: Mapping[str, Any]) -> Dict[str, str]:
    """Return the Tags list of an EC2 resource description as a dict."""
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags") or []}


def is_managed(tags: Any) -> bool:
    """Return True when the tags mark a resource this collection manages (ManagedBy=labcloud.jupyter)."""
    return isinstance(tags, Mapping) and tags.get(MANAGED_BY_TAG) == MANAGED_BY


def login_user(family: Any) -> Optional[str]:
    """Return the login user of an image family, or None for an unknown family."""
    return LOGIN_USERS.get(family) if isinstance(family, str) else None


def image_family(name: str, description: str = "", tags: Optional[Mapping[str, Any]] = None) -> str:
    """Return an image's family: its known ImageFamily tag, else what its name and description say, else ""."""
    tagged = (tags or {}).get(IMAGE_FAMILY_TAG)
    if login_user(tagged):
        return str(tagged)
    text = f"{name or ''} {description or ''}"
    for family, pattern in FAMILY_PATTERNS:
        if re.search(pattern, text, re.IGNORECASE):
            return family
    return ""


def is_login_user(value: Any) -> bool:
    """Return True when value is a user name that is safe to hand to ssh."""
    return isinstance(value, str) and re.fullmatch(LOGIN_USER_PATTERN, value) is not None


def user_name_error(value: Any, what: str = "user name") -> Optional[str]:
    """Return why value cannot be a Linux user name (what names the setting), or None when it can."""
    if is_login_user(value):
        return None
    return f"Invalid {what} {_shown(value)}: use {LOGIN_USER_RULE}"


def login_user_of(tags: Optional[Mapping[str, Any]]) -> str:
    """Return an instance's login user: its LoginUser tag, else its ImageFamily's user; ValueError otherwise.

    A LoginUser tag that is not a user name is refused, not passed over: anyone who may tag the
    instance could otherwise put options (-oProxyCommand=...) or lines into ssh's arguments and
    configuration.
    """
    tags = tags or {}
    tagged = tags.get(LOGIN_USER_TAG)
    if tagged is not None:
        if is_login_user(tagged):
            return str(tagged)
        raise ValueError(
            f"Refusing the instance's {LOGIN_USER_TAG} tag {_shown(tagged)}: it is not a user name "
            f"({LOGIN_USER_RULE}), and it would reach ssh's command line and configuration. "
            f"Set the tag to the VM's login user (one of {', '.join(sorted(LOGIN_USERS.values()))} "
            f"on the collection's image families), or remove it to use the {IMAGE_FAMILY_TAG} tag's user"
        )
    family = tags.get(IMAGE_FAMILY_TAG)
    if login_user(family):
        return LOGIN_USERS[family]
    family_problem = (
        f"its {IMAGE_FAMILY_TAG} tag is missing"
        if family is None
        else f"its {IMAGE_FAMILY_TAG} tag {_shown(family)} is not a known family"
    )
    raise ValueError(
        f"Cannot tell the instance's login user: its {LOGIN_USER_TAG} tag is missing, and {family_problem} "
        f"(one of {', '.join(sorted(LOGIN_USERS))})"
    )


def _tag_value_error(option: str, value: str) -> Optional[str]:
    """Return why value cannot identify a resource in a tag, or None when it can."""
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
    identity_values = identity_tags(owner, name)
    for key, value in (tags or {}).items():
        if key in identity_values and str(value) != identity_values[key]:
            option = "owner" if key == OWNER_TAG else "name"
            errors.append(f'tags: "{key}" is set by the {option} option and cannot be "{value}"')
        if key.lower().startswith("aws:"):
            errors.append(f'tags: "{key}" starts with "aws:", which AWS reserves')
    return errors


def wanted_tags(owner: str, name: str, tags: Optional[Dict[str, Any]]) -> Dict[str, str]:
    """Return every tag the owner's resource must carry: the extra tags plus Name and Owner."""
    wanted = {str(key): str(value) for key, value in (tags or {}).items()}
    wanted.update(identity_tags(owner, name))
    return wanted


def is_owned_by(resource: Mapping[str, Any], owner: str, name: str) -> bool:
    """Return True when the resource carries exactly this owner's Owner and Name tags."""
    tags = tag_dict(resource)
    return tags.get(OWNER_TAG) == owner and tags.get(NAME_TAG) == name


def owned_addresses(addresses: List[Dict[str, Any]], owner: str, name: str) -> List[Dict[str, Any]]:
    """Keep only the addresses whose tags match exactly (a server-side filter is not trusted alone)."""
    return [address for address in addresses if is_owned_by(address, owner, name)]


def instance_owner_error(instance: Mapping[str, Any], owner: str) -> Optional[str]:
    """Return a message when the instance is tagged for another owner, or None."""
    instance_owner = tag_dict(instance).get(OWNER_TAG)
    if instance_owner is not None and instance_owner != owner:
        return (
            f"Instance {instance['InstanceId']} belongs to owner {instance_owner} (tag {OWNER_TAG}), "
            f"not to {owner}; an owner's address is only associated with that owner's instances"
        )
    return None
