"""Where the bytes of volumes and snapshots live on the host.

A root volume is a directory tree that a machine boots from; any other EBS volume, and every
instance-store disk, is a sparse image file that becomes a loop device while its machine runs.
A snapshot is a copy of either kind.

Volumes and snapshots live on a btrfs file system in a sparse file of the local cloud's home
(mounted by `mount_store`), where a tree is a subvolume and copying one is a btrfs snapshot: a
volume made from a snapshot costs milliseconds whatever its size, as an EBS volume does, so
launching many instances from one image is not one full copy after another. Without btrfs
(no mkfs.btrfs, or mounting is not allowed) the store is a plain directory and copies are full.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

from localcloud.errors import LocalCloudError

log = logging.getLogger(__name__)

TREE = "root"
IMAGE = "disk.img"
# Imported external trees (the cached base image) inside a copy-on-write store.
IMPORTED = "imported"


class DiskStore:
    """Volumes and snapshots on the host, keyed by their EC2 IDs."""

    def __init__(self, volumes: Path, snapshots: Path):
        self.volumes = volumes
        self.snapshots = snapshots
        self.external: dict[str, Path] = {}
        self.locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        volumes.mkdir(parents=True, exist_ok=True)
        snapshots.mkdir(parents=True, exist_ok=True)
        self.cow = is_btrfs(volumes) and is_btrfs(snapshots)

    def register_external_snapshot(self, snapshot_id: str, tree: Path) -> None:
        """Serve a snapshot from a tree the store does not own (the cached base image)."""
        self.external[snapshot_id] = tree

    def snapshot_source(self, snapshot_id: str) -> Path | None:
        """The tree or image file behind a snapshot, if it has data."""
        if snapshot_id in self.external:
            return self.external[snapshot_id]
        for name in (TREE, IMAGE):
            path = self.snapshots / snapshot_id / name
            if path.exists():
                return path
        return None

    def volume_tree(self, volume_id: str) -> Path:
        """The directory a root volume's tree lives in."""
        return self.volumes / volume_id / TREE

    def volume_image(self, volume_id: str) -> Path:
        """The sparse image file of a block volume."""
        return self.volumes / volume_id / IMAGE

    def has_volume_data(self, volume_id: str) -> bool:
        return self.volume_tree(volume_id).exists() or self.volume_image(volume_id).exists()

    def materialise_root(self, volume_id: str, snapshot_id: str) -> Path:
        """Make a root volume's tree from a snapshot, once; later calls return the existing tree."""
        tree = self.volume_tree(volume_id)
        if tree.exists():
            return tree
        with self.locks[snapshot_id]:
            source = self.snapshot_source(snapshot_id)
            if source is None or (source.name == IMAGE and snapshot_id not in self.external):
                raise LocalCloudError(f"snapshot {snapshot_id} holds no root file system")
            if self.cow and snapshot_id in self.external:
                source = self.import_external(source)
            copy(source, tree, self.cow)
        return tree

    def import_external(self, tree: Path) -> Path:
        """Copy an external tree into the store once (as a subvolume), so volumes are snapshots of it.

        Keyed by the tree's path, so the base image of every region shares one import.
        """
        imported = self.snapshots.parent / IMPORTED / hashlib.sha256(str(tree.resolve()).encode()).hexdigest()[:16]
        with self.locks[f"import {imported.name}"]:
            if not imported.exists():
                started = time.monotonic()
                partial = imported.with_name(imported.name + ".partial")
                remove(partial)
                partial.parent.mkdir(parents=True, exist_ok=True)
                subprocess.run(["btrfs", "subvolume", "create", str(partial)], check=True, capture_output=True)
                subprocess.run(["cp", "-a", f"{tree}/.", str(partial)], check=True, capture_output=True)
                partial.rename(imported)
                log.info("imported %s into the store in %.1f s", tree, time.monotonic() - started)
        return imported

    def prepare_external(self, tree: Path) -> None:
        """Import an external tree ahead of the first volume made from it (a no-op without btrfs)."""
        if not self.cow:
            return
        try:
            self.import_external(tree)
        except (OSError, subprocess.CalledProcessError) as exc:
            # The first volume made from the tree imports it again and reports the error there.
            log.warning("could not import %s into the store ahead of use: %s", tree, exc)

    def materialise_block(self, volume_id: str, size_gib: int, snapshot_id: str | None) -> Path:
        """Make a block volume's image file, from a snapshot or blank; later calls return it."""
        image = self.volume_image(volume_id)
        if image.exists():
            return image
        if snapshot_id:
            with self.locks[snapshot_id]:
                source = self.snapshot_source(snapshot_id)
                if source is not None and source.name == IMAGE:
                    copy(source, image, self.cow)
                    return image
        image.parent.mkdir(parents=True, exist_ok=True)
        with open(image, "wb") as handle:
            handle.truncate(size_gib * 1024**3)
        return image

    def snapshot_volume(self, volume_id: str, snapshot_id: str) -> None:
        """Copy a volume's data into a snapshot (an unused blank volume gives an empty snapshot)."""
        target = self.snapshots / snapshot_id
        with self.locks[snapshot_id]:
            for source in (self.volume_tree(volume_id), self.volume_image(volume_id)):
                if source.exists():
                    copy(source, target / source.name, self.cow)
                    return
            target.mkdir(parents=True, exist_ok=True)

    def copy_snapshot(self, source_id: str, snapshot_id: str) -> None:
        """CopySnapshot, CopyImage: duplicate the data of one snapshot under a new ID (in a
        copy-on-write store a btrfs snapshot or a reflink, as a volume is made from a snapshot)."""
        target = self.snapshots / snapshot_id
        with self.locks[source_id]:
            source = self.snapshot_source(source_id)
            if source is None:
                target.mkdir(parents=True, exist_ok=True)
                return
            external = source_id in self.external
            if self.cow and external:
                source = self.import_external(source)
            copy(source, target / (TREE if source.is_dir() else IMAGE), self.cow)

    def delete_volume(self, volume_id: str) -> None:
        remove(self.volumes / volume_id)

    def delete_snapshot(self, snapshot_id: str) -> None:
        with self.locks[snapshot_id]:
            self.external.pop(snapshot_id, None)
            remove(self.snapshots / snapshot_id)

    def usage(self) -> dict[str, int]:
        """How many volumes and snapshots hold data on disk."""
        return {
            "volumes": sum(1 for p in self.volumes.iterdir() if p.is_dir()),
            "snapshots": sum(1 for p in self.snapshots.iterdir() if p.is_dir()),
        }


def copy(source: Path, target: Path, cow: bool = False) -> None:
    """Copy a tree or an image file, keeping ownership, modes, xattrs and holes.

    In a copy-on-write store a tree that is a subvolume is copied as a btrfs snapshot, and an
    image file as a reflink; otherwise the bytes are copied.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    remove(partial)
    if cow and source.is_dir() and is_subvolume(source):
        subprocess.run(["btrfs", "subvolume", "snapshot", str(source), str(partial)], check=True, capture_output=True)
    else:
        subprocess.run(
            ["cp", "-a", "--reflink=auto", "--sparse=always", str(source), str(partial)],
            check=True,
            capture_output=True,
        )
    partial.rename(target)


def remove(path: Path) -> None:
    """Delete a file or a tree; subvolumes inside it are deleted as subvolumes (at once, not file by file)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
        return
    if not path.is_dir():
        return
    for tree in [path, *(child for child in path.iterdir() if child.is_dir() and not child.is_symlink())]:
        if is_subvolume(tree):
            subprocess.run(["btrfs", "subvolume", "delete", str(tree)], capture_output=True, check=False)
    shutil.rmtree(path, ignore_errors=True)


def is_btrfs(path: Path) -> bool:
    result = subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True, check=False)
    return result.stdout.strip() == "btrfs"


def is_subvolume(path: Path) -> bool:
    """Whether a directory is the root of a btrfs subvolume (its inode number is 256)."""
    try:
        return path.stat().st_ino == 256 and is_btrfs(path)
    except OSError:
        return False


def mount_store(store: Path, image: Path) -> bool:
    """Mount a btrfs file system from a sparse file at store (made on first use); False when it cannot be.

    The file gets 80 % of the free space of the disk it is on, as a sparse size: it uses only what
    the volumes and snapshots hold. `unmount_store` removes it.
    """
    if store.is_dir() and store.is_mount():
        return is_btrfs(store)
    mkfs = shutil.which("mkfs.btrfs")
    if mkfs is None or shutil.which("btrfs") is None:
        log.warning("btrfs-progs is not installed: volumes are full copies (slower launches)")
        store.mkdir(parents=True, exist_ok=True)
        return False
    store.mkdir(parents=True, exist_ok=True)
    if any(store.iterdir()):
        log.warning("%s holds files from an earlier run; using it as a plain directory", store)
        return False
    image.unlink(missing_ok=True)
    free = shutil.disk_usage(image.parent).free
    with open(image, "wb") as handle:
        handle.truncate(max(int(free * 0.8), 2 * 1024**3))
    # mount's loop option sets autoclear: the loop device goes away with the unmount. Nothing on the
    # store is a device or runs setuid from here; a machine's root gets a mount of its own (root_mount).
    for argv in ([mkfs, "-q", "-f", str(image)], ["mount", "-o", "loop,nosuid,nodev", str(image), str(store)]):
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode:
            log.warning(
                "cannot make a btrfs store (`%s`: %s): volumes are full copies (slower launches)",
                " ".join(argv[:2]),
                result.stderr.strip(),
            )
            image.unlink(missing_ok=True)
            return False
    return True


def unmount_store(store: Path, image: Path) -> None:
    """Unmount the store (its loop device goes with it) and delete its file."""
    for _ in range(20):
        if not (store.is_dir() and store.is_mount()):
            break
        if subprocess.run(["umount", str(store)], capture_output=True, check=False).returncode:
            time.sleep(0.25)
    else:
        log.warning("%s is still busy; detaching it lazily", store)
        subprocess.run(["umount", "--lazy", str(store)], capture_output=True, check=False)
    if image.exists():
        found = subprocess.run(["losetup", "--associated", str(image)], capture_output=True, text=True, check=False)
        for line in found.stdout.splitlines():
            detach_loop(line.split(":", 1)[0])
    image.unlink(missing_ok=True)


def mount_root(tree: Path, target: Path) -> None:
    """Mount a machine's root tree at target for as long as it runs, with setuid allowed (sudo inside
    the machine needs it) but still no devices; the store itself stays nosuid,nodev."""
    target.mkdir(mode=0o700, exist_ok=True)
    unmount(target)
    for argv in (
        ["mount", "--bind", str(tree), str(target)],
        ["mount", "-o", "remount,bind,suid,nodev", str(target)],
    ):
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode:
            unmount(target)
            raise LocalCloudError(f"could not mount the root of a machine at {target}: {result.stderr.strip()}")


def unmount(target: Path) -> None:
    """Unmount whatever is mounted at target (nothing is fine)."""
    while target.is_mount():
        if subprocess.run(["umount", str(target)], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "--lazy", str(target)], capture_output=True, check=False)
            return


def mounts_under(directory: Path) -> list[str]:
    """Mount points inside a directory (machines' roots left by a crash)."""
    prefix = str(directory.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    return [point for point in points if point.startswith(prefix)]


def attach_loop(image: Path) -> str:
    """Attach an image file to a free loop device and return the device path."""
    result = subprocess.run(["losetup", "--find", "--show", str(image)], capture_output=True, text=True, check=False)
    if result.returncode:
        raise LocalCloudError(f"could not attach {image} to a loop device: {result.stderr.strip()}")
    return result.stdout.strip()


def detach_loop(device: str) -> None:
    """Detach a loop device (the kernel finishes once nothing holds it open)."""
    subprocess.run(["losetup", "--detach", device], capture_output=True, check=False)


def loops_under(directory: Path) -> list[str]:
    """Loop devices whose backing file is inside the given directory."""
    result = subprocess.run(["losetup", "--list", "--json"], capture_output=True, text=True, check=False)
    if result.returncode or not result.stdout.strip():
        return []
    devices = json.loads(result.stdout).get("loopdevices", [])
    prefix = str(directory.resolve()) + "/"
    return [d["name"] for d in devices if (d.get("back-file") or "").split(" (deleted)")[0].startswith(prefix)]
