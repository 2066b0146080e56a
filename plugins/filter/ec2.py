# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filter block_device_mappings: extra EBS volumes as amazon.aws.ec2_instance's volumes option takes them."""

from typing import Any, Dict, List, Mapping

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: block_device_mappings
version_added: 0.1.0
short_description: Extra EBS volumes as block device mappings for M(amazon.aws.ec2_instance)
positional: _input, kms_key_id
description:
  - Turns a list of volumes, each with C(device_name) and C(size) and optional C(type) (default V(gp3))
    and C(delete_on_termination) (default V(false), so that the volume and its data outlive the
    instance), into the entries of M(amazon.aws.ec2_instance)'s
    O(amazon.aws.ec2_instance#module:volumes) option. Every volume is
    encrypted, with O(kms_key_id) when it is given, else with the account's default EBS key.
options:
  _input:
    description: The volumes.
    type: list
    elements: dict
    required: true
  kms_key_id:
    description: The KMS key of the volumes (key ID, key ARN, alias name or alias ARN); empty uses the default.
    type: str
    default: ""
author:
  - labcloud.jupyter developers (@labcloud)
"""

EXAMPLES = r"""
- name: Launch with a data volume
  amazon.aws.ec2_instance:
    volumes: "{{ [{'device_name': '/dev/sdf', 'size': 200}] | labcloud.jupyter.block_device_mappings }}"

- name: Launch with the root volume and a data volume under the lab's key
  amazon.aws.ec2_instance:
    volumes: >-
      {{ [{'device_name': '/dev/sda1', 'size': 100}, {'device_name': '/dev/sdf', 'size': 200}]
         | labcloud.jupyter.block_device_mappings('alias/lab-volumes') }}
"""

RETURN = r"""
_value:
  description: One mapping per volume, in the same order.
  type: list
  elements: dict
"""


def block_device_mappings(volumes: Any, kms_key_id: Any = "") -> List[Dict[str, Any]]:
    """Return each volume as an encrypted EBS block device mapping (with the KMS key, when one is given)."""
    if not isinstance(volumes, (list, tuple)):
        raise AnsibleFilterError(f"block_device_mappings takes a list of volumes, not {volumes!r}")
    mappings = []
    for volume in volumes:
        if not isinstance(volume, Mapping) or "device_name" not in volume or "size" not in volume:
            raise AnsibleFilterError(f"A volume needs device_name and size: {volume!r}")
        try:
            size = int(volume["size"])
        except (TypeError, ValueError) as e:
            raise AnsibleFilterError(
                f"The size of volume {volume['device_name']} is not a number of GiB: {volume['size']!r}"
            ) from e
        delete = volume.get("delete_on_termination")
        ebs = {
            "volume_size": size,
            "volume_type": volume.get("type") or "gp3",
            "encrypted": True,
            # Unset (or null) keeps the volume when the instance is terminated: a data volume goes only
            # when asked (EC2's own default for a launch's volumes would delete it).
            "delete_on_termination": bool(delete),
        }
        if kms_key_id:
            ebs["kms_key_id"] = str(kms_key_id)
        mappings.append({"device_name": volume["device_name"], "ebs": ebs})
    return mappings


class FilterModule:
    """The collection's EC2 filters."""

    def filters(self) -> Dict[str, Any]:
        """Map filter names to functions."""
        return {"block_device_mappings": block_device_mappings}
