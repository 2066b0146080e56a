"""Volumes and snapshots: their data lives in the host's disk store, through the controller.

- Snapshots: moto drops the volume's KMS key; here the snapshot keeps it.
- Encryption keys, as EBS reports and uses them: moto gives a volume made from an encrypted
  snapshot no key and keeps a key named by alias or key ID as given; here such a volume keeps the
  snapshot's key (unless the request names another), an encrypted volume or copy without a named
  key gets the account's default EBS key (alias/aws/ebs, see kms.py), and every key is reported
  by its ARN. CopySnapshot of an encrypted snapshot without KmsKeyId keeps the source's key in its
  own account and region.
- CreateVolume from a snapshot another account shared (createVolumePermission) works as on EC2
  (moto finds only the caller's own snapshots). When the caller may not use the snapshot's or the
  volume's key (kms.usable_by), EC2 answers `creating` and the volume then disappears
  (DescribeVolumes: InvalidVolume.NotFound); so it does here.
- ModifySnapshotAttribute: a snapshot encrypted with the AWS-managed key cannot be shared
  (OperationNotPermitted), as on EC2.
- DetachVolume: moto fails with an internal error when InstanceId is left out (EC2 allows it).
- Attach, detach, delete, snapshot, copy: each has a physical side that the controller carries
  out (a device appears in the machine, a copy is made in the store, the bytes are freed).
"""

from __future__ import annotations

from typing import Any

from localcloud.api import kms
from localcloud.api.patching import controller, ec2_error, flag, original, replace, replace_property


def install() -> None:
    from moto.ec2.models import elastic_block_store
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore

    replace(elastic_block_store.EBSBackend, "create_volume", backend_create_volume)
    replace(elastic_block_store.EBSBackend, "copy_snapshot", backend_copy_snapshot)
    replace(elastic_block_store.EBSBackend, "create_snapshot", backend_create_snapshot)
    replace(elastic_block_store.EBSBackend, "attach_volume", backend_attach_volume)
    replace(elastic_block_store.EBSBackend, "detach_volume", backend_detach_volume)
    replace(elastic_block_store.EBSBackend, "delete_volume", backend_delete_volume)
    replace(ElasticBlockStore, "create_snapshot", response_create_snapshot)
    replace(ElasticBlockStore, "copy_snapshot", response_copy_snapshot)
    replace(ElasticBlockStore, "delete_snapshot", response_delete_snapshot)
    replace(ElasticBlockStore, "create_volume", response_create_volume)
    replace(ElasticBlockStore, "modify_snapshot_attribute", response_modify_snapshot_attribute)
    replace_property(elastic_block_store.Volume, "status", volume_status)


def find_snapshot(region: str, snapshot_id: str) -> Any | None:
    """A snapshot by ID in a region, in whichever account holds it."""
    from moto.ec2.models import ec2_backends

    for regions in list(ec2_backends.values()):
        backend = regions.get(region) if region in regions else None
        if backend is not None and snapshot_id in backend.snapshots:
            return backend.snapshots[snapshot_id]
    return None


def shared_with(snapshot: Any, account_id: str) -> bool:
    """Whether an account may make volumes from a snapshot (its own, or shared with it)."""
    return (
        snapshot.owner_id == account_id
        or account_id in snapshot.create_volume_permission_userids
        or "all" in snapshot.create_volume_permission_groups
    )


def backend_create_volume(
    self: Any,
    size: int | None,
    zone_name: str,
    snapshot_id: str | None = None,
    encrypted: bool = False,
    kms_key_id: str | None = None,
    **kwargs: Any,
) -> Any:
    """CreateVolume with EBS's key rules, from the account's own snapshots or those shared with it."""
    snapshot = None
    if snapshot_id:
        snapshot = self.snapshots.get(snapshot_id)
        if snapshot is None:
            found = find_snapshot(self.region_name, snapshot_id)
            snapshot = found if found is not None and shared_with(found, self.account_id) else None
    if kms_key_id and not encrypted:
        from moto.ec2.exceptions import InvalidParameterDependency

        raise InvalidParameterDependency("KmsKeyId", "Encrypted")
    source_key = snapshot.kms_key_id if snapshot is not None and snapshot.encrypted else None
    if snapshot is not None and snapshot.encrypted:
        encrypted = True
        kms_key_id = kms_key_id or source_key
    if encrypted and not kms_key_id:
        kms_key_id = kms.ebs_default_key_arn(self)
    if kms_key_id:
        kms_key_id = kms.key_arn(kms_key_id, self.account_id, self.region_name) or kms_key_id
    foreign = snapshot is not None and snapshot_id not in self.snapshots
    if foreign and size is None:
        size = snapshot.volume.size
    volume = original("EBSBackend", "create_volume")(
        self, size, zone_name, None if foreign else snapshot_id, encrypted, kms_key_id, **kwargs
    )
    if foreign:
        volume.snapshot_id = snapshot_id
    volume.source_kms_key_id = source_key
    return volume


def volume_keys(volume: Any) -> list[str]:
    """The keys EBS needs to make and attach a volume: its own, and its source snapshot's."""
    return [key for key in (getattr(volume, "source_kms_key_id", None), volume.kms_key_id) if key]


def unusable_keys(volume: Any, account_id: str, at_creation: bool) -> list[str]:
    """The keys of a volume that an account may not use (kms.usable_by); at creation the snapshot's too."""
    keys = volume_keys(volume) if at_creation else [k for k in [volume.kms_key_id] if k]
    region = volume.ec2_backend.region_name
    return [key for key in keys if not kms.usable_by(key, account_id, region)]


def volume_status(self: Any) -> str:
    """A volume's state: `creating` while EBS is still making it, else moto's."""
    return getattr(self, "localcloud_state", None) or original("Volume", "status")(self)


def response_create_volume(self: Any) -> Any:
    """CreateVolume: a volume whose keys the account may not use is `creating`, then disappears."""
    result = original("ElasticBlockStore", "create_volume")(self)
    volume = result.result
    if unusable_keys(volume, self.ec2_backend.account_id, at_creation=True):
        controller().volume_creation_failed(volume)
    return result


def response_modify_snapshot_attribute(self: Any) -> Any:
    """ModifySnapshotAttribute: a snapshot encrypted with the AWS-managed key is never shared."""
    if self._get_param("OperationType") == "add":
        snapshot = self.ec2_backend.get_snapshot(self._get_param("SnapshotId"))
        if snapshot.encrypted and kms.is_aws_managed(snapshot.kms_key_id, snapshot.owner_id, self.region):
            raise ec2_error("OperationNotPermitted", "Encrypted snapshots with EBS default key cannot be shared")
    return original("ElasticBlockStore", "modify_snapshot_attribute")(self)


def backend_copy_snapshot(
    self: Any, source_snapshot_id: str, source_region: str, description: str, kms_key_id: str | None
) -> Any:
    """CopySnapshot keeping the source's key (or the default key) when none is named, reported by ARN."""
    source = self.describe_snapshots(snapshot_ids=[source_snapshot_id]) if source_region == self.region_name else []
    encrypted_source = bool(source) and source[0].encrypted
    if kms_key_id:
        kms_key_id = kms.key_arn(kms_key_id, self.account_id, self.region_name) or kms_key_id
    elif encrypted_source:
        kms_key_id = source[0].kms_key_id
    snapshot = original("EBSBackend", "copy_snapshot")(self, source_snapshot_id, source_region, description, kms_key_id)
    if snapshot.encrypted and not snapshot.kms_key_id:
        snapshot.kms_key_id = kms.ebs_default_key_arn(self)
    return snapshot


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
    """CopySnapshot: the copy is `pending` until its data is copied; Encrypted=true encrypts it."""
    result = original("ElasticBlockStore", "copy_snapshot")(self)
    snapshot = self.ec2_backend.get_snapshot(result.result["SnapshotId"])
    if flag(self._get_param("Encrypted", "false")) and not snapshot.encrypted:
        snapshot.encrypted = True
        snapshot.kms_key_id = kms.ebs_default_key_arn(self.ec2_backend)
    controller().snapshot_copied(self._get_param("SourceSnapshotId"), snapshot)
    return result


def response_delete_snapshot(self: Any) -> Any:
    """DeleteSnapshot: the stored copy is freed."""
    snapshot_id = self._get_param("SnapshotId")
    result = original("ElasticBlockStore", "delete_snapshot")(self)
    controller().snapshot_deleted(snapshot_id)
    return result
