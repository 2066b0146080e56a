# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filter image_versions: an owner's images grouped into versions, newest first, as the clean-up counts them."""

from typing import Any, Dict, List, Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.labcloud.jupyter.plugins.module_utils.cost import image_gib
from ansible_collections.labcloud.jupyter.plugins.module_utils.cost import image_snapshots
from ansible_collections.labcloud.jupyter.plugins.module_utils.zombies import image_versions as versions_of

DOCUMENTATION = r"""
name: image_versions
version_added: 0.1.0
short_description: An owner's images grouped into versions, newest first
description:
  - Groups images, as M(amazon.aws.ec2_ami_info) returns them (with C(describe_image_attributes) for
    their launch permissions), into versions the way M(labcloud.jupyter.zombies) does. A version is
    every image of an owner's project tagged with it (the image C(image.yml) made and the copies
    C(share.yml) made of it, tagged C(CopyOf)), ordered by when its first image was made.
  - Returns the versions of every owner and project, newest first (the role C(image) prunes with it).
options:
  _input:
    description: The images, in the form M(amazon.aws.ec2_ami_info) returns them.
    type: list
    elements: dict
    required: true
author:
  - labcloud.jupyter developers (@labcloud)
"""

EXAMPLES = r"""
- name: Find the versions of an owner's images
  ansible.builtin.debug:
    msg: "{{ found.images | labcloud.jupyter.image_versions | map(attribute='version') }}"
"""

RETURN = r"""
_value:
  description:
    - One entry per version, newest first, with C(owner), C(project), C(version), C(created) (ISO 8601),
      C(images) and C(names) (of its images), C(snapshot_ids), C(gib) (the size of its snapshots) and
      C(shared_with) (accounts, organizations, units, everyone when public, and the copies made to share it).
  type: list
  elements: dict
"""


def described(image: Mapping[str, Any]) -> Dict[str, Any]:
    """Return an image of ec2_ami_info in the form EC2's DescribeImages gives it."""
    tags = image.get("tags") or {}
    if not isinstance(tags, Mapping):
        raise AnsibleFilterError(f"image_versions: the tags of {image.get('image_id')} are not a dictionary")
    keys = {"user_id": "UserId", "group": "Group", "organization_arn": "OrganizationArn"}
    keys["organizational_unit_arn"] = "OrganizationalUnitArn"
    return {
        "ImageId": image.get("image_id", ""),
        "Name": image.get("name", ""),
        "CreationDate": image.get("creation_date"),
        "Public": bool(image.get("public")),
        "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
        "LaunchPermissions": [
            {keys[key]: value for key, value in permission.items() if key in keys}
            for permission in image.get("launch_permissions") or []
        ],
        "BlockDeviceMappings": [
            {"Ebs": {"SnapshotId": ebs.get("snapshot_id"), "VolumeSize": ebs.get("volume_size")}}
            for ebs in (mapping.get("ebs") for mapping in image.get("block_device_mappings") or [])
            if ebs
        ],
    }


def image_versions(images: Any) -> List[Dict[str, Any]]:
    """Return the versions of the images, newest first."""
    if not isinstance(images, list) or not all(isinstance(image, Mapping) for image in images):
        raise AnsibleFilterError(f"image_versions takes the list of images of ec2_ami_info, not {images!r}")
    grouped = versions_of([described(image) for image in images])
    result = []
    for group in grouped.values():
        for version in group:
            result.append(
                {
                    "owner": version["owner"],
                    "project": version["project"],
                    "version": version["version"],
                    "created": version["created"].isoformat() if version["created"] else "",
                    "images": [image["ImageId"] for image in version["images"]],
                    "names": [image["Name"] for image in version["images"]],
                    "snapshot_ids": [s for image in version["images"] for s in image_snapshots(image)],
                    "gib": sum(image_gib(image) for image in version["images"]),
                    "shared_with": list(dict.fromkeys(version["shared_with"])),
                }
            )
    return sorted(result, key=lambda version: version["created"], reverse=True)


class FilterModule:
    """The collection's filter for image versions."""

    def filters(self) -> Dict[str, Any]:
        """Map filter names to functions."""
        return {"image_versions": image_versions}
