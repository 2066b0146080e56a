#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
---
module: block_devices
version_added: 0.1.0
short_description: Find the block devices of EBS volumes and instance-store disks on an EC2 instance
description:
  - For each volume asked about, finds the block device as EC2 presents it, and reads the file system
    on it (C(blkid -p)), where it is mounted (C(/proc/self/mountinfo)) and its size and free space. It
    changes nothing.
  - An EBS volume is found by its volume ID through C(/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol<id>)
    (udev's link from the NVMe serial number, which EC2 sets to the volume ID on Nitro instances), or
    through the serial numbers in C(/sys/class/nvme).
  - An EBS volume is found by the device name it was attached as (C(/dev/sdf)) through the NVMe
    controller's vendor-specific identify data, where EC2 writes that name (what AWS's C(ebsnvme-id)
    reads), else through a C(/dev/sdX) or C(/dev/xvdX) device or link of that letter (older Xen instance
    types, and the links of AWS's udev rules).
  - Instance-store disks are the C(/dev/disk/by-id/nvme-Amazon_EC2_NVMe_Instance_Storage_*) devices,
    in the order of their device nodes.
  - This closes a gap. M(ansible.builtin.setup)'s device facts do not map EBS volume IDs or attachment
    names to NVMe devices, and M(ansible.builtin.stat) or C(blkid) would be one task per device.
options:
  volumes:
    description: The volumes to find, as the role labcloud.jupyter.storage's C(storage_volumes) lists them.
    type: list
    elements: dict
    required: true
    suboptions:
      volume_id:
        description: An EBS volume's ID.
        type: str
      device_name:
        description: The device name an EBS volume was attached as, such as C(/dev/sdf).
        type: str
      instance_store:
        description: V(all), or the index of one instance-store disk.
        type: str
      mount_point:
        description: Where the volume is to be mounted; returned with the devices found.
        type: str
        required: true
extends_documentation_fragment:
  - labcloud.jupyter.attributes
  - labcloud.jupyter.attributes.info_module
attributes:
  platform:
    description: Reads a Linux host's C(/dev), C(/sys) and C(/proc); C(blkid) from util-linux.
    support: full
    platforms: posix
notes:
  - Run it as root (C(become)), as C(blkid -p) and the NVMe identify command read the devices themselves.
author:
  - labcloud.jupyter developers (@labcloud)
"""

EXAMPLES = r"""
- name: Find the data volume and the instance store
  labcloud.jupyter.block_devices:
    volumes:
      - volume_id: vol-0123456789abcdef0
        mount_point: /data
      - instance_store: all
        mount_point: /scratch
  become: true
  register: found
"""

RETURN = r"""
devices:
  description:
    - One entry per device found, in the order of O(volumes); an instance-store request of V(all) gives one per
      disk, and a volume that is not there gives one entry with an empty C(device).
    - C(index) is the position in O(volumes), C(disk) the instance-store disk's index; C(mount_point) is where
      it is to be mounted (instance-store disk k>0 of V(all) at the mount point followed by k); C(device) the
      device node; C(fstype) and C(uuid) what C(blkid) found (empty for none); C(mounted_at) where the device is
      mounted now; C(mount_point_taken) whether another device is mounted on the mount point; C(size_bytes)
      and C(free_bytes) from C(statvfs) of the mount point when the device is mounted on it.
  returned: always
  type: list
  elements: dict
  sample: [{"index": 0, "kind": "ebs", "volume_id": "vol-0123456789abcdef0", "device_name": "", "disk": null,
            "mount_point": "/data", "device": "/dev/nvme1n1", "fstype": "ext4", "uuid": "0b6d...",
            "mounted_at": ["/data"], "mount_point_taken": false, "size_bytes": 21003583488, "free_bytes": 19917127680}]
"""

import array
import fcntl
import glob
import os
import re
import struct

from ansible.module_utils.basic import AnsibleModule

BY_ID = "/dev/disk/by-id"
EBS_LINK = BY_ID + "/nvme-Amazon_Elastic_Block_Store_"
INSTANCE_STORE_GLOB = BY_ID + "/nvme-Amazon_EC2_NVMe_Instance_Storage_*"
EBS_MODEL = "Amazon Elastic Block Store"
# NVME_IOCTL_ADMIN_CMD (_IOWR('N', 0x41, struct nvme_admin_cmd)), the Identify opcode and the offset of
# the vendor-specific area of the Identify Controller data, whose first 32 bytes EC2 fills with the
# device name the EBS volume was attached as.
NVME_IOCTL_ADMIN_CMD = 0xC0484E41
NVME_IDENTIFY = 0x06
IDENTIFY_SIZE = 4096
VENDOR_SPECIFIC = 3072


def natural_key(path):
    """Sort key that puts /dev/nvme2n1 before /dev/nvme10n1."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


def letter_of(device_name):
    """The letter of a device name (/dev/sdf, sdf, /dev/xvdf -> f), or ''."""
    match = re.match(r"^(?:/dev/)?(?:sd|xvd)([a-z]+)$", (device_name or "").strip())
    return match.group(1) if match else ""


def vendor_device_name(identify):
    """The device name in the vendor-specific area of NVMe Identify Controller data."""
    raw = identify[VENDOR_SPECIFIC : VENDOR_SPECIFIC + 32]
    return raw.split(b"\0", 1)[0].decode("ascii", "replace").strip()


def identify_controller(device):
    """The NVMe Identify Controller data of a device, or None when it cannot be asked."""
    buffer = array.array("B", bytes(IDENTIFY_SIZE))
    address = buffer.buffer_info()[0]
    # struct nvme_admin_cmd: opcode, flags, rsvd1, nsid, cdw2, cdw3, metadata, addr, metadata_len,
    # data_len, cdw10..cdw15, timeout_ms, result.
    command = struct.pack(
        "=BBHIIIQQII6III", NVME_IDENTIFY, 0, 0, 0, 0, 0, 0, address, 0, IDENTIFY_SIZE, 1, 0, 0, 0, 0, 0, 0, 0
    )
    try:
        with open(device, "rb") as stream:
            fcntl.ioctl(stream.fileno(), NVME_IOCTL_ADMIN_CMD, command)
    except (IOError, OSError):
        return None
    return buffer.tobytes()


def read_text(path):
    """A small file's content, stripped, or ''."""
    try:
        with open(path) as stream:
            return stream.read().strip()
    except (IOError, OSError):
        return ""


def nvme_namespaces():
    """The NVMe namespace devices with their controller's model and serial number."""
    found = []
    for block in sorted(glob.glob("/sys/block/nvme*n*"), key=natural_key):
        name = os.path.basename(block)
        if not re.match(r"^nvme\d+n\d+$", name):
            continue
        found.append(
            {
                "device": "/dev/" + name,
                "model": read_text(block + "/device/model"),
                "serial": read_text(block + "/device/serial"),
            }
        )
    return found


def block_device(path):
    """The device node a path names (following links), when it is a block device, else ''."""
    real = os.path.realpath(path)
    try:
        return real if os.path.exists(real) and os.stat(real).st_mode & 0o170000 == 0o060000 else ""
    except OSError:
        return ""


def find_by_volume_id(volume_id, namespaces):
    """The device of an attached EBS volume, by its ID."""
    serial = volume_id.replace("-", "")
    device = block_device(EBS_LINK + serial)
    if device:
        return device
    for namespace in namespaces:
        if namespace["serial"] == serial:
            return namespace["device"]
    return ""


def find_by_device_name(device_name, namespaces, identify=identify_controller):
    """The device of an EBS volume attached as device_name (/dev/sdf)."""
    letter = letter_of(device_name)
    for namespace in namespaces:
        if namespace["model"] != EBS_MODEL:
            continue
        data = identify(namespace["device"])
        if data and letter_of(vendor_device_name(data)) == letter:
            return namespace["device"]
    for candidate in ("/dev/sd" + letter, "/dev/xvd" + letter):
        device = block_device(candidate)
        if device:
            return device
    return ""


def instance_store_disks():
    """The instance-store disks' device nodes, in order."""
    devices = set()
    for link in glob.glob(INSTANCE_STORE_GLOB):
        if re.search(r"-part\d+$", link):
            continue
        device = block_device(link)
        if device:
            devices.add(device)
    return sorted(devices, key=natural_key)


def parse_mountinfo(text):
    """Mount points by device number ('major:minor'), and each mount point's device number."""
    by_device, by_mount_point = {}, {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        mount_point = fields[4].replace("\\040", " ")
        by_device.setdefault(fields[2], []).append(mount_point)
        by_mount_point[mount_point] = fields[2]
    return by_device, by_mount_point


def device_number(device):
    """A block device's 'major:minor'."""
    number = os.stat(device).st_rdev
    return "%d:%d" % (os.major(number), os.minor(number))


def probe(module, device):
    """The file system type and UUID blkid finds on a device ('' for none)."""
    rc, out, err = module.run_command(["blkid", "-p", "-o", "export", device])
    if rc == 2:
        return "", ""
    if rc != 0:
        module.fail_json(msg="Could not read the file system of %s: %s" % (device, err.strip() or out.strip()))
    fields = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return fields.get("TYPE", ""), fields.get("UUID", "")


def requests_of(volumes, namespaces, disks, identify=identify_controller):
    """The devices the volumes ask for: (index, kind, volume, disk, mount point, device) each."""
    found = []
    for index, volume in enumerate(volumes):
        store = volume.get("instance_store")
        if store not in (None, ""):
            chosen = (
                list(enumerate(disks))
                if store == "all"
                else [(int(store), disks[int(store)] if int(store) < len(disks) else "")]
            )
            if not chosen:
                chosen = [(0, "")]
            for disk, device in chosen:
                mount_point = volume["mount_point"] + (str(disk) if store == "all" and disk else "")
                found.append((index, "instance_store", volume, disk, mount_point, device))
        elif volume.get("volume_id"):
            found.append(
                (index, "ebs", volume, None, volume["mount_point"], find_by_volume_id(volume["volume_id"], namespaces))
            )
        else:
            found.append(
                (
                    index,
                    "ebs",
                    volume,
                    None,
                    volume["mount_point"],
                    find_by_device_name(volume.get("device_name"), namespaces, identify),
                )
            )
    return found


def main():
    """Find the devices and describe them."""
    module = AnsibleModule(
        argument_spec=dict(
            volumes=dict(
                type="list",
                elements="dict",
                required=True,
                options=dict(
                    volume_id=dict(type="str"),
                    device_name=dict(type="str"),
                    instance_store=dict(type="str"),
                    mount_point=dict(type="str", required=True),
                ),
            ),
        ),
        supports_check_mode=True,
    )
    by_device, by_mount_point = parse_mountinfo(read_text("/proc/self/mountinfo"))
    numbers = {}
    devices = []
    for index, kind, volume, disk, mount_point, device in requests_of(
        module.params["volumes"], nvme_namespaces(), instance_store_disks()
    ):
        fstype, uuid, mounted_at, size, free = "", "", [], None, None
        if device:
            fstype, uuid = probe(module, device)
            number = numbers.setdefault(device, device_number(device))
            mounted_at = by_device.get(number, [])
            if mount_point in mounted_at:
                stats = os.statvfs(mount_point)
                size, free = stats.f_blocks * stats.f_frsize, stats.f_bavail * stats.f_frsize
        source = by_mount_point.get(mount_point, "")
        devices.append(
            {
                "index": index,
                "kind": kind,
                "volume_id": volume.get("volume_id") or "",
                "device_name": volume.get("device_name") or "",
                "disk": disk,
                "mount_point": mount_point,
                "device": device,
                "fstype": fstype,
                "uuid": uuid,
                "mounted_at": mounted_at,
                "mount_point_taken": bool(source) and source != numbers.get(device),
                "size_bytes": size,
                "free_bytes": free,
            }
        )
    module.exit_json(changed=False, devices=devices)


if __name__ == "__main__":
    main()
