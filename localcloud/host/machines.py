"""Real machines: systemd-nspawn containers booted with systemd, one per running instance.

A machine boots from its root volume's tree, inside the network namespace made for it, with its
metadata bind-mounted read-only at /run/localcloud-meta for the guest agent. EBS volumes and
instance-store disks appear as block devices named the way a Nitro instance names them:

  EBS volume attached as /dev/sdf   /dev/nvme<N>n1, linked from /dev/sdf, /dev/xvdf and
                                    /dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_vol<id>
  instance-store disk K             /dev/nvme<N>n1, linked from
                                    /dev/disk/by-id/nvme-Amazon_EC2_NVMe_Instance_Storage_AWS<id>

A monitor thread waits for each container to exit and reports how it ended: an orderly stop the
local cloud asked for, a reboot from inside (exit status 133), or a power-off from inside.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from localcloud.errors import LocalCloudError
from localcloud.host import disks

log = logging.getLogger(__name__)

REBOOT_EXIT = 133
BOOT_TIMEOUT = 30.0
STOP_TIMEOUT = 90.0
# A terminated machine's disks are deleted, so a shutdown that hangs there (an SSH session that a
# client still holds open can keep its scope from stopping for systemd's whole 90 s) is cut short.
TERMINATE_TIMEOUT = 20.0


@dataclasses.dataclass
class BlockDevice:
    """A disk visible inside a machine."""

    node: str
    image: Path
    aliases: list[str]
    link_ids: list[str]
    volume_id: str | None = None
    loop: str | None = None

    def as_metadata(self) -> dict:
        return {"node": self.node, "aliases": self.aliases, "link_ids": self.link_ids}


def ebs_device(volume_id: str, device_name: str, index: int, image: Path) -> BlockDevice:
    """The device an EBS volume attached at device_name shows up as (Nitro naming)."""
    letter = device_name.rstrip("0123456789")[-1]
    return BlockDevice(
        node=f"/dev/nvme{index}n1",
        image=image,
        aliases=[f"/dev/sd{letter}", f"/dev/xvd{letter}"],
        link_ids=[f"nvme-Amazon_Elastic_Block_Store_{volume_id.replace('-', '')}"],
        volume_id=volume_id,
    )


def instance_store_device(instance_id: str, disk: int, index: int, image: Path) -> BlockDevice:
    """The device an instance-store disk shows up as."""
    serial = (instance_id.removeprefix("i-") + f"{disk:03d}").ljust(20, "0")[:20]
    return BlockDevice(
        node=f"/dev/nvme{index}n1",
        image=image,
        aliases=[],
        link_ids=[f"nvme-Amazon_EC2_NVMe_Instance_Storage_AWS{serial.upper()}"],
    )


def child_pids(pid: int) -> list[int]:
    """The PIDs of a process's children (for systemd-nspawn: the container's init)."""
    try:
        return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except (OSError, ValueError):
        return []


class Machine:
    """One instance's container, started and stopped on the local cloud's request."""

    def __init__(self, instance_id: str, workdir: Path, on_exit: Callable[[str, str], None]):
        self.instance_id = instance_id
        self.workdir = workdir
        self.on_exit = on_exit
        self.process: subprocess.Popen | None = None
        self.devices: list[BlockDevice] = []
        self.meta: dict = {}
        self.expected_exit = False
        self.lock = threading.RLock()
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pidfile(self) -> Path:
        return self.workdir / "nspawn.pid"

    @property
    def console(self) -> Path:
        return self.workdir / "console.log"

    def init_pid(self) -> int | None:
        """The PID of systemd inside the container, once it is there."""
        if not self.running:
            return None
        pids = child_pids(self.process.pid)
        return pids[0] if pids else None

    @property
    def root(self) -> Path:
        """Where the machine's root tree is mounted while it runs (setuid allowed, unlike the store)."""
        return self.workdir / "root"

    @property
    def meta_dir(self) -> Path:
        return self.workdir / "meta"

    def write_metadata(self) -> None:
        """Write what the guest agent reads, in the directory bind-mounted read-only."""
        self.meta_dir.mkdir(exist_ok=True)
        staged = self.meta_dir / "instance.json.new"
        staged.write_text(json.dumps(dict(self.meta, volumes=[d.as_metadata() for d in self.devices]), indent=2))
        staged.rename(self.meta_dir / "instance.json")

    def boot(self, root: Path, namespace: str, meta: dict, user_data: bytes | None, devices: list[BlockDevice]) -> None:
        """Start the container and wait until systemd runs inside it."""
        with self.lock:
            if self.running:
                return
            self.devices = devices
            try:
                for device in devices:
                    device.loop = disks.attach_loop(device.image)
                disks.mount_root(root, self.root)
            except LocalCloudError:
                self.release_devices()
                raise
            self.meta = meta
            self.write_metadata()
            user_data_file = self.meta_dir / "user-data"
            if user_data:
                user_data_file.write_bytes(user_data)
            else:
                user_data_file.unlink(missing_ok=True)
            argv = [
                "systemd-nspawn",
                "--quiet",
                "--register=no",
                "--keep-unit",
                "--boot",
                f"--directory={self.root}",
                f"--machine={self.instance_id}",
                f"--network-namespace-path=/run/netns/{namespace}",
                "--resolv-conf=off",
                "--link-journal=no",
                "--console=read-only",
                f"--bind-ro={self.meta_dir}:/run/localcloud-meta",
            ] + [f"--bind={d.loop}:{d.node}" for d in devices]
            self.expected_exit = False
            with open(self.console, "ab") as console:
                console.write(f"\n--- boot {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
                console.flush()
                self.process = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=console,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.pidfile.write_text(f"{self.process.pid}\n")
            deadline = time.monotonic() + BOOT_TIMEOUT
            while self.init_pid() is None:
                if not self.running or time.monotonic() > deadline:
                    self.kill()
                    self.release_devices()
                    raise LocalCloudError(
                        f"machine {self.instance_id} did not start; see {self.console}:\n"
                        + "\n".join(self.console.read_text(errors="replace").splitlines()[-10:])
                    )
                time.sleep(0.05)
            threading.Thread(
                target=self.monitor, args=(self.process,), daemon=True, name=f"monitor-{self.instance_id}"
            ).start()

    def monitor(self, process: subprocess.Popen) -> None:
        """Wait for the container to exit and report how it ended."""
        code = process.wait()
        with self.lock:
            if process is not self.process:
                return
            self.release_devices()
            self.pidfile.unlink(missing_ok=True)
            if self.expected_exit:
                how = "stopped"
            elif code == REBOOT_EXIT:
                how = "rebooted"
            else:
                how = "powered-off"
        log.info("machine %s exited with %s (%s)", self.instance_id, code, how)
        self.on_exit(self.instance_id, how)

    def release_devices(self) -> None:
        """Detach the loop devices of a machine that no longer runs, and unmount its root."""
        for device in self.devices:
            if device.loop:
                disks.detach_loop(device.loop)
                device.loop = None
        disks.unmount(self.root)

    def poweroff(self, timeout: float = STOP_TIMEOUT) -> None:
        """Shut the container down in order (as a stop does), killing it if it hangs."""
        with self.lock:
            if not self.running:
                return
            self.expected_exit = True
            process = self.process
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("machine %s did not power off in %.0f s; killing it", self.instance_id, timeout)
            self.kill()
        # The monitor thread releases the devices; wait for it so callers see a clean state.
        deadline = time.monotonic() + 10
        while (any(d.loop for d in self.devices) or self.root.is_mount()) and time.monotonic() < deadline:
            time.sleep(0.05)

    def kill(self) -> None:
        """Kill the container: its init first (which ends its PID namespace), then nspawn's group.

        Killing only systemd-nspawn would leave the container's systemd running under the host's
        init, holding the machine's disk and mounts.
        """
        if self.process and self.process.poll() is None:
            self.expected_exit = True
            init = self.init_pid()
            if init is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(init, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def reboot(self) -> None:
        """Ask systemd inside to reboot (as ctrl-alt-del would); the container exits with 133."""
        pid = self.init_pid()
        if pid:
            os.kill(pid, signal.SIGINT)

    def exec(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a command inside the running container."""
        pid = self.init_pid()
        if pid is None:
            raise LocalCloudError(f"machine {self.instance_id} is not running")
        return subprocess.run(
            ["nsenter", f"--target={pid}", "--mount", "--uts", "--ipc", "--net", "--pid", "--", *argv],
            capture_output=True,
            text=True,
            check=check,
        )

    def hot_attach(self, device: BlockDevice) -> None:
        """Make a block device appear inside the running container."""
        with self.lock:
            device.loop = disks.attach_loop(device.image)
            self.devices.append(device)
            rdev = os.stat(device.loop).st_rdev
            self.exec("mknod", "-m", "0660", device.node, "b", str(os.major(rdev)), str(os.minor(rdev)))
            self.exec("chgrp", "disk", device.node, check=False)
            self.write_metadata()
            self.exec("/usr/local/sbin/localcloud-agent", "devices", check=False)

    def hot_detach(self, volume_id: str) -> None:
        """Remove a volume's device from the running container."""
        with self.lock:
            for device in [d for d in self.devices if d.volume_id == volume_id]:
                links = device.aliases + [f"/dev/disk/by-id/{i}" for i in device.link_ids]
                self.exec(
                    "sh",
                    "-c",
                    'for p in "$@"; do umount -l "$p" 2>/dev/null; done; rm -f "$@"',
                    "sh",
                    device.node,
                    *links,
                    check=False,
                )
                if device.loop:
                    disks.detach_loop(device.loop)
                self.devices.remove(device)
            self.write_metadata()
