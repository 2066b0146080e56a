#!/usr/bin/python3
# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make the instance-store disks ready at boot: EC2 hands them over blank after every stop/start.

Reads the role labcloud.jupyter.storage's settings (a JSON file named on the command line), and for
each instance-store disk they name: makes the file system when the disk carries none (a disk with a
different file system than asked is left alone and reported), mounts it, sets its owner, group and
mode, and writes a README saying that it is scratch space lost on stop. A disk already mounted where
it should be is only checked. Exits non-zero when a disk could not be made ready.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time

INSTANCE_STORE_GLOB = "/dev/disk/by-id/nvme-Amazon_EC2_NVMe_Instance_Storage_*"
# How long to wait at boot for the disks to appear (udev makes their links).
WAIT_SECONDS = 30


def natural_key(path: str) -> list:
    """Sort key that puts /dev/nvme2n1 before /dev/nvme10n1."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


def instance_store_disks() -> list[str]:
    """The instance-store disks' device nodes, in order."""
    links = [link for link in glob.glob(INSTANCE_STORE_GLOB) if not re.search(r"-part\d+$", link)]
    return sorted({os.path.realpath(link) for link in links}, key=natural_key)


def plan(volumes: list[dict], disks: list[str]) -> tuple[list[dict], list[str]]:
    """The disks to make ready (device, mount point, settings) and the requests no disk answers."""
    ready, missing = [], []
    for volume in volumes:
        store = str(volume["instance_store"])
        if store == "all":
            chosen = list(enumerate(disks))
            if not chosen:
                missing.append(f"{volume['mount_point']}: this instance has no instance-store disk")
        elif int(store) < len(disks):
            chosen = [(int(store), disks[int(store)])]
        else:
            chosen = []
            missing.append(f"{volume['mount_point']}: no instance-store disk {store} (found {len(disks)})")
        for disk, device in chosen:
            mount_point = volume["mount_point"] + (str(disk) if store == "all" and disk else "")
            ready.append({**volume, "device": device, "mount_point": mount_point})
    return ready, missing


def needed(volumes: list[dict]) -> int:
    """How many disks the settings name at least."""
    counts = [1 if str(v["instance_store"]) == "all" else int(v["instance_store"]) + 1 for v in volumes]
    return max(counts, default=0)


def mounted_devices() -> dict[str, str]:
    """Each mount point's source, from /proc/self/mounts."""
    mounts = {}
    with open("/proc/self/mounts") as stream:
        for line in stream:
            fields = line.split()
            if len(fields) >= 2:
                mounts[fields[1].replace("\\040", " ")] = os.path.realpath(fields[0])
    return mounts


def file_system(device: str) -> str:
    """The file system type on a device, '' for none."""
    result = subprocess.run(["blkid", "-p", "-o", "value", "-s", "TYPE", device], capture_output=True, text=True)
    if result.returncode == 2:
        return ""
    result.check_returncode()
    return result.stdout.strip()


def read_regular(path: str) -> str | None:
    """A regular file's content, not following a link; None when it is no regular file."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(descriptor) as stream:
        return stream.read() if stat.S_ISREG(os.fstat(descriptor).st_mode) else None


def make_ready(volume: dict, mounts: dict[str, str], readme: str) -> str:
    """Format (when blank), mount and set up one disk; return what was done, or raise RuntimeError."""
    device, mount_point, fstype = volume["device"], volume["mount_point"], volume["fstype"]
    done = "checked"
    if mounts.get(mount_point) != device:
        if mount_point in mounts:
            raise RuntimeError(f"{mount_point}: another device ({mounts[mount_point]}) is mounted there")
        found = file_system(device)
        if found and found != fstype:
            raise RuntimeError(f"{device} holds a {found} file system, not {fstype}: left as it is")
        if not found:
            subprocess.run([f"mkfs.{fstype}", "-q", device], check=True)
        os.makedirs(mount_point, mode=0o755, exist_ok=True)
        subprocess.run(["mount", "-t", fstype, "-o", volume["options"], device, mount_point], check=True)
        done = "formatted and mounted" if not found else "mounted"
    shutil.chown(mount_point, volume["owner"], volume["group"])
    os.chmod(mount_point, int(str(volume["mode"]), 8))
    readme_path = os.path.join(mount_point, "README")
    if read_regular(readme_path) != readme:
        if os.path.lexists(readme_path):
            os.unlink(readme_path)
        descriptor = os.open(readme_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with os.fdopen(descriptor, "w") as stream:
            stream.write(readme)
    return done


def main(argv: list[str]) -> int:
    """Make every instance-store disk of the settings ready; 1 when one could not be."""
    with open(argv[1]) as stream:
        settings = json.load(stream)
    volumes = settings["volumes"]
    deadline = time.monotonic() + WAIT_SECONDS
    disks = instance_store_disks()
    while len(disks) < needed(volumes) and time.monotonic() < deadline:
        time.sleep(1)
        disks = instance_store_disks()
    ready, problems = plan(volumes, disks)
    mounts = mounted_devices()
    for volume in ready:
        try:
            print(f"{volume['mount_point']}: {volume['device']} {make_ready(volume, mounts, settings['readme'])}")
        except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
            problems.append(f"{volume['mount_point']}: {e}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
