"""Volumes and snapshots: their data lives in the host's disk store, through the controller.

- Snapshots: moto drops the volume's KMS key; here the snapshot keeps it.
- DetachVolume: moto fails with an internal error when InstanceId is left out (EC2 allows it).
- Attach, detach, delete, snapshot, copy: each has a physical side that the controller carries
  out (a device appears in the machine, a copy is made in the store, the bytes are freed).
"""

from __future__ import annotations

from typing import Any

from localcloud.api.patching import controller, original, replace


def install() -> None:
    from moto.ec2.models import elastic_block_store
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore

    replace(elastic_block_store.EBSBackend, "create_snapshot", backend_create_snapshot)
    replace(elastic_block_store.EBSBackend, "attach_volume", backend_attach_volume)
    replace(elastic_block_store.EBSBackend, "detach_volume", backend_detach_volume)
    replace(elastic_block_store.EBSBackend, "delete_volume", backend_delete_volume)
    replace(ElasticBlockStore, "create_snapshot", response_create_snapshot)
    replace(ElasticBlockStore, "copy_snapshot", response_copy_snapshot)
    replace(ElasticBlockStore, "delete_snapshot", response_delete_snapshot)


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
    """AttachVolume: the volume appears inside the running machine."""
    attachment = original("EBSBackend", "attach_volume")(
        self, volume_id, instance_id, device_path, delete_on_termination
    )
    if attachment is not None:
        controller().volume_attached(attachment.volume, attachment.instance, device_path)
    return attachment


def backend_detach_volume(self: Any, volume_id: str, instance_id: str | None, device_path: str | None) -> Any:
    """DetachVolume (moto needs the instance ID, which EC2 takes from the attachment when it is left out)."""
    volume = self.get_volume(volume_id)
    if instance_id is None and volume.attachment is not None:
        instance_id = volume.attachment.instance.id
    attachment = original("EBSBackend", "detach_volume")(self, volume_id, instance_id, device_path)
    controller().volume_detached(attachment.volume, attachment.instance)
    return attachment


def backend_delete_volume(self: Any, volume_id: str) -> Any:
    """DeleteVolume: the volume's bytes are freed."""
    volume = original("EBSBackend", "delete_volume")(self, volume_id)
    controller().volume_deleted(volume_id)
    return volume


def response_create_snapshot(self: Any) -> Any:
    """CreateSnapshot: the snapshot is `pending` until the volume's data is copied."""
    result = original("ElasticBlockStore", "create_snapshot")(self)
    snapshot = result.result
    controller().snapshot_requested(snapshot, snapshot.volume)
    return result


def response_copy_snapshot(self: Any) -> Any:
    """CopySnapshot: the copy is `pending` until its data is copied."""
    result = original("ElasticBlockStore", "copy_snapshot")(self)
    snapshot = self.ec2_backend.get_snapshot(result.result["SnapshotId"])
    controller().snapshot_copied(self._get_param("SourceSnapshotId"), snapshot)
    return result


def response_delete_snapshot(self: Any) -> Any:
    """DeleteSnapshot: the stored copy is freed."""
    snapshot_id = self._get_param("SnapshotId")
    result = original("ElasticBlockStore", "delete_snapshot")(self)
    controller().snapshot_deleted(snapshot_id)
    return result
