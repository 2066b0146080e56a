# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What EC2 holds for a roster's owners, and what stops their launch: the look-ups of owner_info and owner_access.

One call per kind of resource for the whole roster (instances, key pairs, groups, addresses),
then each owner picks its own by its tags, compared exactly. With a launch in view, the
credentials, the region, the instance types, the images and the subnet are looked up and checked
too, and every problem is collected (see launch_checks) instead of stopping at the first.
"""

import os
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

# The import guard is the pattern ansible-test sanity expects.
try:  # noqa: SIM105
    from botocore.exceptions import NoCredentialsError
except ImportError:
    pass  # AnsibleAWSModule reports the missing botocore

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import LabcloudAWSError
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import aws_message
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import call
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import describe_all
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import missing_tags
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import MANAGED_BY
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import MANAGED_BY_TAG
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import OWNER_TAG
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import SOURCE_INSTANCE_TAG
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import is_owned_by
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import owner_error
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import resource_name
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import tag_dict
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import validate_identity
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import wanted_tags
from ansible_collections.labcloud.jupyter.plugins.module_utils.launch_checks import LIVE_STATES
from ansible_collections.labcloud.jupyter.plugins.module_utils.launch_checks import NO_CREDENTIALS
from ansible_collections.labcloud.jupyter.plugins.module_utils.launch_checks import choose_subnets
from ansible_collections.labcloud.jupyter.plugins.module_utils.launch_checks import describe_image
from ansible_collections.labcloud.jupyter.plugins.module_utils.launch_checks import fit_problems
from ansible_collections.labcloud.jupyter.plugins.module_utils.launch_checks import foreign_group
from ansible_collections.labcloud.jupyter.plugins.module_utils.launch_checks import foreign_key
from ansible_collections.labcloud.jupyter.plugins.module_utils.launch_checks import image_problems
from ansible_collections.labcloud.jupyter.plugins.module_utils.launch_checks import image_query
from ansible_collections.labcloud.jupyter.plugins.module_utils.launch_checks import lost_private_key
from ansible_collections.labcloud.jupyter.plugins.module_utils.launch_checks import missing_subnet
from ansible_collections.labcloud.jupyter.plugins.module_utils.launch_checks import newest_image
from ansible_collections.labcloud.jupyter.plugins.module_utils.launch_checks import region_error
from ansible_collections.labcloud.jupyter.plugins.module_utils.launch_checks import same_public_key
from ansible_collections.labcloud.jupyter.plugins.module_utils.launch_checks import several_instances
from ansible_collections.labcloud.jupyter.plugins.module_utils.launch_checks import subnet_summary
from ansible_collections.labcloud.jupyter.plugins.module_utils.launch_checks import unknown_region
from ansible_collections.labcloud.jupyter.plugins.module_utils.launch_checks import unknown_type
from ansible_collections.labcloud.jupyter.plugins.module_utils.launch_checks import zones_offering
from ansible_collections.labcloud.jupyter.plugins.module_utils.quotas import ACTIVE_STATES
from ansible_collections.labcloud.jupyter.plugins.module_utils.quotas import ELASTIC_IP_QUOTA
from ansible_collections.labcloud.jupyter.plugins.module_utils.quotas import VCPU_GROUPS
from ansible_collections.labcloud.jupyter.plugins.module_utils.quotas import address_problems
from ansible_collections.labcloud.jupyter.plugins.module_utils.quotas import launch_needs
from ansible_collections.labcloud.jupyter.plugins.module_utils.quotas import vcpu_group
from ansible_collections.labcloud.jupyter.plugins.module_utils.quotas import vcpu_problems
from ansible_collections.labcloud.jupyter.plugins.module_utils.ssh_ingress import cidr_list
from ansible_collections.labcloud.jupyter.plugins.module_utils.ssh_ingress import cidrs_problem
from ansible_collections.labcloud.jupyter.plugins.module_utils.ssh_ingress import plan_ingress
from ansible_collections.labcloud.jupyter.plugins.module_utils.ssh_ingress import wanted_sources

# What AWS answers keys that are not valid (or no longer).
CREDENTIAL_ERRORS = (
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "AuthFailure",
    "ExpiredToken",
    "UnrecognizedClientException",
)


def snake(resource: Dict[str, Any]) -> Dict[str, Any]:
    """Return a resource description in snake case, its tags as a dictionary (as amazon.aws returns them)."""
    described = camel_dict_to_snake_dict(resource, ignore_list=["Tags"])
    described["tags"] = tag_dict(resource)
    described.pop("tags_list", None)
    return described


def input_errors(owners: List[Dict[str, Any]]) -> List[str]:
    """Return what is wrong with the owners' entries before anything is looked up."""
    errors = []
    for entry in owners:
        problem = owner_error(entry["owner"])
        if problem:
            errors.append(problem)
            continue
        errors += [f"{entry['name']}: {error}" for error in validate_identity(entry["owner"], entry["name"], {})]
        problem = cidrs_problem(entry["ssh_cidr"])
        if problem:
            errors.append(f"{entry['name']}: {problem}")
    names = [entry["name"] for entry in owners]
    errors += [f"{name} is given more than once in owners" for name in sorted(set(names)) if names.count(name) > 1]
    return errors


def check_account(module: Any, region: str) -> str:
    """Return the account of the credentials, failing when there are none or the region is unknown."""
    lookup = module.params["lookup_region"]
    try:
        identity = call(module.client("sts", region=lookup).get_caller_identity, "Could not check the credentials")
    except LabcloudAWSError as e:
        if isinstance(e.exception, NoCredentialsError) or e.code in CREDENTIAL_ERRORS:
            module.fail_json(msg=NO_CREDENTIALS.format(why=e.exception))
        module.fail_json_aws_error(e)
    regions = describe_all(
        module.client("ec2", region=lookup), "describe_regions", "Regions", f"Could not list the regions in {lookup}"
    )
    names = [found["RegionName"] for found in regions]
    if region not in names:
        module.fail_json(msg=unknown_region(region, names))
    return identity["Account"]


def find_subnets(client, region: str, subnet_id: Optional[str], problems: List[str]) -> List[Dict[str, Any]]:
    """Return the subnets a launch may use, sorted by zone: the given one, or the region's default subnets."""
    try:
        if subnet_id:
            found = describe_all(
                client, "describe_subnets", "Subnets", f"Could not find subnet {subnet_id}", SubnetIds=[subnet_id]
            )
        else:
            found = describe_all(
                client,
                "describe_subnets",
                "Subnets",
                "Could not find the default subnets",
                Filters=[{"Name": "default-for-az", "Values": ["true"]}],
            )
    except LabcloudAWSError as e:
        if e.code != "InvalidSubnetID.NotFound":
            raise
        found = []
    if not found:
        problems.append(missing_subnet(subnet_id or "", region))
    return [subnet_summary(s) for s in sorted(found, key=lambda item: item.get("AvailabilityZone", ""))]


# What AWS answers a caller whose policy does not allow a call.
DENIED = ("UnauthorizedOperation", "AccessDenied", "AccessDeniedException")


def find_offerings(module: Any, client, names: List[str], zone: str) -> Optional[Dict[str, List[str]]]:
    """Return the zones that offer each instance type (one call for all), or None (warned) when it may not be asked."""
    try:
        offerings = describe_all(
            client,
            "describe_instance_type_offerings",
            "InstanceTypeOfferings",
            f"Could not list the Availability Zones that offer {', '.join(names)}",
            LocationType="availability-zone",
            Filters=[{"Name": "instance-type", "Values": names}],
        )
    except LabcloudAWSError as e:
        if e.code not in DENIED:
            raise
        module.warn(
            f"{aws_message(e)}: the launch goes on in {zone} without checking that it offers {', '.join(names)}."
        )
        return None
    return zones_offering(offerings)


def place(
    module: Any,
    client,
    region: str,
    subnets: List[Dict[str, Any]],
    wanted: Dict[str, str],
    given: bool,
    problems: List[str],
) -> Tuple[Optional[Dict[str, Any]], Dict[str, Optional[Dict[str, Any]]]]:
    """Return the launch's subnet and each launching owner's (by name), in zones that offer their instance types."""
    if not subnets:
        return None, {}
    names = sorted(set(wanted.values()))
    offered = find_offerings(module, client, names, subnets[0]["availability_zone"]) if names else {}
    subnet, chosen, found_problems = choose_subnets(subnets, wanted, offered, region, given)
    problems.extend(found_problems)
    return subnet, chosen


def find_types(client, region: str, names: List[str], problems: List[str]) -> Dict[str, Dict[str, Any]]:
    """Describe the instance types; an unknown one fails the whole call, so it is dropped and the rest asked again."""
    remaining = sorted(set(names))
    described: Dict[str, Dict[str, Any]] = {}
    while remaining:
        try:
            found = describe_all(
                client,
                "describe_instance_types",
                "InstanceTypes",
                f"Could not describe instance types {', '.join(remaining)}",
                InstanceTypes=remaining,
            )
        except LabcloudAWSError as e:
            if e.code != "InvalidInstanceType":
                raise
            # AWS's own message lists the unknown types ("The following supplied instance types do
            # not exist: [c5.lrage]"); the error's text also repeats every requested type.
            message = aws_message(e)
            unknown = [name for name in remaining if re.search(rf"(?<![\w.]){re.escape(name)}(?![\w.])", message)]
            unknown = unknown or remaining
            problems.extend(unknown_type(name, region) for name in unknown)
            remaining = [name for name in remaining if name not in unknown]
            continue
        for item in found:
            storage = item.get("InstanceStorageInfo") or {}
            described[item["InstanceType"]] = {
                "vcpus": item.get("VCpuInfo", {}).get("DefaultVCpus"),
                "memory_mib": item.get("MemoryInfo", {}).get("SizeInMiB"),
                "architectures": item.get("ProcessorInfo", {}).get("SupportedArchitectures", []),
                "instance_storage_gb": storage.get("TotalSizeInGB", 0),
            }
        problems.extend(unknown_type(name, region) for name in remaining if name not in described)
        break
    return described


def find_image(client, request: str) -> Optional[Dict[str, Any]]:
    """Return the image an image request means, or None."""
    try:
        images = describe_all(
            client, "describe_images", "Images", f"Could not look up image {request}", **image_query(request)
        )
    except LabcloudAWSError as e:
        if e.code in ("InvalidAMIID.NotFound", "InvalidAMIID.Malformed", "InvalidAMIID.Unavailable"):
            return None
        raise
    return newest_image(images, request)


def public_half(module: Any, key_file: str) -> Optional[str]:
    """Return the public key of a private key file, or None when it cannot be read."""
    rc, out, _err = module.run_command(["ssh-keygen", "-y", "-f", key_file])
    return out.strip() if rc == 0 else None


def key_problems(module: Any, entry: Dict[str, Any], key: Optional[Dict[str, Any]], region: str) -> List[str]:
    """Return why the owner's key pair cannot be used with the owner's private key."""
    if key is None or not entry["key_file"]:
        return []
    if not os.path.exists(entry["key_file"]):
        return [lost_private_key(entry["name"], region, entry["key_file"])]
    local = public_half(module, entry["key_file"])
    if key.get("PublicKey") and (local is None or not same_public_key(key["PublicKey"], local)):
        return [foreign_key(entry["name"], region, entry["key_file"])]
    return []


def access_in_order(
    entry: Dict[str, Any],
    key: Optional[Dict[str, Any]],
    group: Optional[Dict[str, Any]],
    port: int,
    problems: List[str],
) -> bool:
    """Whether owner_access would change nothing for the owner."""
    if key is None or group is None or problems or not cidr_list(entry["ssh_cidr"]):
        return False
    if entry["key_file"] and not os.path.exists(entry["key_file"]):
        return False
    add, revoke = plan_ingress(group.get("IpPermissions") or [], wanted_sources(entry["ssh_cidr"], port))
    wanted = wanted_tags(entry["owner"], entry["name"], entry["tags"])
    return not add and not revoke and not missing_tags(tag_dict(group), wanted)


def address_in_order(
    entry: Dict[str, Any], addresses: List[Dict[str, Any]], instance: Optional[Dict[str, Any]]
) -> bool:
    """Whether elastic_ip would change nothing for the owner."""
    if len(addresses) != 1 or instance is None:
        return False
    wanted = wanted_tags(entry["owner"], entry["name"], entry["tags"])
    return addresses[0].get("InstanceId") == instance["InstanceId"] and not missing_tags(tag_dict(addresses[0]), wanted)


def describe_owner(
    module: Any,
    entry: Dict[str, Any],
    found: Dict[str, Any],
    region: str,
    images: Dict[str, Optional[Dict[str, Any]]],
    types: Dict[str, Dict[str, Any]],
    launch: bool,
) -> Dict[str, Any]:
    """Return what EC2 holds for one owner, and its problems."""
    owner, name = entry["owner"], entry["name"]
    instances = [i for i in found["instances"] if is_owned_by(i, owner, name)]
    key = found["keys"].get(name)
    group = found["groups"].get(name)
    addresses = [a for a in found["addresses"] if is_owned_by(a, owner, name)]
    problems: List[str] = []
    if len(instances) > 1:
        problems.append(several_instances(owner, name, instances))
    if group is not None and tag_dict(group).get(OWNER_TAG) != owner:
        problems.append(foreign_group(owner, name, group))
    problems += key_problems(module, entry, key, region)
    image = None
    if launch and not instances and entry.get("image"):
        image = images.get(entry["image"])
        found_problems = image_problems(entry["image"], region, image)
        architectures = types.get(entry["instance_type"], {}).get("architectures", [])
        if not found_problems and entry["instance_type"] in types:
            found_problems = fit_problems(
                image, entry["instance_type"], architectures, entry["root_size"] or 0, entry["image_family"]
            )
        problems += found_problems
    instance = instances[0] if len(instances) == 1 else None
    return {
        "owner": owner,
        "name": name,
        "instances": [snake(i) for i in instances],
        "instance": snake(instance) if instance else None,
        "key_pair": (
            {"key_name": key["KeyName"], "key_fingerprint": key.get("KeyFingerprint"), "tags": tag_dict(key)}
            if key
            else None
        ),
        "security_group": (
            {"group_id": group["GroupId"], "vpc_id": group.get("VpcId"), "tags": tag_dict(group)} if group else None
        ),
        "address": (
            {
                "allocation_id": addresses[0]["AllocationId"],
                "public_ip": addresses[0]["PublicIp"],
                "instance_id": addresses[0].get("InstanceId"),
                "tags": tag_dict(addresses[0]),
            }
            if len(addresses) == 1
            else None
        ),
        "image": describe_image(image, entry["image_family"])
        if image and not image_problems(entry["image"], region, image)
        else None,
        "images": [],
        "image_available": False,
        "access_in_order": access_in_order(entry, key, group, module.params.get("port", 22), problems),
        "address_in_order": address_in_order(entry, addresses, instance),
        "problems": problems,
    }


# The kinds of resources an owner has, for look_up.
ALL_KINDS = ("instances", "groups", "keys", "addresses")


def look_up(
    client, owners: List[Dict[str, Any]], vpc_id: Optional[str], kinds: Sequence[str] = ALL_KINDS
) -> Dict[str, Any]:
    """Return the owners' instances, key pairs, groups and addresses (those of kinds), in one call per kind."""
    names = [entry["name"] for entry in owners]
    owner_names = sorted({entry["owner"] for entry in owners})
    found: Dict[str, Any] = {"instances": [], "groups": {}, "keys": {}, "addresses": []}
    if "instances" in kinds:
        reservations = describe_all(
            client,
            "describe_instances",
            "Reservations",
            f"Could not look up the instances of {', '.join(owner_names)}",
            Filters=[
                {"Name": f"tag:{OWNER_TAG}", "Values": owner_names},
                {"Name": f"tag:{MANAGED_BY_TAG}", "Values": [MANAGED_BY]},
                {"Name": "instance-state-name", "Values": LIVE_STATES},
            ],
        )
        found["instances"] = [i for r in reservations for i in r.get("Instances", [])]
    if "groups" in kinds:
        group_filters = [{"Name": "group-name", "Values": names}] + (
            [{"Name": "vpc-id", "Values": [vpc_id]}] if vpc_id else []
        )
        groups = describe_all(
            client,
            "describe_security_groups",
            "SecurityGroups",
            f"Could not look up the security groups {', '.join(names)}",
            Filters=group_filters,
        )
        found["groups"] = {g["GroupName"]: g for g in groups if vpc_id is None or g.get("VpcId") == vpc_id}
    if "keys" in kinds:
        keys = describe_all(
            client,
            "describe_key_pairs",
            "KeyPairs",
            f"Could not look up the key pairs {', '.join(names)}",
            Filters=[{"Name": "key-name", "Values": names}],
            IncludePublicKey=True,
        )
        found["keys"] = {k["KeyName"]: k for k in keys}
    if "addresses" in kinds:
        found["addresses"] = describe_all(
            client,
            "describe_addresses",
            "Addresses",
            f"Could not look up the Elastic IPs of {', '.join(owner_names)}",
            Filters=[{"Name": "domain", "Values": ["vpc"]}, {"Name": f"tag:{OWNER_TAG}", "Values": owner_names}],
        )
    return found


def images_made_from(client, results: List[Dict[str, Any]]) -> None:
    """Add to each owner the caller's images made from the owner's instances."""
    sources = {i["instance_id"]: result for result in results for i in result["instances"]}
    if not sources:
        return
    images = describe_all(client, "describe_images", "Images", "Could not list this account's images", Owners=["self"])
    for image in images:
        # An image made by CreateImage names its instance; a copy of it (CopyImage, made to share it
        # with another key) names only the image it copied, and carries the collection's tag.
        source = image.get("SourceInstanceId") or tag_dict(image).get(SOURCE_INSTANCE_TAG)
        owner_result = sources.get(source)
        if owner_result is not None:
            owner_result["image_available"] = owner_result["image_available"] or image.get("State") == "available"
            owner_result["images"].append(
                {
                    "image_id": image["ImageId"],
                    "name": image.get("Name"),
                    "state": image.get("State"),
                    "source_instance_id": source,
                    "tags": tag_dict(image),
                }
            )


def service_quota(module: Any, code: str, name: str) -> Optional[float]:
    """Return the value of an EC2 quota in force, or None (with a warning) when it cannot be read."""
    client = module.client("service-quotas")
    try:
        try:
            answer = call(
                client.get_service_quota, f"Could not read the quota {name}", ServiceCode="ec2", QuotaCode=code
            )
        except LabcloudAWSError as e:
            # An account that never changed a quota may only have its default.
            if e.code != "NoSuchResourceException":
                raise
            answer = call(
                client.get_aws_default_service_quota,
                f"Could not read the quota {name}",
                ServiceCode="ec2",
                QuotaCode=code,
            )
    except LabcloudAWSError as e:
        module.warn(f"{aws_message(e)}: the launch goes on without checking {name} ({code}) first.")
        return None
    return float(answer["Quota"]["Value"])


def quota_problems(
    module: Any,
    client,
    entries: List[Dict[str, Any]],
    results: List[Dict[str, Any]],
    types: Dict[str, Any],
    region: str,
) -> List[str]:
    """Return what the account's quotas lack for the launch: Elastic IPs, and vCPUs per family group."""
    vcpus = {name: described.get("vcpus") for name, described in types.items()}
    held_types = [r["instance"]["instance_type"] for r in results if r.get("instance")]
    missing = sorted({name for name in held_types if name not in vcpus})
    if missing:
        vcpus.update({name: d.get("vcpus") for name, d in find_types(client, region, missing, []).items()})
    addresses, starts = launch_needs(entries, results, vcpus)
    problems: List[str] = []
    if addresses:
        answer = call(
            client.describe_account_attributes,
            f"Could not read the {ELASTIC_IP_QUOTA[1]} quota",
            AttributeNames=["vpc-max-elastic-ips"],
        )
        values = [
            v["AttributeValue"] for a in answer.get("AccountAttributes", []) for v in a.get("AttributeValues", [])
        ]
        limit = int(values[0]) if values and str(values[0]).isdigit() else None
        held = describe_all(
            client,
            "describe_addresses",
            "Addresses",
            "Could not count the account's Elastic IPs",
            Filters=[{"Name": "domain", "Values": ["vpc"]}],
        )
        problems += address_problems(region, limit, len(held), addresses)
    if starts:
        names = {group[0]: group[1] for group in VCPU_GROUPS}
        limits = {code: service_quota(module, code, names[code]) for code in starts}
        reservations = describe_all(
            client,
            "describe_instances",
            "Reservations",
            "Could not count the account's running vCPUs",
            Filters=[{"Name": "instance-state-name", "Values": list(ACTIVE_STATES)}],
        )
        active = [i["InstanceType"] for r in reservations for i in r.get("Instances", [])]
        unknown = sorted({name for name in active if name not in vcpus})
        if unknown:
            vcpus.update({name: d.get("vcpus") for name, d in find_types(client, region, unknown, []).items()})
        running: Dict[str, int] = {}
        for name in active:
            code = vcpu_group(name)[0]
            running[code] = running.get(code, 0) + int(vcpus.get(name) or 0)
        problems += vcpu_problems(region, limits, running, starts)
    return problems


# The settings of an owner entry that the look-ups read, with what an absent one means.
ENTRY_DEFAULTS = {
    "name": None,
    "key_file": None,
    "ssh_cidr": None,
    "tags": {},
    "instance_type": None,
    "image": None,
    "image_family": "",
    "root_size": None,
    "elastic_ip": True,
}


def normalized(owners: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Return the owners' entries with every setting the look-ups read, and each owner's name."""
    entries = []
    for raw in owners:
        entry = dict(ENTRY_DEFAULTS)
        entry.update({key: value for key, value in raw.items() if value is not None})
        entry["tags"] = entry["tags"] or {}
        entry["image_family"] = entry["image_family"] or ""
        if not entry["name"]:
            entry["name"] = resource_name(entry["owner"]) if not owner_error(entry["owner"]) else ""
        entries.append(entry)
    return entries


def survey(
    module: Any,
    owners: List[Dict[str, Any]],
    launch: bool,
    subnet_id: Optional[str] = None,
    vpc_id: Optional[str] = None,
    images_of_instances: bool = False,
) -> Dict[str, Any]:
    """Look at everything EC2 holds for the owners (and, for a launch, what it needs), in one pass.

    Fails the module for bad input, missing credentials or an unknown region; collects every other
    problem in "problems". The raw look-ups are under "found" for the caller's own use.
    """
    entries = normalized(owners)
    errors = input_errors(entries)
    problem = region_error(module.region)
    if problem:
        errors.insert(0, problem)
    if errors:
        module.fail_json(msg=" ".join(errors))
    region = module.region
    account = check_account(module, region)
    client = module.client("ec2")
    problems: List[str] = []
    types: Dict[str, Dict[str, Any]] = {}
    images: Dict[str, Optional[Dict[str, Any]]] = {}
    subnet: Optional[Dict[str, Any]] = None
    chosen: Dict[str, Optional[Dict[str, Any]]] = {}
    try:
        subnets = find_subnets(client, region, subnet_id, problems) if launch else []
        found = look_up(client, entries, vpc_id or (subnets[0]["vpc_id"] if subnets else None))
        if launch:
            types = find_types(client, region, [e["instance_type"] for e in entries if e["instance_type"]], problems)
            launching = [
                e for e in entries if not [i for i in found["instances"] if is_owned_by(i, e["owner"], e["name"])]
            ]
            for request in sorted({e["image"] for e in launching if e["image"]}):
                images[request] = find_image(client, request)
            wanted = {e["name"]: e["instance_type"] for e in launching if e["instance_type"] in types}
            subnet, chosen = place(module, client, region, subnets, wanted, bool(subnet_id), problems)
        results = [describe_owner(module, entry, found, region, images, types, launch) for entry in entries]
        # An owner with an instance launches nothing; one without an instance type takes the launch's subnet.
        starting = {e["name"] for e in launching} if launch else set()
        for result in results:
            result["subnet"] = chosen.get(result["name"], subnet if result["name"] in starting else None)
        if launch and not [p for r in results for p in r["problems"]] and not problems:
            problems += quota_problems(module, client, entries, results, types, region)
        if images_of_instances:
            images_made_from(client, results)
    except LabcloudAWSError as e:
        module.fail_json_aws_error(e)
    for result in results:
        problems.extend(result["problems"])
    return {
        "account": account,
        "region": region,
        "problems": problems,
        "subnet": subnet,
        "instance_types": types,
        "owners": results,
        "found": found,
        "client": client,
    }
