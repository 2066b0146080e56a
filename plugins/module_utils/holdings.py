# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the collection holds in a region, described in one go for cost_report and zombies."""

from typing import Any, Dict, List

from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import call
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import describe_all
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import run_each
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import MANAGED_BY_TAG
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import is_managed
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import tag_dict

# EC2 takes at most 200 values per filter and 100 instance IDs per DescribeInstanceStatus page request.
CHUNK = 100


def managed_filter() -> List[Dict[str, Any]]:
    """Return the Describe* filter of the resources tagged as the collection's (any value; compared exactly later)."""
    return [{"Name": "tag-key", "Values": [MANAGED_BY_TAG]}]


def chunks(items: List[str], size: int = CHUNK) -> List[List[str]]:
    """Return the items in lists of at most size (what one filter or ID list of a call may hold)."""
    return [items[start : start + size] for start in range(0, len(items), size)]


def describe(client: Any, region: str, access: bool = False) -> Dict[str, List[Dict[str, Any]]]:
    """Describe the collection's resources in the region, the account's own images and its addresses.

    With access, also the collection's key pairs and security groups. Instances, volumes and snapshots
    are asked for by the ManagedBy tag key (the value is compared later, exactly); volumes attached to
    those instances are added whatever their tags; the images carry their LaunchPermissions.
    """
    reservations = describe_all(
        client, "describe_instances", "Reservations", f"Could not describe the instances in {region}",
        Filters=managed_filter(),
    )  # fmt: skip
    instances = [instance for reservation in reservations for instance in reservation.get("Instances", [])]
    live = [i["InstanceId"] for i in instances if i["State"]["Name"] != "terminated"]
    volumes = describe_all(
        client, "describe_volumes", "Volumes", f"Could not describe the volumes in {region}", Filters=managed_filter()
    )
    known = {v["VolumeId"] for v in volumes}
    for some in chunks(live):
        attached = describe_all(
            client, "describe_volumes", "Volumes", f"Could not describe the volumes of {', '.join(some)}",
            Filters=[{"Name": "attachment.instance-id", "Values": some}],
        )  # fmt: skip
        volumes += [v for v in attached if v["VolumeId"] not in known]
    running = [i["InstanceId"] for i in instances if i["State"]["Name"] == "running"]
    statuses = []
    for some in chunks(running):
        statuses += describe_all(
            client, "describe_instance_status", "InstanceStatuses", "Could not read the instances' status checks",
            InstanceIds=some,
        )  # fmt: skip
    images = describe_all(
        client, "describe_images", "Images", f"Could not describe the images in {region}", Owners=["self"]
    )

    def permissions(image: Dict[str, Any]) -> List[Dict[str, Any]]:
        """Who may launch the image."""
        return call(
            client.describe_image_attribute, f"Could not read who may launch {image['ImageId']}",
            ImageId=image["ImageId"], Attribute="launchPermission",
        ).get("LaunchPermissions", [])  # fmt: skip

    managed_images = [i for i in images if is_managed(tag_dict(i)) and i.get("State") != "deregistered"]
    for image, outcome in zip(managed_images, run_each(permissions, managed_images), strict=True):
        if outcome.error:
            raise outcome.error
        image["LaunchPermissions"] = outcome.result
    described = {
        "instances": instances,
        "volumes": volumes,
        "snapshots": describe_all(
            client,
            "describe_snapshots",
            "Snapshots",
            f"Could not describe the snapshots in {region}",
            OwnerIds=["self"],
            Filters=managed_filter(),
        ),
        "addresses": describe_all(
            client, "describe_addresses", "Addresses", f"Could not describe the addresses in {region}"
        ),
        "images": images,
        "statuses": statuses,
    }
    if access:
        described["key_pairs"] = describe_all(
            client, "describe_key_pairs", "KeyPairs", f"Could not describe the key pairs in {region}",
            Filters=managed_filter(),
        )  # fmt: skip
        described["security_groups"] = describe_all(
            client, "describe_security_groups", "SecurityGroups", f"Could not describe the security groups in {region}",
            Filters=managed_filter(),
        )  # fmt: skip
    return described
