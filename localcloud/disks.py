"""Where the bytes of volumes and snapshots live on the host.

A root volume is a directory tree that a machine boots from; any other EBS volume, and every
instance-store disk, is a sparse image file that becomes a loop device while its machine runs.
A snapshot is a copy of either kind. Copies use reflinks where the file system has them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections import defaultdict
from pathlib import Path

from localcloud.errors import LocalCloudError

TREE = "root"
IMAGE = "disk.img"


class DiskStore:
    """Volumes and snapshots on the host, keyed by their EC2 IDs."""

    def __init__(self, volumes: Path, snapshots: Path):
        self.volumes = volumes
        self.snapshots = snapshots
        self.external: dict[str, Path] = {}
        self.locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        volumes.mkdir(parents=True, exist_ok=True)
        snapshots.mkdir(parents=True, exist_ok=True)

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
            copy(source, tree)
        return tree

    def materialise_block(self, volume_id: str, size_gib: int, snapshot_id: str | None) -> Path:
        """Make a block volume's image file, from a snapshot or blank; later calls return it."""
        image = self.volume_image(volume_id)
        if image.exists():
            return image
        if snapshot_id:
            with self.locks[snapshot_id]:
                source = self.snapshot_source(snapshot_id)
                if source is not None and source.name == IMAGE:
                    copy(source, image)
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
                    copy(source, target / source.name)
                    return
            target.mkdir(parents=True, exist_ok=True)

    def copy_snapshot(self, source_id: str, snapshot_id: str) -> None:
        """CopySnapshot: duplicate the data of one snapshot under a new ID."""
        with self.locks[source_id]:
            source = self.snapshot_source(source_id)
            if source is not None:
                copy(source, self.snapshots / snapshot_id / source.name)

    def delete_volume(self, volume_id: str) -> None:
        shutil.rmtree(self.volumes / volume_id, ignore_errors=True)

    def delete_snapshot(self, snapshot_id: str) -> None:
        with self.locks[snapshot_id]:
            self.external.pop(snapshot_id, None)
            shutil.rmtree(self.snapshots / snapshot_id, ignore_errors=True)

    def usage(self) -> dict[str, int]:
        """How many volumes and snapshots hold data on disk."""
        return {
            "volumes": sum(1 for p in self.volumes.iterdir() if p.is_dir()),
            "snapshots": sum(1 for p in self.snapshots.iterdir() if p.is_dir()),
        }


def copy(source: Path, target: Path) -> None:
    """Copy a tree or an image file, keeping ownership, modes, xattrs and holes."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial) if partial.is_dir() else partial.unlink()
    subprocess.run(
        ["cp", "-a", "--reflink=auto", "--sparse=always", str(source), str(partial)],
        check=True,
        capture_output=True,
    )
    partial.rename(target)


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
