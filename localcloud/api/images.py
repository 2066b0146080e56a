"""Images: visible across accounts as on EC2, made from real disks, and the local cloud's base image.

- In moto an account sees only its own images, so a shared or public image of another account
  cannot be described or launched. Here DescribeImages (and so RunInstances) sees an account's
  own images plus the public ones and those shared with it, and only the owner may change an
  image's launch permissions.
- CreateImage: moto raises NotImplementedError for snapshot tag specifications, ignores NoReboot
  and duplicate names, and invents a 15 GiB snapshot. Here every volume of the instance is
  snapshotted for real, snapshot tags apply, the image is `pending` until its data is copied,
  and a duplicate name fails with InvalidAMIName.Duplicate.
- DeregisterImage: DeleteAssociatedSnapshots is honoured.
- The base image (the cached Debian tree) is registered in every region when the local cloud
  starts, public and owned by Debian's account, as Debian's own AMIs are on AWS.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localcloud.api.patching import controller, ec2_error, flag, original, replace, replace_property
from localcloud.api.volumes import backend_create_snapshot
from localcloud.config import DEBIAN_ACCOUNT_ID

BASE_IMAGE_NAME = "debian-12-amd64-{date}"
BASE_ROOT_DEVICE = "/dev/xvda"
BASE_ROOT_SIZE = 8


def install() -> None:
    from moto.ec2.models import amis
    from moto.ec2.responses.amis import AmisResponse

    replace(amis.AmiBackend, "describe_images", describe_images)
    replace(amis.AmiBackend, "create_image", create_image)
    replace(amis.AmiBackend, "modify_image_attribute", modify_image_attribute)
    replace(AmisResponse, "create_image", response_create_image)
    replace(AmisResponse, "deregister_image", response_deregister_image)
    replace_property(amis.Ami, "block_device_mappings", image_block_device_mappings)


def visible_to(image: Any, account_id: str) -> bool:
    """Whether an account may see and launch an image."""
    if image.owner_id == account_id or image.is_public:
        return True
    return any(p.get("UserId") == account_id for p in image.launch_permissions)


def region_images(region: str) -> list[Any]:
    """Every image registered in a region, in every account."""
    from moto.ec2.models import ec2_backends

    found = []
    for account_id in list(ec2_backends.keys()):
        regions = ec2_backends[account_id]
        backend = regions.get(region) if region in regions else None
        if backend is not None:
            found.extend(backend.amis.values())
    return found


def describe_images(
    self: Any,
    ami_ids: list[str] | None = None,
    filters: dict[str, Any] | None = None,
    exec_users: list[str] | None = None,
    owners: list[str] | None = None,
) -> list[Any]:
    """DescribeImages over the caller's own, public and shared images (moto sees only its own)."""
    from moto.ec2.utils import generic_filter

    account = self.account_id
    images = [i for i in region_images(self.region_name) if visible_to(i, account)]
    if ami_ids:
        malformed = [i for i in ami_ids if not i.startswith("ami-")]
        if malformed:
            from moto.ec2.exceptions import MalformedAMIIdError

            raise MalformedAMIIdError(malformed)
        images = [i for i in images if i.id in ami_ids]
        if not images and not any(i in self.deleted_amis for i in ami_ids):
            from moto.ec2.exceptions import InvalidAMIIdError

            raise InvalidAMIIdError(ami_ids)
        return images
    if exec_users:
        users = {account if u == "self" else u for u in exec_users}
        images = [i for i in images if i.is_public or any(p.get("UserId") in users for p in i.launch_permissions)]
    if owners:
        wanted = {account if o == "self" else o for o in owners}
        images = [i for i in images if i.owner_id in wanted or i.owner_alias in wanted]
    if filters:
        images = generic_filter(filters, images)
    return images


def modify_image_attribute(
    self: Any,
    ami_id: str,
    launch_permissions_to_add: list[dict[str, str]],
    launch_permissions_to_remove: list[dict[str, str]],
) -> None:
    """Only the owner changes who may launch an image."""
    if ami_id not in self.amis:
        visible = [i for i in region_images(self.region_name) if i.id == ami_id and visible_to(i, self.account_id)]
        if visible:
            raise ec2_error("AuthFailure", f"Not authorized for image:{ami_id}")
        from moto.ec2.exceptions import InvalidAMIIdError

        raise InvalidAMIIdError(ami_id)
    return original("AmiBackend", "modify_image_attribute")(
        self, ami_id, launch_permissions_to_add, launch_permissions_to_remove
    )


def image_block_device_mappings(self: Any) -> list[dict[str, Any]]:
    """The mappings recorded when the image was made here, else moto's own."""
    mappings = getattr(self, "localcloud_mappings", None)
    if mappings is not None:
        return mappings
    return original("Ami", "block_device_mappings")(self)


def create_image(
    self: Any,
    instance_id: str,
    name: str,
    description: str,
    tag_specifications: list[dict[str, Any]],
    no_reboot: bool = False,
) -> Any:
    """CreateImage: real snapshots of every volume, tagged, and a pending image until they are copied."""
    from moto.ec2.exceptions import InvalidTaggableResourceType
    from moto.ec2.models.amis import Ami
    from moto.ec2.utils import random_ami_id

    instance = self.get_instance(instance_id)
    if instance.state not in ("running", "stopped"):
        raise ec2_error("IncorrectState", f"The instance '{instance_id}' is not in a state to create an image.")
    if any(i.name == name for i in self.amis.values()):
        raise ec2_error(
            "InvalidAMIName.Duplicate",
            f"AMI name {name} is already in use by AMI " + next(i.id for i in self.amis.values() if i.name == name),
        )
    image_tags: dict[str, str] = {}
    snapshot_tags: dict[str, str] = {}
    for spec in tag_specifications:
        target = {"image": image_tags, "snapshot": snapshot_tags}.get(spec["ResourceType"])
        if target is None:
            raise InvalidTaggableResourceType(spec["ResourceType"])
        target.update({t["Key"]: t["Value"] for t in spec.get("Tags", [])})
    ami = Ami(
        self,
        random_ami_id(),
        instance=instance,
        name=name,
        description=description,
        root_device_type="ebs",
        root_device_name=instance.root_device_name,
        virtualization_type="hvm",
        hypervisor="xen",
        region_name=instance.placement.zone,
    )
    self.snapshots.pop(ami.ebs_snapshot.id, None)
    mappings = []
    pairs = []
    for device, mapping in sorted(instance.get_block_device_mapping):
        volume = self.get_volume(mapping.volume_id)
        snapshot = backend_create_snapshot(
            self, volume.id, f"Created by CreateImage({instance_id}) for {ami.id}", from_ami=ami.id
        )
        snapshot.add_tags(snapshot_tags)
        pairs.append((snapshot, volume))
        if device == instance.root_device_name:
            ami.ebs_snapshot = snapshot
        ebs = {
            "SnapshotId": snapshot.id,
            "VolumeSize": volume.size,
            "VolumeType": volume.volume_type or "gp2",
            "DeleteOnTermination": bool(mapping.delete_on_termination),
            "Encrypted": bool(volume.encrypted),
        }
        if volume.kms_key_id:
            ebs["KmsKeyId"] = volume.kms_key_id
        mappings.append({"DeviceName": device, "Ebs": ebs})
    ami.localcloud_mappings = mappings
    ami.add_tags(image_tags)
    self.amis[ami.id] = ami
    controller().image_requested(ami, instance, pairs, no_reboot)
    return ami


def response_create_image(self: Any) -> Any:
    """CreateImage's request parameters, including NoReboot and snapshot tags."""
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    image = self.ec2_backend.create_image(
        self._get_param("InstanceId"),
        self._get_param("Name"),
        self._get_param("Description", ""),
        tag_specifications=self._get_param("TagSpecifications", []),
        no_reboot=flag(self._get_param("NoReboot", "false")),
    )
    return ActionResult({"ImageId": image.id})


def response_deregister_image(self: Any) -> Any:
    """DeregisterImage, deleting the image's snapshots too when DeleteAssociatedSnapshots is set."""
    ami_id = self._get_param("ImageId")
    delete_snapshots = flag(self._get_param("DeleteAssociatedSnapshots", "false"))
    image = self.ec2_backend.amis.get(ami_id)
    snapshot_ids = (
        [m["Ebs"]["SnapshotId"] for m in image.block_device_mappings if m.get("Ebs", {}).get("SnapshotId")]
        if image is not None
        else []
    )
    result = original("AmisResponse", "deregister_image")(self)
    if delete_snapshots:
        for snapshot_id in snapshot_ids:
            if snapshot_id in self.ec2_backend.snapshots:
                self.ec2_backend.delete_snapshot(snapshot_id)
                controller().snapshot_deleted(snapshot_id)
    return result


def register_base_image(region: str, rootfs: Path) -> str:
    """Register the cached Debian tree in a region, public and owned by Debian's account; returns its ID."""
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import Ami

    backend = ec2_backends[DEBIAN_ACCOUNT_ID][region]
    image_id = "ami-" + hashlib.sha256(f"{region}:{rootfs}".encode()).hexdigest()[:17]
    if image_id in backend.amis:
        return image_id
    built = datetime.fromtimestamp(rootfs.stat().st_mtime, tz=UTC)
    stamp = built.strftime("%Y%m%d-%H%M")
    image = Ami(
        backend,
        image_id,
        name=BASE_IMAGE_NAME.format(date=stamp),
        description=f"Debian 12 (local cloud base image, {stamp})",
        owner_id=DEBIAN_ACCOUNT_ID,
        public=True,
        virtualization_type="hvm",
        architecture="x86_64",
        root_device_type="ebs",
        root_device_name=BASE_ROOT_DEVICE,
        hypervisor="xen",
        state="available",
        region_name=f"{region}a",
        boot_mode="uefi-preferred",
        creation_date=built,
    )
    backend.snapshots.pop(image.ebs_snapshot.id, None)
    volume = backend.create_volume(size=BASE_ROOT_SIZE, zone_name=f"{region}a")
    snapshot = original("EBSBackend", "create_snapshot")(
        backend, volume.id, f"Debian 12 root for {image_id}", from_ami=image_id
    )
    backend.volumes.pop(volume.id, None)
    image.ebs_snapshot = snapshot
    image.localcloud_mappings = [
        {
            "DeviceName": BASE_ROOT_DEVICE,
            "Ebs": {
                "SnapshotId": snapshot.id,
                "VolumeSize": BASE_ROOT_SIZE,
                "VolumeType": "gp2",
                "DeleteOnTermination": True,
                "Encrypted": False,
            },
        }
    ]
    controller().store.register_external_snapshot(snapshot.id, rootfs)
    backend.amis[image_id] = image
    return image_id
