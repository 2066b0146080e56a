# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Which of the collection's resources are zombies: billed (or in the way) and used by nothing.

Nothing here talks to AWS; the inputs are EC2 descriptions as boto3 returns them. Only resources
tagged ManagedBy with the collection's value are ever zombies. The zombies are found as they will be
once the clean-up is done, so that a second clean-up finds nothing: an instance stopped too long is
terminated, so its Elastic IP, its volumes kept on termination and, when its owner has no other
instance, the owner's key pair and security group are zombies too; an image removed takes its
snapshots with it.

An image version is every image of an owner's project tagged with the version: the image image.yml
made and the copies share.yml made of it (tagged CopyOf), as roles/image/tasks/prune.yml counts them.
The newest version of each owner's project is never a zombie (a terminated VM is relaunched from it);
a shared version (launch permissions, public, or copies made to share it) is held unless forced,
and so is a stopped instance without an available image made from it (its disk would be lost).
"""

from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set, Tuple

from ansible_collections.labcloud.jupyter.plugins.module_utils.cost import LIVE_STATES
from ansible_collections.labcloud.jupyter.plugins.module_utils.cost import as_utc
from ansible_collections.labcloud.jupyter.plugins.module_utils.cost import image_gib
from ansible_collections.labcloud.jupyter.plugins.module_utils.cost import image_snapshots
from ansible_collections.labcloud.jupyter.plugins.module_utils.cost import shared_with
from ansible_collections.labcloud.jupyter.plugins.module_utils.cost import stopped_at
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import COPY_OF_TAG
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import NAME_TAG
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import OWNER_TAG
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import PROJECT_TAG
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import SOURCE_INSTANCE_TAG
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import VERSION_TAG
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import is_managed
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import tag_dict
from ansible_collections.labcloud.jupyter.plugins.module_utils.prices import HOURS_PER_MONTH
from ansible_collections.labcloud.jupyter.plugins.module_utils.prices import PriceTable

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# The order in which zombies are removed: what holds a resource goes before it.
ORDER = ("instance", "elastic-ip", "volume", "image", "snapshot", "key-pair", "security-group")
# What removing each kind means.
ACTIONS = {
    "instance": "terminate",
    "elastic-ip": "release",
    "volume": "delete",
    "image": "deregister",
    "snapshot": "delete",
    "key-pair": "delete",
    "security-group": "delete",
}


def settings_errors(keep: Any, image_days: Any, stopped_days: Any) -> List[str]:
    """Return one message per setting that is not a whole number in its range (empty when all are)."""
    errors = []
    for option, value, least, meaning in (
        ("keep", keep, 1, "the newest image versions of each owner's project to keep"),
        ("image_days", image_days, 0, "the age in days beyond which an image is a zombie (0: any age)"),
        ("stopped_days", stopped_days, 0, "the days an instance may stay stopped (0: any time)"),
    ):
        if isinstance(value, bool) or not str(value).strip().isdigit() or int(str(value).strip()) < least:
            errors.append(f"{option} must be a whole number, {least} or more, of {meaning} (got {value!r})")
    return errors


def zombie(
    kind: str, resource_id: str, tags: Mapping[str, str], reason: str, monthly: Optional[float], **more: Any
) -> Dict[str, Any]:
    """Return one entry of the zombies (or of the held resources)."""
    entry = {
        "kind": kind,
        "id": resource_id,
        "owner": tags.get(OWNER_TAG, ""),
        "project": tags.get(PROJECT_TAG, ""),
        "name": tags.get(NAME_TAG, ""),
        "reason": reason,
        "action": ACTIONS[kind],
        "per_month_usd": None if monthly is None else round(monthly, 6),
    }
    entry.update(more)
    return entry


def image_versions(images: Sequence[Mapping[str, Any]]) -> Dict[Tuple[str, str], List[Dict[str, Any]]]:
    """Return the versions of each (owner, project), newest first: version, created, images, shared_with."""
    versions: Dict[Tuple[str, str, str], Dict[str, Any]] = {}
    for image in images:
        tags = tag_dict(image)
        key = (tags.get(OWNER_TAG, ""), tags.get(PROJECT_TAG, ""), tags.get(VERSION_TAG) or image["ImageId"])
        version = versions.setdefault(
            key,
            {"owner": key[0], "project": key[1], "version": key[2], "created": None, "images": [], "shared_with": []},
        )
        version["images"].append(image)
        created = as_utc(image.get("CreationDate"))
        if created and (version["created"] is None or created < version["created"]):
            version["created"] = created
        version["shared_with"] += shared_with(image)
        if COPY_OF_TAG in tags:
            version["shared_with"].append(f"a copy made to share it ({image['ImageId']})")
    grouped: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}
    for version in versions.values():
        grouped.setdefault((version["owner"], version["project"]), []).append(version)
    for group in grouped.values():
        # A version without a creation date counts as the oldest.
        group.sort(key=lambda v: v["created"] or EPOCH, reverse=True)
    return grouped


def old_images(
    images: Sequence[Mapping[str, Any]], now: datetime, keep: int, image_days: int, force: bool
) -> Tuple[List[Tuple[Mapping[str, Any], str]], List[Tuple[Mapping[str, Any], str]]]:
    """Return the images to remove and the images held (shared), each with why."""
    remove, held = [], []
    for versions in image_versions(images).values():
        for index, version in enumerate(versions):
            if index == 0:
                continue
            age = (now - version["created"]).total_seconds() / 86400 if version["created"] else 0
            reasons = []
            if index >= keep:
                reasons.append(f"version {version['version']} is older than the newest {keep}")
            if image_days and age > image_days:
                reasons.append(f"version {version['version']} is {age:.0f} days old (more than {image_days})")
            if not reasons:
                continue
            if version["shared_with"] and not force:
                grantees = ", ".join(version["shared_with"])
                why = f"{'; '.join(reasons)}, but it is shared with {grantees}: force=true removes it"
                held += [(image, why) for image in version["images"]]
            else:
                remove += [(image, "; ".join(reasons)) for image in version["images"]]
    return remove, held


def find_zombies(
    resources: Mapping[str, List[Mapping[str, Any]]],
    now: datetime,
    prices: PriceTable,
    keep: int = 3,
    image_days: int = 0,
    stopped_days: int = 30,
    force: bool = False,
) -> Dict[str, List[Dict[str, Any]]]:
    """Return the zombies among the collection's resources, in the order of their removal, and the held ones.

    resources holds instances, volumes, snapshots, addresses, images (the account's own, with their
    LaunchPermissions), key_pairs and security_groups as EC2 describes them.
    """
    mine = {kind: [r for r in resources.get(kind, []) if is_managed(tag_dict(r))] for kind in resources}
    zombies: List[Dict[str, Any]] = []
    held: List[Dict[str, Any]] = []
    volumes = {v["VolumeId"]: v for v in resources.get("volumes", [])}

    def volume_monthly(volume: Mapping[str, Any]) -> Optional[float]:
        return prices.volume(volume.get("VolumeType", ""), int(volume.get("Size") or 0))

    # Images first: a stopped instance is terminated only when an image of it outlives the clean-up.
    removed_images, held_images = old_images(mine.get("images", []), now, keep, image_days, force)
    removed = [pair[0] for pair in removed_images]
    removed_ids = {image["ImageId"] for image in removed}
    for image, why in held_images:
        held.append(zombie("image", image["ImageId"], tag_dict(image), why, prices.snapshot(image_gib(image))))
    kept_images = [i for i in resources.get("images", []) if i["ImageId"] not in removed_ids]
    saved = {
        tag_dict(i).get(SOURCE_INSTANCE_TAG)
        for i in kept_images
        if i.get("State") == "available" and is_managed(tag_dict(i))
    }

    terminated: Set[str] = set()
    for instance in mine.get("instances", []):
        if instance["State"]["Name"] != "stopped" or not stopped_days:
            continue
        since = stopped_at(instance)
        days = (now - since).total_seconds() / 86400 if since else None
        if days is None or days <= stopped_days:
            continue
        tags = tag_dict(instance)
        going = [
            volumes[m["Ebs"]["VolumeId"]]
            for m in instance.get("BlockDeviceMappings") or []
            if (m.get("Ebs") or {}).get("DeleteOnTermination") and m["Ebs"].get("VolumeId") in volumes
        ]
        monthly = sum(volume_monthly(v) or 0.0 for v in going)
        reason = f"stopped for {days:.0f} days (more than {stopped_days})"
        if instance["InstanceId"] not in saved and not force:
            held.append(
                zombie("instance", instance["InstanceId"], tags, f"{reason}, but no available image of it exists "
                       "(playbooks/image.yml makes one; force=true terminates it anyway, losing its disk)", monthly)
            )  # fmt: skip
            continue
        terminated.add(instance["InstanceId"])
        zombies.append(
            zombie("instance", instance["InstanceId"], tags, reason, monthly, volumes=[v["VolumeId"] for v in going])
        )

    ipv4 = prices.ipv4()
    for address in mine.get("addresses", []):
        instance_id = address.get("InstanceId")
        if instance_id in terminated:
            reason = f"associated with {instance_id}, which is terminated"
        elif not instance_id and not address.get("AssociationId"):
            reason = "not associated with anything"
        else:
            continue
        zombies.append(
            zombie("elastic-ip", address["AllocationId"], tag_dict(address), f"{address.get('PublicIp')}: {reason}",
                   None if ipv4 is None else ipv4 * HOURS_PER_MONTH, public_ip=address.get("PublicIp"))
        )  # fmt: skip

    for volume in mine.get("volumes", []):
        attached = [a for a in volume.get("Attachments") or [] if a.get("InstanceId")]
        if volume.get("State") == "available" and not attached:
            reason = "attached to no instance"
        elif attached and all(a["InstanceId"] in terminated and not a.get("DeleteOnTermination") for a in attached):
            reason = f"kept when {attached[0]['InstanceId']} is terminated"
        else:
            continue
        zombies.append(
            zombie(
                "volume", volume["VolumeId"], tag_dict(volume), reason, volume_monthly(volume), gib=volume.get("Size")
            )
        )

    for image, why in removed_images:
        zombies.append(
            zombie("image", image["ImageId"], tag_dict(image), why, prices.snapshot(image_gib(image)),
                   name=image.get("Name", ""), snapshots=image_snapshots(image), gib=image_gib(image))
        )  # fmt: skip

    in_use = {snapshot for image in kept_images for snapshot in image_snapshots(image)}
    removed_snapshots = {snapshot: image["ImageId"] for image in removed for snapshot in image_snapshots(image)}
    for snapshot in mine.get("snapshots", []):
        snapshot_id = snapshot["SnapshotId"]
        if snapshot_id in in_use or snapshot.get("State") not in ("completed", "error"):
            continue
        gib = int(snapshot.get("VolumeSize") or 0)
        if snapshot_id in removed_snapshots:
            reason, monthly = f"backs {removed_snapshots[snapshot_id]}, which is removed (billed on its line)", 0.0
        else:
            reason, monthly = "backs no image", prices.snapshot(gib)
        zombies.append(zombie("snapshot", snapshot_id, tag_dict(snapshot), reason, monthly, gib=gib))
    for image in removed:
        for snapshot_id in image_snapshots(image):
            if snapshot_id not in {s["SnapshotId"] for s in mine.get("snapshots", [])} and snapshot_id not in in_use:
                held.append(
                    zombie("snapshot", snapshot_id, {}, f"backs {image['ImageId']}, which is removed, but it is not "
                           "tagged as the collection's: left alone", None)
                )  # fmt: skip

    owners_with_instances = {
        tag_dict(i).get(OWNER_TAG)
        for i in mine.get("instances", [])
        if i["State"]["Name"] in LIVE_STATES and i["InstanceId"] not in terminated
    }
    for kind, key, items in (
        ("key-pair", "KeyName", mine.get("key_pairs", [])),
        ("security-group", "GroupId", mine.get("security_groups", [])),
    ):
        for item in items:
            tags = tag_dict(item)
            if tags.get(OWNER_TAG) in owners_with_instances or item.get("GroupName") == "default":
                continue
            zombies.append(
                zombie(kind, item[key], tags, f"{tags.get(OWNER_TAG) or 'its owner'} has no instance", 0.0,
                       name=item.get("KeyName") or item.get("GroupName") or tags.get(NAME_TAG, ""))
            )  # fmt: skip

    zombies.sort(key=lambda z: (ORDER.index(z["kind"]), z["owner"], z["id"]))
    return {"zombies": zombies, "held": held}


def monthly_total(entries: Sequence[Mapping[str, Any]]) -> float:
    """Return the known monthly amounts of entries, summed."""
    return round(sum(entry["per_month_usd"] or 0.0 for entry in entries), 6)
