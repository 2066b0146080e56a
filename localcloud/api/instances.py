"""Instances: the life cycle drives real machines, and RunInstances behaves as EC2's does.

- Start, stop, reboot and terminate go through the controller, which boots, powers off or
  reboots the instance's machine; the instance stays `pending` / `stopping` / `shutting-down`
  until the machine has done so.
- RunInstances: moto refuses a block device mapping that changes an image's device without
  giving its size or snapshot (EC2 takes them from the image), ignores ClientToken (a retried
  call launches a second instance), ignores DisableApiTermination at launch, and ignores the
  image's block device mappings (it makes an 8 GiB root at /dev/sda1 whatever the image says).
  Here the token is honoured, termination protection is kept, the image's mappings are merged
  with the request's the way EC2 merges them, and a root volume smaller than the image's
  snapshot is refused.
- An instance launched without a subnet goes into the default subnet of its zone, as on EC2
  (moto would treat it as EC2-Classic and give it a random 10.x address); a type its zone does not
  offer is refused (offerings).
- Encrypted volumes need their keys (kms.usable_by): when the account may not use a key of the
  instance's volumes (at launch also their source snapshots' keys: a shared image encrypted with
  the owner's AWS-managed key, or a customer-managed key neither its key policy nor a grant opens
  to the account), EC2 accepts RunInstances, the instance stays `pending` a moment and then ends
  `terminated`, with StateReason Client.InternalError "Client.InternalError: Client error on
  launch", and no machine boots; StartInstances ends `stopped` with the same reason. moto runs it.
  A volume made from another account's image keeps its snapshot's key (moto's gets none).
- ModifyInstanceAttribute changes InstanceInitiatedShutdownBehavior in both of EC2's forms (moto
  ignored `InstanceInitiatedShutdownBehavior.Value`) and refuses a value other than stop/terminate.
"""

from __future__ import annotations

import copy
from typing import Any

from localcloud.api.addresses import keep_elastic_addresses
from localcloud.api.offerings import check_offered, default_zone, requested_zone
from localcloud.api.patching import REQUEST, controller, ec2_error, flag, original, replace
from localcloud.api.quotas import check_vcpus
from localcloud.api.volumes import find_snapshot, unusable_keys

# EC2's state reason for a launch or start that failed on a key the account may not use.
CLIENT_ERROR_ON_LAUNCH = "Client.InternalError: Client error on launch"


def install() -> None:
    from moto.ec2.models.instances import Instance, InstanceBackend
    from moto.ec2.responses.instances import InstanceResponse

    replace(Instance, "start", instance_start)
    replace(Instance, "stop", instance_stop)
    replace(Instance, "reboot", instance_reboot)
    replace(Instance, "terminate", instance_terminate)
    replace(InstanceBackend, "run_instances", backend_run_instances)
    replace(InstanceResponse, "run_instances", response_run_instances)
    replace(InstanceResponse, "_validate_block_device_mapping", staticmethod(validate_block_device_mapping))
    replace(InstanceResponse, "_dot_value_instance_attribute_handler", dot_value_attribute)


def dot_value_attribute(self: Any) -> bool:
    """ModifyInstanceAttribute's `<Attribute>.Value` form: moto's handles a few attributes and
    ignores InstanceInitiatedShutdownBehavior, which EC2 changes (only its `Attribute=..., Value=...`
    form reached moto)."""
    value = self._get_param("InstanceInitiatedShutdownBehavior.Value")
    if value is None:
        return original("InstanceResponse", "_dot_value_instance_attribute_handler")(self)
    if value not in ("stop", "terminate"):
        raise ec2_error(
            "InvalidParameterValue",
            f"Value ({value}) for parameter instanceInitiatedShutdownBehavior is invalid."
            " Valid values: stop, terminate",
        )
    self.error_on_dryrun()
    self.ec2_backend.modify_instance_attribute(
        self._get_param("InstanceId"), "instance_initiated_shutdown_behavior", value
    )
    return True


def validate_block_device_mapping(mapping: dict[str, Any]) -> None:
    """A request's mapping may change only some fields of an image's device (Encrypted, KmsKeyId, ...);
    moto wants a size or a snapshot in every one. A new device without them is refused when the
    mappings are merged with the image's (merged_block_devices)."""
    if "Ebs" in mapping and not mapping["Ebs"].get("VolumeSize") and not mapping["Ebs"].get("SnapshotId"):
        return
    original("InstanceResponse", "_validate_block_device_mapping")(mapping)


def instance_start(self: Any) -> Any:
    """StartInstances: a stopped instance becomes pending and its machine boots."""
    if self.state in ("stopping", "shutting-down", "terminated"):
        raise ec2_error(
            "IncorrectInstanceState", f"The instance '{self.id}' is not in a state from which it can be started."
        )
    if self.state in ("running", "pending"):
        return copy.copy(self._state)
    check_vcpus(self.ec2_backend, self.instance_type, 1, leaving_out=self)
    previous = original("Instance", "start")(self)
    keep_elastic_addresses(self)
    if keys_refused(self, at_launch=False):
        controller().instance_start_failed(self, CLIENT_ERROR_ON_LAUNCH)
    else:
        controller().instance_starting(self)
    return previous


def keys_refused(instance: Any, at_launch: bool) -> bool:
    """Whether a key of the instance's volumes (at launch also of their snapshots) may not be used by its account."""
    account = instance.ec2_backend.account_id
    for _, mapping in instance.get_block_device_mapping:
        volume = instance.ec2_backend.volumes.get(mapping.volume_id)
        if volume is not None and unusable_keys(volume, account, at_creation=at_launch):
            return True
    return False


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
    controller().instance_stopping(self)
    return previous


def instance_reboot(self: Any) -> None:
    """RebootInstances: the machine reboots; only a running instance can."""
    if self.state != "running":
        raise ec2_error("IncorrectState", f"The instance '{self.id}' is not in the running state.")
    original("Instance", "reboot")(self)
    controller().instance_rebooting(self)


def instance_terminate(self: Any) -> Any:
    """TerminateInstances: the machine powers off before moto's teardown deletes the volumes."""
    if self.state == "terminated":
        return copy.copy(self._state)
    controller().instance_terminating(self)
    result = original("Instance", "terminate")(self)
    controller().instance_terminated(self)
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
    protect = flag(self._get_param("DisableApiTermination", "false"))
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
            ebs = entry.setdefault("Ebs", {})
            if not ebs.get("VolumeSize") and not ebs.get("SnapshotId"):
                from moto.ec2.exceptions import MissingParameterError

                raise MissingParameterError("size or snapshotId")
            ebs.setdefault("DeleteOnTermination", True)
            merged[device] = entry
    foreign = {}
    for device, entry in merged.items():
        ebs = entry.get("Ebs", {})
        snapshot_id = ebs.get("SnapshotId")
        if snapshot_id and image.owner_id != account_id:
            foreign[device] = ebs.pop("SnapshotId")
            # moto cannot see another account's snapshot: the volume takes its encryption from here.
            snapshot = find_snapshot(image.ec2_backend.region_name, snapshot_id)
            if snapshot is not None and snapshot.encrypted:
                ebs["Encrypted"] = "true"
                if not ebs.get("KmsKeyId"):
                    ebs["KmsKeyId"] = snapshot.kms_key_id
        if "VolumeSize" in ebs:
            ebs["VolumeSize"] = int(ebs["VolumeSize"])
        ebs["Encrypted"] = flag(ebs.get("Encrypted", "false"))
        ebs["DeleteOnTermination"] = flag(ebs.get("DeleteOnTermination", "false"))
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
    instance_type = kwargs.get("instance_type") or "m1.small"
    check_vcpus(self, instance_type, count)
    zone = requested_zone(self, kwargs) or default_zone(self, instance_type)
    check_offered(self, instance_type, zone)
    requested = getattr(REQUEST, "mappings", None) or []
    kwargs.pop("block_device_mappings", None)
    mappings, foreign = merged_block_devices(image, requested, self.account_id)
    kwargs["block_device_mappings"] = mappings
    if not kwargs.get("subnet_id") and not kwargs.get("nics"):
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
                volume = self.get_volume(mapping.volume_id)
                volume.snapshot_id = snapshot_id
                snapshot = find_snapshot(self.region_name, snapshot_id)
                if snapshot is not None and snapshot.encrypted:
                    volume.source_kms_key_id = snapshot.kms_key_id
        if keys_refused(instance, at_launch=True):
            controller().instance_launch_failed(instance, CLIENT_ERROR_ON_LAUNCH)
        else:
            controller().instance_launched(instance)
    return reservation
