#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
---
module: owner_info
version_added: 0.1.0
short_description: What EC2 holds for a roster's owners, and whether a launch for them can succeed, in one run
description:
  - For every owner of O(owners), finds the owner's instances (tagged C(Owner), C(Name) and C(ManagedBy)),
    key pair, security group and Elastic IP, each compared with the owner's tags exactly, as
    M(labcloud.jupyter.elastic_ip) and M(labcloud.jupyter.owner_access) find them.
  - Checks the credentials (C(GetCallerIdentity)) and that the region exists and is enabled
    (C(DescribeRegions) in O(lookup_region)), so that a typo in the region is reported as such.
  - With O(launch=true), also checks what a launch needs, for all owners at once and before anything is
    created - the instance types exist in the region (with their vCPUs, memory and architectures), each
    owner's image exists, is available, fits the type's architecture and the root volume and has a known
    login user (not looked up for owners who already have an instance), the subnet exists (by default the
    region's default subnets), the zone of each owner's subnet offers the owner's instance type (one
    C(DescribeInstanceTypeOfferings) by zone for all the types; without O(subnet_id) each owner takes a
    default subnet in a zone that does), no owner has several instances, a group of an owner's
    name is tagged for that owner, and an existing key pair matches the owner's private key O(owners[].key_file).
    Every problem found is listed in RV(problems); the module does not fail for them, so that the
    caller reports them all at once.
  - Says for each owner whether its key pair and group are already what
    M(labcloud.jupyter.owner_access) would make them (RV(owners[].access_in_order)), and whether its
    Elastic IP is already associated with its instance and tagged (RV(owners[].address_in_order)), so that
    a run with nothing to change needs no further module.
  - This closes a gap in C(amazon.aws) for class rosters. Its info modules look up one kind of resource
    per task run (M(amazon.aws.ec2_instance_info), M(amazon.aws.ec2_key_info),
    M(amazon.aws.ec2_security_group_info), M(amazon.aws.ec2_eip_info), M(amazon.aws.ec2_ami_info),
    M(amazon.aws.ec2_vpc_subnet_info), M(amazon.aws.aws_caller_info), M(amazon.aws.aws_region_info)),
    and none describes instance types; each run is a module process that loads the EC2 service model
    (about a second of CPU). A launch needs all of them, and this module makes the same calls in one
    process. C(bench/modules.py) measures the difference; for a roster of eight, the eight info modules
    took 9.1 s and this module 2.1 s (4.2 times less), in one run on a 2-core machine.
options:
  owners:
    description: One entry per owner.
    type: list
    elements: dict
    required: true
    suboptions:
      owner:
        description: The owner (C(Owner) tag). Lower-case letters, digits and hyphens, 2 to 32, starting with a letter.
        type: str
        required: true
      name:
        description: Name of the owner's resources; defaults to C(jupyter-<owner>).
        type: str
      key_file:
        description:
          - The owner's private key on this machine. When the key pair exists, its public key must be this
            key's public half; when the key pair exists and the file does not, that is a problem.
        type: path
      ssh_cidr:
        description: The source networks the owner's group should admit to O(port), for RV(owners[].access_in_order).
        type: list
        elements: str
      tags:
        description: Tags the owner's group and address should carry besides C(Name) and C(Owner).
        type: dict
        default: {}
      instance_type:
        description: The instance type to launch (checked with O(launch=true)).
        type: str
      image:
        description:
          - The image to launch (checked with O(launch=true) for owners without an instance) - an AMI ID,
            C(<owner account>/<name pattern>) for the newest available image of that owner (an account ID,
            V(self), V(amazon) or V(aws-marketplace)), or a name pattern of the caller's own images.
        type: str
      image_family:
        description: The image's operating system family (V(debian), V(ubuntu), V(amazon)); empty detects it.
        type: str
        default: ""
      root_size:
        description: Size in GiB of the root volume to launch with (checked against the image's snapshot).
        type: int
  launch:
    description: Also look up and check what a launch needs (instance types, images, subnet).
    type: bool
    default: false
  subnet_id:
    description:
      - The subnet to launch in; empty takes, for each owner, a default subnet in a zone that offers the owner's
        instance type. A given subnet whose zone does not offer it is a problem that names the zones that do.
    type: str
  port:
    description: The TCP port of the one ingress rule of the owners' groups (for RV(owners[].access_in_order)).
    type: int
    default: 22
  lookup_region:
    description: The region in which the credentials and the account's regions are checked (always enabled).
    type: str
    default: us-east-1
  images_of_instances:
    description:
      - Also list, for each owner, the caller's images made from the owner's instances, and copies of
        them tagged C(SourceInstance) with the instance's ID (as C(playbooks/image.yml) tags them).
    type: bool
    default: false
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - labcloud.jupyter.attributes
  - labcloud.jupyter.attributes.info_module
author:
  - labcloud.jupyter developers (@labcloud)
seealso:
  - module: labcloud.jupyter.owner_access
  - module: labcloud.jupyter.elastic_ip
"""

EXAMPLES = r"""
- name: Look at a class before launching its VMs
  labcloud.jupyter.owner_info:
    region: us-west-2
    launch: true
    owners:
      - owner: ada
        key_file: ~/.labcloud/keys/jupyter-ada.pem
        ssh_cidr: 203.0.113.7/32
        instance_type: t3.large
        image: 099720109477/ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*
        root_size: 100
  register: class_info

- name: Stop on any problem, naming all of them
  ansible.builtin.assert:
    that: class_info.problems | length == 0
    fail_msg: "{{ class_info.problems | join(' ') }}"

- name: Find hedylamarr's VM and the images made from it
  labcloud.jupyter.owner_info:
    owners:
      - owner: hedylamarr
    images_of_instances: true
  register: found
"""

RETURN = r"""
account:
  description: The account the credentials act in.
  returned: always
  type: str
  sample: "123456789012"
region:
  description: The region looked in.
  returned: always
  type: str
  sample: us-west-2
problems:
  description: Everything that stops a launch (with O(launch=true)), each saying what to change; empty when none.
  returned: always
  type: list
  elements: str
subnet:
  description:
    - The launch's subnet (V(null) when there is none, or without O(launch)) - O(subnet_id), or the default subnet
      of the first zone that offers every instance type to launch (else of the first zone). Each owner's own is
      RV(owners[].subnet).
  returned: always
  type: dict
  sample: {"subnet_id": "subnet-0a1b", "vpc_id": "vpc-0c2d", "availability_zone": "us-west-2a"}
instance_types:
  description: The instance types asked for that exist, with vCPUs, memory, architectures and instance storage.
  returned: always
  type: dict
  sample: {"t3.micro": {"vcpus": 2, "memory_mib": 1024, "architectures": ["x86_64"], "instance_storage_gb": 0}}
owners:
  description: One entry per owner, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    owner:
      description: The owner.
      type: str
      returned: always
    name:
      description: The name of the owner's resources.
      type: str
      returned: always
    instances:
      description:
        - The owner's instances in a live state (pending, running, stopping, stopped), as
          M(amazon.aws.ec2_instance_info) returns them.
      type: list
      elements: dict
      returned: always
    instance:
      description: The owner's one instance, or V(null) (none, or several).
      type: dict
      returned: always
    key_pair:
      description: The owner's key pair (C(key_name), C(key_fingerprint), C(tags)), or V(null).
      type: dict
      returned: always
    security_group:
      description: The owner's group (C(group_id), C(vpc_id), C(tags)), or V(null).
      type: dict
      returned: always
    address:
      description: The owner's Elastic IP (C(allocation_id), C(public_ip), C(instance_id), C(tags)), or V(null).
      type: dict
      returned: always
    image:
      description:
        - With O(launch=true), the image the owner's launch would use (ID, name, architecture, root
          size, family, login user), or V(null).
      type: dict
      returned: always
    subnet:
      description:
        - With O(launch=true), the subnet the owner's instance would be launched in, in a zone that offers the
          owner's instance type, or V(null) (the owner has an instance, no zone offers the type, or no O(launch)).
      type: dict
      returned: always
    images:
      description:
        - With O(images_of_instances=true), the caller's images made from the owner's instances (ID,
          name, state, source instance, tags).
      type: list
      elements: dict
      returned: always
    image_available:
      description:
        - With O(images_of_instances=true), whether one of those images is available (the owner's work
          can be relaunched from it).
      type: bool
      returned: always
    access_in_order:
      description:
        - Whether the key pair exists (matching O(owners[].key_file)) and the group exists, tagged,
          admitting exactly O(owners[].ssh_cidr) to O(port).
      type: bool
      returned: always
    address_in_order:
      description: Whether the owner's one Elastic IP is associated with the owner's one instance and carries the tags.
      type: bool
      returned: always
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.labcloud.jupyter.plugins.module_utils.owner_lookup import survey


def main() -> None:
    """Run the module."""
    argument_spec = dict(
        owners=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(
                owner=dict(type="str", required=True),
                name=dict(type="str"),
                key_file=dict(type="path"),
                ssh_cidr=dict(type="list", elements="str"),
                tags=dict(type="dict", default={}),
                instance_type=dict(type="str"),
                image=dict(type="str"),
                image_family=dict(type="str", default=""),
                root_size=dict(type="int"),
            ),
        ),
        launch=dict(type="bool", default=False),
        subnet_id=dict(type="str"),
        port=dict(type="int", default=22),
        lookup_region=dict(type="str", default="us-east-1"),
        images_of_instances=dict(type="bool", default=False),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    result = survey(
        module,
        module.params["owners"],
        launch=module.params["launch"],
        subnet_id=module.params["subnet_id"],
        images_of_instances=module.params["images_of_instances"],
    )
    del result["found"], result["client"]
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
