# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure logic of labcloud.jupyter.owner_info: what an image request means, and what stops a launch.

Every message says what is wrong, then what to change. Nothing here talks to AWS, so the rules can
be unit-tested on their own; the module looks things up and hands them to these functions.
"""

import re
from typing import Any, Dict, List, Optional, Tuple

from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import IMAGE_FAMILY_TAG
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import LOGIN_USERS
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import image_family
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import tag_dict

REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-[0-9]+$"
# What may stand before the first "/" of an image request as the image's owner.
IMAGE_OWNER_PATTERN = r"^([0-9]{12}|self|amazon|aws-marketplace)$"
IMAGE_EXAMPLE = "136693071363/debian-12-amd64-*"
# The instance states in which an instance still holds its owner's name.
LIVE_STATES = ["pending", "running", "stopping", "stopped"]


def region_error(region: Optional[str]) -> Optional[str]:
    """Return why a region cannot be used before asking AWS, or None."""
    hint = "set -e region=<name> (for example us-west-2) or export AWS_REGION"
    if not region:
        return f"No region given: {hint}."
    if not re.match(REGION_PATTERN, region):
        return f"Region {region} is not a region name: {hint}."
    return None


def unknown_region(region: str, regions: List[str]) -> str:
    """Return the message for a region the account does not have."""
    return f"Region {region} does not exist or is not enabled in this account: use one of {', '.join(sorted(regions))}."


def image_query(image: str) -> Dict[str, Any]:
    """Return the DescribeImages parameters of an image request: an AMI ID, <owner>/<name pattern>, or a
    name pattern of the caller's own images."""
    if image.startswith("ami-"):
        return {"ImageIds": [image]}
    owner, pattern = image.split("/", 1) if "/" in image else (image, "")
    if pattern and re.match(IMAGE_OWNER_PATTERN, owner):
        return {"Owners": [owner], "Filters": [{"Name": "name", "Values": [pattern]}]}
    return {"Owners": ["self"], "Filters": [{"Name": "name", "Values": [image]}]}


def newest_image(images: List[Dict[str, Any]], image: str) -> Optional[Dict[str, Any]]:
    """Return the image a request means: the AMI itself, or the newest available one of a pattern."""
    if image.startswith("ami-"):
        return next((found for found in images if found.get("ImageId") == image), None)
    available = [found for found in images if found.get("State") == "available"]
    return max(available, key=lambda found: found.get("CreationDate", ""), default=None)


def root_size(image: Dict[str, Any]) -> int:
    """Return the size in GiB of an image's root snapshot (1 when the image does not say)."""
    for mapping in image.get("BlockDeviceMappings") or []:
        if mapping.get("DeviceName") == image.get("RootDeviceName"):
            return int((mapping.get("Ebs") or {}).get("VolumeSize") or 1)
    return 1


def describe_image(image: Dict[str, Any], family: str = "") -> Dict[str, Any]:
    """Return what a launch needs to know of an image, in snake case."""
    found_family = family or image_family(image.get("Name", ""), image.get("Description") or "", tag_dict(image))
    return {
        "image_id": image.get("ImageId"),
        "name": image.get("Name"),
        "state": image.get("State"),
        "architecture": image.get("Architecture"),
        "root_device_name": image.get("RootDeviceName"),
        "root_size": root_size(image),
        "family": found_family,
        "login_user": LOGIN_USERS.get(found_family),
        "creation_date": image.get("CreationDate"),
        "tags": tag_dict(image),
    }


def image_problems(request: str, region: str, image: Optional[Dict[str, Any]]) -> List[str]:
    """Return why an image request finds nothing launchable."""
    hint = (
        "give an AMI ID of this region that you may launch (-e image=ami-...), or <owner account>/<name pattern> of "
        f"an existing image (for example {IMAGE_EXAMPLE})."
    )
    if image is None:
        return [f"No image {request} in {region}: {hint}"]
    if image.get("State") != "available":
        return [f"Image {request} is {image.get('State')}, not available: {hint}"]
    return []


def fit_problems(
    image: Dict[str, Any], instance_type: str, architectures: List[str], size: int, family: str
) -> List[str]:
    """Return why an available image does not fit the instance type or the root volume, or has no known
    login user (family: the family given for it, or the one its tags, name and description tell)."""
    described = describe_image(image, family)
    problems = []
    if size < described["root_size"]:
        problems.append(
            f"Root volume of {size} GiB is smaller than the {described['root_size']} GiB snapshot of image "
            f"{described['image_id']}: set the root size (ec2_instance_root_size) to at least {described['root_size']}."
        )
    if architectures and described["architecture"] not in architectures:
        problems.append(
            f"Image {described['image_id']} is {described['architecture']}, which instance type {instance_type} "
            f"cannot run ({', '.join(architectures)}): choose an image or a type of the same architecture."
        )
    if described["login_user"] is None:
        problems.append(
            f"Cannot tell the login user of image {described['image_id']} ({described['name']}): tag it "
            f"{IMAGE_FAMILY_TAG}=<family> or set the image family (ec2_instance_image_family) to one of "
            f"{', '.join(LOGIN_USERS)}."
        )
    return problems


def unknown_type(instance_type: str, region: str) -> str:
    """Return the message for an instance type the region does not offer."""
    return (
        f"Instance type {instance_type} does not exist in {region}: check its spelling (for example c5.large, "
        f"t3.micro, m5ad.4xlarge) with aws ec2 describe-instance-types --region {region}."
    )


def several_instances(owner: str, name: str, instances: List[Dict[str, Any]]) -> str:
    """Return the message for an owner with more than one live instance of its name."""
    ids = ", ".join(instance["InstanceId"] for instance in instances)
    return (
        f"{owner} has {len(instances)} instances named {name} ({ids}): terminate the ones that are not in use "
        "(lifecycle.yml cannot tell which one you want)."
    )


def foreign_group(owner: str, name: str, group: Dict[str, Any]) -> str:
    """Return the message for a group of the owner's name that is not tagged for the owner."""
    return (
        f"Security group {name} ({group['GroupId']}) exists but is not tagged Owner={owner}: it was not made for "
        "this owner, so its rules are left alone. Rename or delete it, or choose another owner name."
    )


def lost_private_key(name: str, region: str, key_file: str) -> str:
    """Return the message for a key pair whose private key is not on this machine."""
    return (
        f"Key pair {name} exists in {region} but its private key {key_file} is not on this machine. Copy it there "
        "(mode 0400), or, if it is lost, delete the key pair (lifecycle.yml -e state=terminated -e purge=true, or "
        f"aws ec2 delete-key-pair --key-name {name}) so that a new one is made."
    )


def foreign_key(name: str, region: str, key_file: str) -> str:
    """Return the message for a key pair that does not match the owner's private key."""
    return (
        f"Key pair {name} in {region} does not match the private key {key_file}: it is not this owner's key. "
        "Nothing was changed; use the matching key file, or another owner name."
    )


def same_public_key(imported: str, local: str) -> bool:
    """Whether a key pair's public key (as EC2 keeps it) is the local private key's public half."""
    return imported.split()[:2] == local.split()[:2]


def missing_subnet(subnet_id: str, region: str) -> str:
    """Return the message for a subnet that is not there (or a region without a default VPC)."""
    where = f"Subnet {subnet_id} does not exist in {region}" if subnet_id else f"Region {region} has no default VPC"
    return f"{where}: set ec2_instance_subnet_id to a subnet of the VPC to launch in."


def subnet_summary(subnet: Dict[str, Any]) -> Dict[str, Any]:
    """Return what a launch needs to know of a subnet (DescribeSubnets' entry), in snake case."""
    return {
        "subnet_id": subnet["SubnetId"],
        "vpc_id": subnet["VpcId"],
        "availability_zone": subnet["AvailabilityZone"],
        "cidr_block": subnet.get("CidrBlock"),
    }


def zones_offering(offerings: List[Dict[str, Any]]) -> Dict[str, List[str]]:
    """Return, for each instance type, the zones that offer it (DescribeInstanceTypeOfferings by zone)."""
    zones: Dict[str, List[str]] = {}
    for offering in offerings:
        zones.setdefault(offering["InstanceType"], []).append(offering["Location"])
    return {name: sorted(set(found)) for name, found in zones.items()}


def zone_problem(
    instance_type: str, owners: List[str], region: str, offered: List[str], subnets: List[Dict[str, Any]], given: bool
) -> str:
    """Return the message for an instance type that no subnet the launch may use offers."""
    who = f"Instance type {instance_type} (for {', '.join(owners)})"
    listing = (
        f"aws ec2 describe-instance-type-offerings --location-type availability-zone --filters "
        f"Name=instance-type,Values={instance_type} --region {region}"
    )
    if not offered:
        return (
            f"{who} is not offered in any Availability Zone of {region} ({listing} lists none): choose another "
            "instance type or another region."
        )
    where = ", ".join(offered)
    if given:
        subnet = subnets[0]
        return (
            f"{who} is not offered in {subnet['availability_zone']}, the zone of subnet {subnet['subnet_id']}; "
            f"{region} offers it in {where}: set ec2_instance_subnet_id to a subnet in one of those zones (or leave it "
            "empty to launch in a default subnet that offers it), or choose another instance type."
        )
    return (
        f"{who} is offered in {where} of {region}, where the VPC has no default subnet (it has them in "
        f"{', '.join(s['availability_zone'] for s in subnets)}): set ec2_instance_subnet_id to a subnet in one of "
        "those zones, or choose another instance type."
    )


def choose_subnets(
    subnets: List[Dict[str, Any]],
    wanted: Dict[str, str],
    offered: Optional[Dict[str, List[str]]],
    region: str,
    given: bool,
) -> Tuple[Dict[str, Any], Dict[str, Optional[Dict[str, Any]]], List[str]]:
    """Choose the subnet of each owner to launch, in a zone that offers the owner's instance type.

    subnets: the subnets the launch may use (the given one, or the default subnets), sorted by zone;
    wanted: each launching owner's instance type; offered: the zones offering each type (None when
    they could not be read: every owner then takes the first subnet). Returns the launch's subnet (the
    first in a zone offering every wanted type, else the first), each owner's, and the problems.
    """

    def offers(subnet: Dict[str, Any], instance_type: str) -> bool:
        return offered is None or subnet["availability_zone"] in offered.get(instance_type, [])

    first = next((s for s in subnets if all(offers(s, t) for t in wanted.values())), subnets[0])
    chosen: Dict[str, Optional[Dict[str, Any]]] = {}
    lacking: Dict[str, List[str]] = {}
    for owner, instance_type in wanted.items():
        candidates = [first] + [s for s in subnets if s is not first]
        chosen[owner] = next((s for s in candidates if offers(s, instance_type)), None)
        if chosen[owner] is None:
            lacking.setdefault(instance_type, []).append(owner)
    problems = [
        zone_problem(name, owners, region, (offered or {}).get(name, []), subnets, given)
        for name, owners in sorted(lacking.items())
    ]
    return first, chosen, problems


NO_CREDENTIALS = (
    "No usable AWS credentials ({why}). Provide them with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and "
    "AWS_SESSION_TOKEN for temporary keys), with AWS_PROFILE naming a profile of ~/.aws/credentials or "
    "~/.aws/config (aws configure, aws sso login), or run on a machine with an instance role."
)
