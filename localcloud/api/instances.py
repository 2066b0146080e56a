"""Instances: the life cycle drives real machines, and RunInstances behaves as EC2's does.

- Start, stop, reboot and terminate go through the controller, which boots, powers off or
  reboots the instance's machine; the instance stays `pending` / `stopping` / `shutting-down`
  until the machine has done so.
- RunInstances: moto ignores ClientToken (a retried call launches a second instance), ignores
  DisableApiTermination at launch, and ignores the image's block device mappings (it makes an
  8 GiB root at /dev/sda1 whatever the image says). Here the token is honoured, termination
  protection is kept, the image's mappings are merged with the request's the way EC2 merges
  them, and a root volume smaller than the image's snapshot is refused.
- An instance launched without a subnet goes into the default subnet of its zone, as on EC2
  (moto would treat it as EC2-Classic and give it a random 10.x address).
"""

from __future__ import annotations

import copy
from typing import Any

from localcloud.api.addresses import keep_elastic_addresses
from localcloud.api.patching import REQUEST, controller, ec2_error, flag, original, replace
from localcloud.api.quotas import check_vcpus


def install() -> None:
    from moto.ec2.models.instances import Instance, InstanceBackend
    from moto.ec2.responses.instances import InstanceResponse

    replace(Instance, "start", instance_start)
    replace(Instance, "stop", instance_stop)
    replace(Instance, "reboot", instance_reboot)
    replace(Instance, "terminate", instance_terminate)
    replace(InstanceBackend, "run_instances", backend_run_instances)
    replace(InstanceResponse, "run_instances", response_run_instances)


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
    controller().instance_starting(self)
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
    check_vcpus(self, kwargs.get("instance_type") or "m1.small", count)
    requested = getattr(REQUEST, "mappings", None) or []
    kwargs.pop("block_device_mappings", None)
    mappings, foreign = merged_block_devices(image, requested, self.account_id)
    kwargs["block_device_mappings"] = mappings
    if not kwargs.get("subnet_id") and not kwargs.get("nics"):
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
        controller().instance_launched(instance)
    return reservation
