"""Where moto's EC2 falls short of what the playbooks need, and the hooks to the real machines.

Each patch says what moto 5.2 does and what EC2 does instead:

- Public addresses: moto hands out random addresses in 54.214.0.0/16 (which belong to someone)
  and Elastic IPs in 127.0.0.0/8;
  here they come from the local cloud's own pool (config.PUBLIC_POOL).
- Stop and start: moto replaces an associated Elastic IP with a new auto-assigned address; on
  EC2 the Elastic IP stays.
- RunInstances: moto ignores ClientToken (a retried call launches a second instance), ignores
  DisableApiTermination at launch, and ignores the image's block device mappings (it makes an
  8 GiB root at /dev/sda1 whatever the image says). Here the token is honoured, termination
  protection is kept, the image's mappings are merged with the request's the way EC2 merges
  them, and a root volume smaller than the image's snapshot is refused.
- Images: in moto an account sees only its own images, so a shared or public image of another
  account cannot be described or launched. Here DescribeImages (and so RunInstances) sees an
  account's own images plus the public ones and those shared with it, and only the owner may
  change an image's launch permissions.
- CreateImage: moto raises NotImplementedError for snapshot tag specifications, ignores NoReboot
  and duplicate names, and invents a 15 GiB snapshot. Here every volume of the instance is
  snapshotted for real, snapshot tags apply, the image is `pending` until its data is copied,
  and a duplicate name fails with InvalidAMIName.Duplicate.
- DeregisterImage: DeleteAssociatedSnapshots is honoured.
- Snapshots: moto drops the volume's KMS key; here the snapshot keeps it.
- DetachVolume: moto fails with an internal error when InstanceId is left out (EC2 allows it).
- Instances, volumes and snapshots: each change with a physical side calls the controller
  (localcloud.cloud.LocalCloud), which does it to the machine or the disk.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Callable
from datetime import UTC
from typing import Any

from localcloud.cloud import LocalCloud, find_instance
from localcloud.config import DEBIAN_ACCOUNT_ID

CLOUD: LocalCloud | None = None
_ORIGINALS: dict[str, Callable] = {}
# The block device mappings exactly as the current RunInstances request gave them (moto's parser
# fills absent fields with defaults, which would hide what the image should supply).
REQUEST = threading.local()

BASE_IMAGE_NAME = "debian-12-amd64-{date}"
BASE_ROOT_DEVICE = "/dev/xvda"
BASE_ROOT_SIZE = 8


def install(cloud: LocalCloud) -> None:
    """Apply every patch, routing the physical side of requests to the given controller."""
    global CLOUD
    CLOUD = cloud
    if _ORIGINALS:
        return
    from moto.ec2.models import amis, elastic_block_store, elastic_ip_addresses, elastic_network_interfaces
    from moto.ec2.models.instances import Instance, InstanceBackend
    from moto.ec2.responses.amis import AmisResponse
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore
    from moto.ec2.responses.instances import InstanceResponse

    elastic_network_interfaces.random_public_ip = allocate_public_ip
    elastic_ip_addresses.random_ip = allocate_public_ip

    replace(Instance, "start", instance_start)
    replace(Instance, "stop", instance_stop)
    replace(Instance, "reboot", instance_reboot)
    replace(Instance, "terminate", instance_terminate)
    replace(InstanceBackend, "run_instances", backend_run_instances)
    replace(InstanceResponse, "run_instances", response_run_instances)

    replace(amis.AmiBackend, "describe_images", describe_images)
    replace(amis.AmiBackend, "create_image", create_image)
    replace(amis.AmiBackend, "modify_image_attribute", modify_image_attribute)
    replace(AmisResponse, "create_image", response_create_image)
    replace(AmisResponse, "deregister_image", response_deregister_image)
    _ORIGINALS["Ami.block_device_mappings"] = amis.Ami.block_device_mappings
    amis.Ami.block_device_mappings = property(image_block_device_mappings)

    replace(elastic_block_store.EBSBackend, "create_snapshot", backend_create_snapshot)
    replace(elastic_block_store.EBSBackend, "attach_volume", backend_attach_volume)
    replace(elastic_block_store.EBSBackend, "detach_volume", backend_detach_volume)
    replace(elastic_block_store.EBSBackend, "delete_volume", backend_delete_volume)
    replace(ElasticBlockStore, "create_snapshot", response_create_snapshot)
    replace(ElasticBlockStore, "copy_snapshot", response_copy_snapshot)
    replace(ElasticBlockStore, "delete_snapshot", response_delete_snapshot)


def replace(owner: type, name: str, function: Callable) -> None:
    """Swap a method, keeping the original for the patch to call."""
    _ORIGINALS[f"{owner.__name__}.{name}"] = getattr(owner, name)
    setattr(owner, name, function)


def original(owner: str, name: str) -> Callable:
    return _ORIGINALS[f"{owner}.{name}"]


def original_stop(instance: Any) -> Any:
    """moto's own stop (state and addresses only), for a machine that powered itself off."""
    return original("Instance", "stop")(instance)


def ec2_error(code: str, message: str) -> Exception:
    from moto.ec2.exceptions import EC2ClientError

    return EC2ClientError(code, message)


# ---- addresses ------------------------------------------------------------------------------


def allocate_public_ip() -> str:
    return CLOUD.addresses.allocate()


# ---- instances ------------------------------------------------------------------------------


def instance_start(self: Any) -> Any:
    """StartInstances: a stopped instance becomes pending and its machine boots."""
    if self.state in ("stopping", "shutting-down", "terminated"):
        raise ec2_error(
            "IncorrectInstanceState", f"The instance '{self.id}' is not in a state from which it can be started."
        )
    if self.state in ("running", "pending"):
        return copy.copy(self._state)
    previous = original("Instance", "start")(self)
    keep_elastic_addresses(self)
    CLOUD.instance_starting(self)
    return previous


def instance_stop(self: Any) -> Any:
    """StopInstances: a running instance becomes stopping until its machine has powered off."""
    if self.state in ("terminated", "shutting-down"):
        raise ec2_error(
            "IncorrectInstanceState", f"The instance '{self.id}' is not in a state from which it can be stopped."
        )
    if self.state in ("stopped", "stopping"):
        return copy.copy(self._state)
    previous = original("Instance", "stop")(self)
    keep_elastic_addresses(self)
    CLOUD.instance_stopping(self)
    return previous


def keep_elastic_addresses(instance: Any) -> None:
    """An associated Elastic IP stays through stop and start (moto swaps in an auto-assigned one)."""
    for address in instance.ec2_backend.addresses:
        if address.eni is not None and address.eni.instance is instance:
            address.eni.public_ip = address.public_ip


def instance_reboot(self: Any) -> None:
    if self.state != "running":
        raise ec2_error("IncorrectState", f"The instance '{self.id}' is not in the running state.")
    original("Instance", "reboot")(self)
    CLOUD.instance_rebooting(self)


def instance_terminate(self: Any) -> Any:
    if self.state == "terminated":
        return copy.copy(self._state)
    CLOUD.instance_terminating(self)
    result = original("Instance", "terminate")(self)
    CLOUD.instance_terminated(self)
    return result


def response_run_instances(self: Any) -> Any:
    """Honour ClientToken and DisableApiTermination around moto's RunInstances."""
    from moto.core.responses import ActionResult

    token = self._get_param("ClientToken")
    if token:
        for reservation in list(self.ec2_backend.reservations.values()):
            if any(i.client_token == token for i in reservation.instances):
                return ActionResult(reservation)
    REQUEST.mappings = self._get_param("BlockDeviceMappings", [])
    try:
        result = original("InstanceResponse", "run_instances")(self)
    finally:
        REQUEST.mappings = None
    protect = str(self._get_param("DisableApiTermination", "false")).lower() == "true"
    for instance in result.result.instances:
        instance.disable_api_termination = protect
        if not token:
            instance.client_token = None
    return result


def merged_block_devices(
    image: Any, requested: list[dict[str, Any]], account_id: str
) -> tuple[list[dict], dict[str, str]]:
    """Merge an image's mappings with a request's, as EC2 does; returns them and foreign snapshots."""
    merged: dict[str, dict[str, Any]] = {}
    for mapping in image.block_device_mappings:
        entry = copy.deepcopy(mapping)
        entry["Ebs"].setdefault("DeleteOnTermination", True)
        merged[entry["DeviceName"]] = entry
    for mapping in requested:
        device = mapping["DeviceName"]
        if "NoDevice" in mapping:
            merged.pop(device, None)
            continue
        if device in merged and "Ebs" in mapping:
            base = merged[device]["Ebs"]
            wanted = {k: v for k, v in mapping["Ebs"].items() if v is not None}
            snapshot_size = base.get("VolumeSize")
            if "VolumeSize" in wanted and snapshot_size and int(wanted["VolumeSize"]) < int(snapshot_size):
                raise ec2_error(
                    "InvalidBlockDeviceMapping",
                    f"Volume of size {wanted['VolumeSize']}GB is smaller than snapshot "
                    f"'{base.get('SnapshotId')}', expect size >= {snapshot_size}GB",
                )
            base.update(wanted)
        else:
            entry = copy.deepcopy(mapping)
            entry.setdefault("Ebs", {}).setdefault("DeleteOnTermination", True)
            merged[device] = entry
    foreign = {}
    for device, entry in merged.items():
        ebs = entry.get("Ebs", {})
        snapshot_id = ebs.get("SnapshotId")
        if snapshot_id and image.owner_id != account_id:
            foreign[device] = ebs.pop("SnapshotId")
        if "VolumeSize" in ebs:
            ebs["VolumeSize"] = int(ebs["VolumeSize"])
        ebs["Encrypted"] = str(ebs.get("Encrypted", "false")).lower() == "true"
        ebs["DeleteOnTermination"] = str(ebs.get("DeleteOnTermination", "false")).lower() == "true"
        for key in ("VolumeType", "Iops", "KmsKeyId", "SnapshotId"):
            ebs.setdefault(key, None)
    return list(merged.values()), foreign


def backend_run_instances(
    self: Any, image_id: str, count: int, user_data: Any, security_group_names: list[str], **kwargs: Any
) -> Any:
    """RunInstances with the image's block devices, then boot a machine per instance."""
    images = self.describe_images(ami_ids=[image_id]) if image_id else []
    if not images or images[0].id != image_id:
        raise ec2_error("InvalidAMIID.NotFound", f"The image id '[{image_id}]' does not exist")
    image = images[0]
    requested = getattr(REQUEST, "mappings", None) or []
    kwargs.pop("block_device_mappings", None)
    mappings, foreign = merged_block_devices(image, requested, self.account_id)
    kwargs["block_device_mappings"] = mappings
    if not kwargs.get("subnet_id") and not kwargs.get("nics"):
        # EC2 puts an instance launched without a subnet into the default subnet of its zone;
        # moto would treat it as EC2-Classic and give it a random 10.x address.
        zone = kwargs.get("placement") or f"{self.region_name}a"
        subnet = self.get_default_subnets().get(zone)
        if subnet is not None:
            kwargs["subnet_id"] = subnet.id
    reservation = original("InstanceBackend", "run_instances")(
        self, image_id, count, user_data, security_group_names, **kwargs
    )
    for instance in reservation.instances:
        instance.root_device_name = image.root_device_name
        for device, snapshot_id in foreign.items():
            mapping = instance.block_device_mapping.get(device)
            if mapping is not None:
                self.get_volume(mapping.volume_id).snapshot_id = snapshot_id
        CLOUD.instance_launched(instance)
    return reservation


# ---- images ---------------------------------------------------------------------------------


def visible_to(image: Any, account_id: str) -> bool:
    """Whether an account may see and launch an image."""
    if image.owner_id == account_id or image.is_public:
        return True
    return any(p.get("UserId") == account_id for p in image.launch_permissions)


def region_images(region: str) -> list[Any]:
    """Every image registered in a region, in every account."""
    from moto.ec2.models import ec2_backends

    ensure_base_image(region)
    found = []
    for account_id in list(ec2_backends.keys()):
        backend = ec2_backends[account_id].get(region) if region in ec2_backends[account_id] else None
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
    mappings = getattr(self, "localcloud_mappings", None)
    if mappings is not None:
        return mappings
    return _ORIGINALS["Ami.block_device_mappings"].fget(self)


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
    CLOUD.image_requested(ami, instance, pairs, no_reboot)
    return ami


def response_create_image(self: Any) -> Any:
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    image = self.ec2_backend.create_image(
        self._get_param("InstanceId"),
        self._get_param("Name"),
        self._get_param("Description", ""),
        tag_specifications=self._get_param("TagSpecifications", []),
        no_reboot=str(self._get_param("NoReboot", "false")).lower() == "true",
    )
    return ActionResult({"ImageId": image.id})


def response_deregister_image(self: Any) -> Any:
    """DeregisterImage, deleting the image's snapshots too when DeleteAssociatedSnapshots is set."""
    ami_id = self._get_param("ImageId")
    delete_snapshots = str(self._get_param("DeleteAssociatedSnapshots", "false")).lower() == "true"
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
                CLOUD.snapshot_deleted(snapshot_id)
    return result


def ensure_base_image(region: str) -> None:
    """Register the cached Debian image in a region, public and owned by Debian's account."""
    from moto.ec2.models import ec2_backends
    from moto.ec2.models.amis import Ami

    if CLOUD is None or CLOUD.base_rootfs is None:
        return
    backend = ec2_backends[DEBIAN_ACCOUNT_ID][region]
    image_id = "ami-" + hashlib.sha256(f"{region}:{CLOUD.base_rootfs}".encode()).hexdigest()[:17]
    if image_id in backend.amis:
        return
    from datetime import datetime

    built = datetime.fromtimestamp(CLOUD.base_rootfs.stat().st_mtime, tz=UTC)
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
    CLOUD.store.register_external_snapshot(snapshot.id, CLOUD.base_rootfs)
    backend.amis[image_id] = image


# ---- volumes and snapshots -------------------------------------------------------------------


def backend_create_snapshot(
    self: Any, volume_id: str, description: str, owner_id: str | None = None, from_ami: str | None = None
) -> Any:
    """CreateSnapshot keeping the volume's KMS key (moto drops it)."""
    snapshot = original("EBSBackend", "create_snapshot")(self, volume_id, description, owner_id, from_ami)
    snapshot.kms_key_id = snapshot.volume.kms_key_id
    return snapshot


def backend_attach_volume(
    self: Any, volume_id: str, instance_id: str, device_path: str, delete_on_termination: bool = False
) -> Any:
    attachment = original("EBSBackend", "attach_volume")(
        self, volume_id, instance_id, device_path, delete_on_termination
    )
    if attachment is not None:
        CLOUD.volume_attached(attachment.volume, attachment.instance, device_path)
    return attachment


def backend_detach_volume(self: Any, volume_id: str, instance_id: str | None, device_path: str | None) -> Any:
    """DetachVolume (moto needs the instance ID, which EC2 takes from the attachment when it is left out)."""
    volume = self.get_volume(volume_id)
    if instance_id is None and volume.attachment is not None:
        instance_id = volume.attachment.instance.id
    attachment = original("EBSBackend", "detach_volume")(self, volume_id, instance_id, device_path)
    CLOUD.volume_detached(attachment.volume, attachment.instance)
    return attachment


def backend_delete_volume(self: Any, volume_id: str) -> Any:
    volume = original("EBSBackend", "delete_volume")(self, volume_id)
    CLOUD.volume_deleted(volume_id)
    return volume


def response_create_snapshot(self: Any) -> Any:
    result = original("ElasticBlockStore", "create_snapshot")(self)
    snapshot = result.result
    CLOUD.snapshot_requested(snapshot, snapshot.volume)
    return result


def response_copy_snapshot(self: Any) -> Any:
    result = original("ElasticBlockStore", "copy_snapshot")(self)
    snapshot = self.ec2_backend.get_snapshot(result.result["SnapshotId"])
    CLOUD.snapshot_copied(self._get_param("SourceSnapshotId"), snapshot)
    return result


def response_delete_snapshot(self: Any) -> Any:
    snapshot_id = self._get_param("SnapshotId")
    result = original("ElasticBlockStore", "delete_snapshot")(self)
    CLOUD.snapshot_deleted(snapshot_id)
    return result


__all__ = ["find_instance", "install"]
