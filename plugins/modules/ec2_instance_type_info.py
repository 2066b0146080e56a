#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
---
module: ec2_instance_type_info
version_added: 0.1.0
short_description: Tell which EC2 instance types exist in a region, and their size
description:
  - Looks up instance types with C(DescribeInstanceTypes) in the chosen region and reports, for
    each one asked for, whether the region offers it, with its vCPUs, memory, architectures and
    instance-store disks.
  - A type the region does not offer (a typo such as V(c5.lrage), or a type of another region)
    is listed in RV(missing) instead of failing the module, so that a playbook can refuse bad
    input with its own message before it creates anything.
  - This closes a gap in C(amazon.aws), which has no module that describes instance types, and
    M(amazon.aws.ec2_instance) only finds out that a type is wrong when C(RunInstances) fails,
    after the key pair and the security group of a launch already exist.
options:
  instance_types:
    description:
      - The instance types to look up, for example V(c5.large).
    type: list
    elements: str
    required: true
author:
  - labcloud.jupyter developers (@labcloud)
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - labcloud.jupyter.attributes
  - labcloud.jupyter.attributes.info_module
"""

EXAMPLES = r"""
- name: Refuse an instance type the region does not offer
  labcloud.jupyter.ec2_instance_type_info:
    region: us-west-2
    instance_types:
      - c5.large
  register: types

- name: Stop when it is unknown
  ansible.builtin.assert:
    that: types.missing | length == 0
    fail_msg: "Unknown instance type(s) {{ types.missing | join(', ') }}"
"""

RETURN = r"""
instance_types:
  description: The instance types found, keyed by name.
  returned: always
  type: dict
  sample:
    c5.large:
      vcpus: 2
      memory_mib: 4096
      architectures: ["x86_64"]
      instance_storage_gb: 0
      current_generation: true
missing:
  description: The instance types asked for that the region does not offer.
  returned: always
  type: list
  elements: str
  sample: ["c5.lrage"]
"""

import re
from typing import Any, Dict, List, Tuple

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import LabcloudAWSError
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import call

# DescribeInstanceTypes names the unknown types in its error message: "… do not exist: [a, b]".
UNKNOWN_TYPES = re.compile(r"\[([^\]]*)\]")


def summary(instance_type: Dict[str, Any]) -> Dict[str, Any]:
    """The facts about one instance type that a launch needs, in snake case."""
    storage = instance_type.get("InstanceStorageInfo") or {}
    return {
        "vcpus": instance_type.get("VCpuInfo", {}).get("DefaultVCpus"),
        "memory_mib": instance_type.get("MemoryInfo", {}).get("SizeInMiB"),
        "architectures": instance_type.get("ProcessorInfo", {}).get("SupportedArchitectures", []),
        "instance_storage_gb": storage.get("TotalSizeInGB", 0),
        "current_generation": instance_type.get("CurrentGeneration", False),
    }


def unknown_from_error(error: Exception, asked: List[str]) -> List[str]:
    """The types an InvalidInstanceType error names, or all of those asked for when it names none."""
    match = UNKNOWN_TYPES.search(getattr(error, "response", {}).get("Error", {}).get("Message", ""))
    named = [name.strip() for name in match.group(1).split(",")] if match else []
    return [name for name in asked if name in named] or list(asked)


def look_up(client, names: List[str]) -> Tuple[Dict[str, Any], List[str]]:
    """Describe the types; an unknown one fails the whole call, so it is dropped and the rest asked again."""
    remaining = list(dict.fromkeys(names))
    missing: List[str] = []
    while remaining:
        try:
            # At most 100 names per call (checked in main()), so the answer is one page.
            found = call(
                client.describe_instance_types,
                f"Could not describe instance types {', '.join(remaining)}",
                InstanceTypes=remaining,
            )["InstanceTypes"]
        except LabcloudAWSError as e:
            if e.code != "InvalidInstanceType":
                raise
            unknown = unknown_from_error(e.exception, remaining)
            missing.extend(unknown)
            remaining = [name for name in remaining if name not in unknown]
            continue
        described = {item["InstanceType"]: summary(item) for item in found}
        missing.extend(name for name in remaining if name not in described)
        return described, missing
    return {}, missing


def main() -> None:
    """Run the module."""
    module = AnsibleAWSModule(
        argument_spec=dict(instance_types=dict(type="list", elements="str", required=True)),
        supports_check_mode=True,
    )
    names = [name.strip() for name in module.params["instance_types"]]
    if not names or any(not name for name in names):
        module.fail_json(msg="instance_types must list at least one non-empty instance type name")
    if len(names) > 100:
        module.fail_json(msg="DescribeInstanceTypes takes at most 100 instance types per call")
    try:
        described, missing = look_up(module.client("ec2"), names)
    except LabcloudAWSError as e:
        module.fail_json_aws_error(e)
    module.exit_json(changed=False, instance_types=described, missing=missing)


if __name__ == "__main__":
    main()
