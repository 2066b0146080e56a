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
- CopyImage: moto registers a copy with an invented 15 GiB snapshot and ignores Encrypted,
  KmsKeyId, CopyImageTags, TagSpecifications and ClientToken. Here every snapshot of the source is
  copied for real (a new snapshot per mapping, its data copied in the store), encrypted with the
  named key (or, for Encrypted without a key, the account's default EBS key; an encrypted
  source's key when it is the caller's own in this region), and the copy is `pending` until the
  data is there, then `available`; `failed` when the caller may not use the source's or the
  target's key (EC2 checks the key after answering). A source image the caller may not see is
  InvalidAMIID.NotFound, as on EC2.
- ModifyImageAttribute: an image whose snapshots are encrypted with the AWS-managed key cannot be
  shared (InvalidParameter), as on EC2.
- The base image (the cached Debian tree) is registered in every region when the local cloud
  starts, public and owned by Debian's account, as Debian's own AMIs are on AWS.
"""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localcloud.api import kms
from localcloud.api.patching import controller, ec2_error, flag, original, replace, replace_property
from localcloud.api.volumes import backend_create_snapshot, find_snapshot
from localcloud.config import DEBIAN_ACCOUNT_ID

AWS_MANAGED_SHARE_REFUSED = "Snapshots encrypted with the AWS Managed CMK can't be shared. Specify another snapshot."
BASE_IMAGE_NAME = "debian-12-amd64-{date}"
BASE_ROOT_DEVICE = "/dev/xvda"
BASE_ROOT_SIZE = 8


def install() -> None:
    from moto.ec2.models import amis
    from moto.ec2.responses.amis import AmisResponse

    replace(amis.AmiBackend, "describe_images", describe_images)
    replace(amis.AmiBackend, "create_image", create_image)
    replace(amis.AmiBackend, "modify_image_attribute", modify_image_attribute)
    replace(amis.AmiBackend, "copy_image", copy_image)
    replace(AmisResponse, "copy_image", response_copy_image)
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
    if launch_permissions_to_add and any(
        kms.is_aws_managed(snapshot.kms_key_id, snapshot.owner_id, self.region_name)
        for snapshot in image_snapshots(self.amis[ami_id])
        if snapshot.encrypted
    ):
        raise ec2_error("InvalidParameter", AWS_MANAGED_SHARE_REFUSED)
    return original("AmiBackend", "modify_image_attribute")(
        self, ami_id, launch_permissions_to_add, launch_permissions_to_remove
    )


def image_snapshots(image: Any) -> list[Any]:
    """The snapshots behind an image's block device mappings (in whichever account holds them)."""
    region = image.ec2_backend.region_name
    found = []
    for mapping in image.block_device_mappings:
        snapshot_id = mapping.get("Ebs", {}).get("SnapshotId")
        snapshot = find_snapshot(region, snapshot_id) if snapshot_id else None
        if snapshot is not None:
            found.append(snapshot)
    return found


def image_block_device_mappings(self: Any) -> list[dict[str, Any]]:
    """The mappings recorded when the image was made here, else moto's own."""
    mappings = getattr(self, "localcloud_mappings", None)
    if mappings is not None:
        return mappings
    return original("Ami", "block_device_mappings")(self)


def check_unique_name(backend: Any, name: str) -> None:
    """An account's image names are unique in a region (moto allows duplicates)."""
    taken = next((i.id for i in backend.amis.values() if i.name == name), None)
    if taken is not None:
        raise ec2_error("InvalidAMIName.Duplicate", f"AMI name {name} is already in use by AMI {taken}")


def image_and_snapshot_tags(tag_specifications: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    """The image's and the snapshots' tags of a request's TagSpecifications."""
    from moto.ec2.exceptions import InvalidTaggableResourceType

    image_tags: dict[str, str] = {}
    snapshot_tags: dict[str, str] = {}
    for spec in tag_specifications:
        target = {"image": image_tags, "snapshot": snapshot_tags}.get(spec["ResourceType"])
        if target is None:
            raise InvalidTaggableResourceType(spec["ResourceType"])
        target.update({t["Key"]: t["Value"] for t in spec.get("Tags", [])})
    return image_tags, snapshot_tags


def create_image(
    self: Any,
    instance_id: str,
    name: str,
    description: str,
    tag_specifications: list[dict[str, Any]],
    no_reboot: bool = False,
) -> Any:
    """CreateImage: real snapshots of every volume, tagged, and a pending image until they are copied."""
    from moto.ec2.models.amis import Ami
    from moto.ec2.utils import random_ami_id

    instance = self.get_instance(instance_id)
    if instance.state not in ("running", "stopped"):
        raise ec2_error("IncorrectState", f"The instance '{instance_id}' is not in a state to create an image.")
    check_unique_name(self, name)
    image_tags, snapshot_tags = image_and_snapshot_tags(tag_specifications)
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


def copy_target_key(backend: Any, source: Any, encrypted: bool, kms_key_id: str | None) -> str | None:
    """The key of a snapshot's copy, as CopyImage chooses it (None: unencrypted)."""
    if kms_key_id:
        return kms.key_arn(kms_key_id, backend.account_id, backend.region_name) or kms_key_id
    own = source.owner_id == backend.account_id and source.ec2_backend.region_name == backend.region_name
    if source.encrypted and own and source.kms_key_id:
        return source.kms_key_id
    if encrypted or source.encrypted:
        return kms.ebs_default_key_arn(backend)
    return None


def copy_image(
    self: Any,
    source_image_id: str,
    source_region: str,
    name: str | None = None,
    description: str | None = None,
    encrypted: bool = False,
    kms_key_id: str | None = None,
    copy_image_tags: bool = False,
    tag_specifications: list[dict[str, Any]] | None = None,
) -> Any:
    """CopyImage: new snapshots with their data copied, encrypted as asked, and a pending image until then."""
    from moto.ec2.exceptions import InvalidAMIIdError, InvalidParameterDependency
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import Ami
    from moto.ec2.models.elastic_block_store import Snapshot
    from moto.ec2.utils import random_ami_id, random_snapshot_id

    if kms_key_id and not encrypted:
        raise InvalidParameterDependency("KmsKeyId", "Encrypted")
    found = ec2_backends[self.account_id][source_region].describe_images(ami_ids=[source_image_id])
    if not found:
        raise InvalidAMIIdError(source_image_id)
    source = found[0]
    check_unique_name(self, name or source.name)
    image_tags, snapshot_tags = image_and_snapshot_tags(tag_specifications or [])
    if copy_image_tags and source.owner_id == self.account_id:
        image_tags = {tag["key"]: tag["value"] for tag in source.get_tags()} | image_tags
    ami = Ami(
        self,
        random_ami_id(),
        source_ami=source,
        name=name,
        description=description,
        root_device_type=source.root_device_type,
        root_device_name=source.root_device_name,
        hypervisor=source.hypervisor,
        boot_mode=source.boot_mode,
        region_name=f"{self.region_name}a",
    )
    self.snapshots.pop(ami.ebs_snapshot.id, None)
    ami.source_image_id = source.id
    ami.source_image_region = source_region
    mappings = []
    pairs = []
    keys_needed = []
    for mapping in copy.deepcopy(source.block_device_mappings):
        ebs = mapping.get("Ebs")
        original_snapshot = find_snapshot(source_region, ebs["SnapshotId"]) if ebs and ebs.get("SnapshotId") else None
        if original_snapshot is None:
            mappings.append(mapping)
            continue
        key = copy_target_key(self, original_snapshot, encrypted, kms_key_id)
        snapshot = Snapshot(
            self,
            random_snapshot_id(),
            volume=original_snapshot.volume,
            description=f"Copied for DestinationAmi {ami.id} from SourceAmi {source.id} "
            f"for SourceSnapshot {original_snapshot.id}",
            encrypted=key is not None,
            kms_key_id=key,
            from_ami=ami.id,
        )
        snapshot.add_tags(snapshot_tags)
        self.snapshots[snapshot.id] = snapshot
        pairs.append((snapshot, original_snapshot))
        keys_needed += [k for k in (original_snapshot.kms_key_id if original_snapshot.encrypted else None, key) if k]
        if mapping["DeviceName"] == source.root_device_name:
            ami.ebs_snapshot = snapshot
        ebs.update(SnapshotId=snapshot.id, Encrypted=key is not None)
        ebs.pop("KmsKeyId", None)
        if key:
            ebs["KmsKeyId"] = key
        mappings.append(mapping)
    ami.localcloud_mappings = mappings
    ami.add_tags(image_tags)
    self.amis[ami.id] = ami
    usable = all(kms.usable_by(key, self.account_id, self.region_name) for key in keys_needed)
    controller().image_copied(ami, pairs, usable)
    return ami


def response_copy_image(self: Any) -> Any:
    """CopyImage's request parameters: encryption, tags and the client token too."""
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    token = self._get_param("ClientToken")
    tokens = self.ec2_backend.__dict__.setdefault("localcloud_copy_tokens", {})
    if token and tokens.get(token) in self.ec2_backend.amis:
        return ActionResult({"ImageId": tokens[token]})
    image = self.ec2_backend.copy_image(
        self._get_param("SourceImageId"),
        self._get_param("SourceRegion"),
        self._get_param("Name"),
        self._get_param("Description"),
        encrypted=flag(self._get_param("Encrypted", "false")),
        kms_key_id=self._get_param("KmsKeyId"),
        copy_image_tags=flag(self._get_param("CopyImageTags", "false")),
        tag_specifications=self._get_param("TagSpecifications", []),
    )
    if token:
        tokens[token] = image.id
    return ActionResult({"ImageId": image.id})


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
