# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filters storage_problems, storage_device_problems, storage_entries, data_volume_mappings, data_volume_mounts.

They describe a VM's disks.
storage_problems checks the role labcloud.jupyter.storage's volume list without touching a host,
storage_device_problems what the role found on the host before it changes anything;
data_volume_mappings and data_volume_mounts turn the playbooks' one variable data_volumes ("a 20 GiB
volume on /data") into what launch.yml creates (block device mappings) and what the storage role
mounts. Each filter's documentation is in the file of its name beside this one.
"""

import posixpath
import re
from typing import Any, Dict, List, Mapping, Optional

from ansible.errors import AnsibleFilterError

# Directories of the operating system: a volume mounted on one of them, or under one of the
# SYSTEM_TREES, would hide or replace the system's own files.
SYSTEM_DIRECTORIES = frozenset(
    (
        *("/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt"),
        *("/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/var/lib", "/var/log"),
        *("/var/cache", "/var/tmp", "/var/spool", "/var/mail", "/snap"),
    )
)
SYSTEM_TREES = ("/bin/", "/boot/", "/dev/", "/etc/", "/lib/", "/lib64/", "/proc/", "/run/", "/sbin/", "/sys/", "/usr/")
FSTYPES = ("ext4", "xfs")
VOLUME_ID = re.compile(r"^vol-(?:[0-9a-f]{8}|[0-9a-f]{17})$")
# The names EC2 accepts for an EBS volume attached to a Linux instance (not the root's /dev/sda1).
DEVICE_NAME = re.compile(r"^/dev/(?:sd|xvd)[b-z]$")
# Launch gives data volumes without a device name these, in order (EC2's recommended range).
DATA_DEVICE_NAMES = tuple("/dev/sd" + letter for letter in "fghijklmnop")
SOURCES = ("volume_id", "device_name", "instance_store")
# What data_volumes entries may hold besides a source: the EBS volume launch creates, and how it is mounted.
VOLUME_KEYS = frozenset(("size", "type", "delete_on_termination"))
MOUNT_KEYS = frozenset(("mount_point", "fstype", "owner", "group", "mode", "options"))


def _mount_point_problem(mount_point: Any) -> Optional[str]:
    """Say what is wrong with a mount point, or None."""
    if not isinstance(mount_point, str) or not mount_point.startswith("/"):
        return f"mount_point must be an absolute path, not {mount_point!r}"
    if posixpath.normpath(mount_point) != mount_point or mount_point.startswith("//"):
        return f"mount_point {mount_point} must be written plainly (no trailing /, //, . or ..)"
    if re.search(r"\s", mount_point):
        return f"mount_point {mount_point!r} must not contain white space (fstab separates fields with it)"
    if mount_point in SYSTEM_DIRECTORIES or (mount_point + "/").startswith(SYSTEM_TREES):
        return f"mount_point {mount_point} is a system directory: choose one of its own, such as /data or /scratch"
    return None


def _source_problem(volume: Mapping[str, Any]) -> Optional[str]:
    """Say what is wrong with how a volume is named, or None."""
    given = [key for key in SOURCES if volume.get(key) not in (None, "")]
    if len(given) != 1:
        return f"give exactly one of volume_id, device_name and instance_store (got {given or 'none'})"
    key = given[0]
    value = volume[key]
    if key == "volume_id" and not (isinstance(value, str) and VOLUME_ID.match(value)):
        return f"volume_id must look like vol-0123456789abcdef0, not {value!r}"
    if key == "device_name" and not (isinstance(value, str) and DEVICE_NAME.match(value)):
        return f"device_name must be the name the volume was attached as, such as /dev/sdf, not {value!r}"
    if key == "instance_store" and value != "all" and (isinstance(value, bool) or not str(value).isdigit()):
        return f"instance_store must be all or the index of an instance-store disk (0, 1, ...), not {value!r}"
    return None


def _setting_problem(volume: Mapping[str, Any]) -> Optional[str]:
    """Say what is wrong with a volume's file system, mode or options, or None."""
    if volume.get("fstype") not in (None, "") and volume["fstype"] not in FSTYPES:
        return f"fstype must be one of {', '.join(FSTYPES)}, not {volume['fstype']!r}"
    mode = volume.get("mode")
    if mode not in (None, "") and not re.match(r"^0?[0-7]{3,4}$", str(mode)):
        return f"mode must be octal digits in a string, such as '0755', not {mode!r}"
    options = volume.get("options")
    if options not in (None, "") and not re.match(r"^[A-Za-z0-9_=,.:/+-]+$", str(options)):
        return f"options must be mount options separated by commas, without spaces, not {options!r}"
    for key in ("owner", "group"):
        if volume.get(key) not in (None, "") and not re.match(r"^[a-z_][a-z0-9_.-]*$", str(volume[key])):
            return f"{key} must be a user or group name, not {volume[key]!r}"
    return None


def storage_problems(volumes: Any) -> List[str]:
    """Return what is wrong with a list of storage volumes (the role storage's storage_volumes), one line each."""
    if not isinstance(volumes, (list, tuple)):
        return [f"storage_volumes must be a list, not {volumes!r}"]
    problems = []
    seen: Dict[str, int] = {}
    for index, volume in enumerate(volumes):
        if not isinstance(volume, Mapping):
            problems.append(f"volume {index + 1}: must be a dictionary, not {volume!r}")
            continue
        for problem in (
            _source_problem(volume),
            _mount_point_problem(volume.get("mount_point")),
            _setting_problem(volume),
        ):
            if problem:
                problems.append(f"volume {index + 1}: {problem}")
        mount_point = volume.get("mount_point")
        if isinstance(mount_point, str):
            if mount_point in seen:
                problems.append(
                    f"volume {index + 1}: mount_point {mount_point} is also volume {seen[mount_point] + 1}'s"
                )
            seen.setdefault(mount_point, index)
    by_source: Dict[Any, int] = {}
    for index, volume in enumerate(volumes):
        if isinstance(volume, Mapping):
            source = next(((key, str(volume[key])) for key in SOURCES if volume.get(key) not in (None, "")), None)
            if source in by_source or (
                source and source[0] == "instance_store" and ("instance_store", "all") in by_source
            ):
                problems.append(
                    f"volume {index + 1}: {source[0]} {source[1]} is also volume {by_source.get(source, 0) + 1}'s"
                )
            elif source:
                by_source[source] = index
    return problems


def storage_entries(volumes: Any, defaults: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """Return each volume with the defaults for what it leaves out (or leaves null or empty)."""
    if not isinstance(volumes, (list, tuple)) or not all(isinstance(volume, Mapping) for volume in volumes):
        raise AnsibleFilterError(f"storage_volumes must be a list of dictionaries, not {volumes!r}")
    return [
        {**defaults, **{key: value for key, value in volume.items() if value not in (None, "")}} for volume in volumes
    ]


def _device_label(device: Mapping[str, Any]) -> str:
    """How a message names a device the look found (or did not)."""
    if device.get("kind") == "instance_store":
        return f"instance-store disk {device.get('disk')}"
    if device.get("volume_id"):
        return f"volume {device['volume_id']}"
    return f"the volume attached as {device.get('device_name')}"


def storage_device_problems(devices: Any, entries: Any) -> List[str]:
    """Return what stops the role storage from mounting the devices labcloud.jupyter.block_devices found:
    a volume that is not attached, a file system other than the one asked for, a mount point another
    device holds, a device mounted elsewhere, one device asked for twice."""
    problems = []
    seen: Dict[str, str] = {}
    for device in devices or []:
        entry = entries[device["index"]]
        label, found = _device_label(device), device.get("device") or ""
        if not found:
            if device["kind"] == "instance_store":
                which = "" if str(entry["instance_store"]) == "all" else f" {device['disk']}"
                problems.append(
                    f"{device['mount_point']}: this instance has no instance-store disk{which} (see its type)"
                )
            else:
                problems.append(f"{device['mount_point']}: {label} is not attached to this VM")
            continue
        if device.get("fstype") and device["fstype"] != entry["fstype"]:
            problems.append(
                f"{device['mount_point']}: {label} ({found}) holds a {device['fstype']} file system,"
                f" not {entry['fstype']}: it is never reformatted"
                f" (set fstype: {device['fstype']} to mount it as it is, or give another volume)"
            )
        if device.get("mount_point_taken"):
            problems.append(f"{device['mount_point']}: another device is mounted there")
        mounted_at = device.get("mounted_at") or []
        if mounted_at and device["mount_point"] not in mounted_at:
            problems.append(f"{device['mount_point']}: {label} ({found}) is mounted at {', '.join(mounted_at)} already")
        if found in seen:
            problems.append(f"{device['mount_point']}: {label} is the device of {seen[found]} too ({found})")
        seen.setdefault(found, device["mount_point"])
    return problems


def _data_volumes(data_volumes: Any) -> List[Dict[str, Any]]:
    """Return data_volumes with a device name for each EBS volume, or fail with what is wrong."""
    if data_volumes in (None, ""):
        return []
    if not isinstance(data_volumes, (list, tuple)):
        raise AnsibleFilterError(f"data_volumes must be a list, not {data_volumes!r}")
    free = [
        name
        for name in DATA_DEVICE_NAMES
        if name not in [v.get("device_name") for v in data_volumes if isinstance(v, Mapping)]
    ]
    volumes = []
    for index, volume in enumerate(data_volumes):
        if not isinstance(volume, Mapping):
            raise AnsibleFilterError(f"data volume {index + 1} must be a dictionary, not {volume!r}")
        unknown = sorted(set(volume) - VOLUME_KEYS - MOUNT_KEYS - set(SOURCES))
        if unknown:
            raise AnsibleFilterError(
                f"data volume {index + 1} has unknown keys {unknown}: it takes size, "
                f"mount_point and optionally {', '.join(sorted(VOLUME_KEYS | MOUNT_KEYS | set(SOURCES)))}"
            )
        entry = dict(volume)
        if "size" in entry:
            if entry.get("volume_id") not in (None, "") or entry.get("instance_store") not in (None, ""):
                raise AnsibleFilterError(
                    f"data volume {index + 1}: a size asks for a new EBS volume, which has no "
                    "volume_id or instance_store yet"
                )
            if isinstance(entry["size"], bool) or not str(entry["size"]).isdigit() or int(entry["size"]) < 1:
                raise AnsibleFilterError(
                    f"data volume {index + 1}: size must be a whole number of GiB, at least 1, not {entry['size']!r}"
                )
            if entry.get("device_name") in (None, ""):
                if not free:
                    raise AnsibleFilterError(
                        f"data volume {index + 1}: no device name left in {DATA_DEVICE_NAMES[0]}-"
                        f"{DATA_DEVICE_NAMES[-1]}"
                    )
                entry["device_name"] = free.pop(0)
        volumes.append(entry)
    problems = storage_problems(
        [{k: v for k, v in entry.items() if k in MOUNT_KEYS or k in SOURCES} for entry in volumes]
    )
    if problems:
        raise AnsibleFilterError("data_volumes: " + "; ".join(problems))
    return volumes


def data_volume_mappings(data_volumes: Any) -> List[Dict[str, Any]]:
    """Return the EBS volumes data_volumes asks launch to create, as the role ec2_instance's ec2_instance_volumes:
    gp3 unless a type is given, and kept when the instance is terminated unless delete_on_termination is true."""
    return [
        {
            "device_name": volume["device_name"],
            "size": int(volume["size"]),
            "type": volume.get("type") or "gp3",
            "delete_on_termination": bool(volume.get("delete_on_termination")),
        }
        for volume in _data_volumes(data_volumes)
        if "size" in volume
    ]


def data_volume_mounts(data_volumes: Any, block_device_mappings: Any = None) -> List[Dict[str, Any]]:
    """Return data_volumes as the role storage's storage_volumes. With the instance's block device mappings
    (as DescribeInstances gives them), an EBS volume is named by its volume ID rather than its device name."""
    ids = {}
    for mapping in block_device_mappings or []:
        if isinstance(mapping, Mapping) and mapping.get("device_name") and (mapping.get("ebs") or {}).get("volume_id"):
            ids[mapping["device_name"]] = mapping["ebs"]["volume_id"]
    mounts = []
    for volume in _data_volumes(data_volumes):
        entry = {key: value for key, value in volume.items() if key in MOUNT_KEYS or key in SOURCES}
        if entry.get("device_name") in ids:
            entry["volume_id"] = ids[entry.pop("device_name")]
        mounts.append(entry)
    return mounts


class FilterModule:
    """The collection's storage filters."""

    def filters(self) -> Dict[str, Any]:
        """Map filter names to functions."""
        return {
            "storage_problems": storage_problems,
            "storage_device_problems": storage_device_problems,
            "storage_entries": storage_entries,
            "data_volume_mappings": data_volume_mappings,
            "data_volume_mounts": data_volume_mounts,
        }
