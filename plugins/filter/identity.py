# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters identity, owner_problems, login_user, user_name_problems, image_family and image_name: the owner identity.

They hand the rules of plugins/module_utils/identity.py to roles and playbooks, which then state
none of them again. This file holds several filters, so each one's documentation is in the file
of its name beside it (identity.yml, owner_problems.yml, login_user.yml, user_name_problems.yml,
image_family.yml, image_name.yml), the way ansible-doc finds it.
"""

from typing import Any, Dict, List, Mapping, Optional

from ansible.errors import AnsibleFilterError

from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import identity
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import image_family
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import image_name
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import login_user_of
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import owner_error
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import user_name_error


def owner_identity(owner: Any, key_dir: Optional[str] = None) -> Dict[str, Any]:
    """Return the names, tags and instance filters of the owner's resources (and key file with key_dir)."""
    try:
        return identity(owner, key_dir)
    except ValueError as e:
        raise AnsibleFilterError(str(e)) from e


def roster_owner(entry: Any) -> Optional[str]:
    """Return the owner a roster entry names (an owner's name or a dictionary with an owner), or None."""
    if isinstance(entry, str):
        return entry
    if isinstance(entry, Mapping) and "owner" in entry:
        return entry["owner"]
    return None


def owner_problems(roster: Any) -> List[str]:
    """Return one message per invalid, repeated or malformed roster entry (empty when the roster is fine)."""
    if not isinstance(roster, (list, tuple)):
        return [f"A roster is a list of owners, not {type(roster).__name__} {roster!r}"]
    problems = []
    seen = set()
    for number, entry in enumerate(roster, start=1):
        owner = roster_owner(entry)
        if owner is None:
            problems.append(
                f"Roster entry {number} is neither an owner's name nor a dictionary with an 'owner' key: {entry!r}"
            )
            continue
        error = owner_error(owner)
        if error:
            problems.append(f"Roster entry {number}: {error}")
        elif owner in seen:
            problems.append(f"Roster entry {number}: owner {owner!r} is listed more than once")
        else:
            seen.add(owner)
    return problems


def instance_login_user(tags: Any) -> str:
    """Return the login user of an instance from its tags (LoginUser, else ImageFamily), refusing unsafe names."""
    if not isinstance(tags, Mapping):
        raise AnsibleFilterError(f"login_user takes the tags of an instance (a dictionary), not {tags!r}")
    try:
        return login_user_of(tags)
    except ValueError as e:
        raise AnsibleFilterError(str(e)) from e


def user_name_problems(names: Any, setting: str = "user name") -> List[str]:
    """Return one message per value of names (a name or a list of names) that is not a Linux user name."""
    values = names if isinstance(names, (list, tuple)) else [names]
    return [error for error in (user_name_error(value, setting) for value in values) if error]


def ami_family(image: Any) -> str:
    """Return the family of an image as amazon.aws.ec2_ami_info describes it (name, description, tags), or ""."""
    if not isinstance(image, Mapping):
        raise AnsibleFilterError(
            f"image_family takes an image as ec2_ami_info returns it (a dictionary), not {image!r}"
        )
    return image_family(image.get("name") or "", image.get("description") or "", image.get("tags"))


def owner_image_name(owner: Any, project: Any, version: Any) -> str:
    """Return the name of an image of the owner's VM for a project and version, refusing invalid parts."""
    try:
        return image_name(owner, project, version)
    except ValueError as e:
        raise AnsibleFilterError(str(e)) from e


class FilterModule:
    """The collection's identity filters."""

    def filters(self) -> Dict[str, Any]:
        """Map filter names to functions."""
        return {
            "identity": owner_identity,
            "owner_problems": owner_problems,
            "login_user": instance_login_user,
            "user_name_problems": user_name_problems,
            "image_family": ami_family,
            "image_name": owner_image_name,
        }
