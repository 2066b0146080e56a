"""`down` after an orderly stop or a crash: remove everything the local cloud made on the host."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import time
from pathlib import Path

from localcloud.config import Settings
from localcloud.host import disks, kernel, machines, network

log = logging.getLogger(__name__)
# How long `down` waits for the kernel to let go of the loop devices it detached.
LOOP_RELEASE_SECONDS = 20


def process_is(pid: int, program: str) -> bool:
    """Whether a PID is alive and runs the given program (a recycled PID is left alone)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(Path(arg.decode(errors="replace")).name == program for arg in argv[:3])


def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def stop_process(pid: int, program: str, timeout: float) -> None:
    """SIGTERM a process we started, then SIGKILL its group if it outlives the timeout."""
    if not process_is(pid, program):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while process_is(pid, program) and time.monotonic() < deadline:
        time.sleep(0.1)
    if process_is(pid, program):
        log.warning("%s (%s) did not stop in %.0f s; killing it", program, pid, timeout)
        # A container's init is nspawn's child in its own session: kill it too, or it outlives nspawn.
        for child in machines.child_pids(pid):
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGKILL)
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            os.kill(pid, signal.SIGKILL)


def leftovers(settings: Settings) -> dict[str, list[str]]:
    """What of the local cloud is still on the host: processes, namespaces, links, loops, rules."""
    namespaces, links = network.leftovers()
    machines = []
    if settings.machines.is_dir():
        for pidfile in settings.machines.glob("*/nspawn.pid"):
            pid = read_pid(pidfile)
            if pid and process_is(pid, "systemd-nspawn"):
                machines.append(f"{pidfile.parent.name} (pid {pid})")
    rules = [
        f"{table}/{chain}"
        for table, chain in (("filter", network.CHAIN), ("filter", network.INPUT_CHAIN), ("nat", network.CHAIN))
        if network.iptables("-S", chain, table=table, check=False).returncode == 0
    ]
    api = []
    pid = read_pid(settings.pidfile)
    if pid and process_is(pid, "localcloud"):
        api.append(f"api (pid {pid})")
    return {
        "processes": api + machines,
        "mounts": disks.mounts_under(settings.machines) if settings.machines.exists() else [],
        "namespaces": namespaces,
        "links": links,
        "loop_devices": disks.loops_under(settings.home) if settings.home.exists() else [],
        "iptables_chains": rules,
    }


def down(settings: Settings) -> dict[str, list[str]]:
    """Stop the API (which powers its machines off), then sweep whatever a crash left behind."""
    pid = read_pid(settings.pidfile)
    if pid:
        stop_process(pid, "localcloud", timeout=150)
    if settings.machines.is_dir():
        for pidfile in settings.machines.glob("*/nspawn.pid"):
            machine_pid = read_pid(pidfile)
            if machine_pid:
                stop_process(machine_pid, "systemd-nspawn", timeout=30)
    network.remove_all()
    if settings.home.exists():
        for loop in disks.loops_under(settings.home):
            disks.detach_loop(loop)
    previous = settings.home / "ip_forward"
    if previous.exists():
        network.restore_forwarding(previous.read_text().strip())
    limits = settings.home / "kernel_limits"
    kernel.restore_limits(kernel.load(limits))
    # A machine's root is mounted inside its directory while it runs: never delete through a mount.
    if settings.machines.exists():
        for point in sorted(disks.mounts_under(settings.machines), reverse=True):
            disks.unmount(Path(point))
        if disks.mounts_under(settings.machines):
            log.warning("%s still holds mounts; it is left in place", settings.machines)
        else:
            shutil.rmtree(settings.machines, ignore_errors=True)
    # The store's file system goes as a whole; a plain-directory store is emptied.
    disks.unmount_store(settings.store, settings.store_image)
    if settings.store.is_dir() and not settings.store.is_mount():
        for directory in settings.store.iterdir():
            disks.remove(directory)
    for path in (settings.pidfile, settings.envfile, settings.credentials, previous, limits):
        path.unlink(missing_ok=True)
    # The kernel lets a loop device go only once nothing holds it: the file systems of machines
    # killed a moment ago, a store unmounted lazily. Bounded: what is still held then is reported.
    deadline = time.monotonic() + LOOP_RELEASE_SECONDS
    while settings.home.exists() and disks.loops_under(settings.home) and time.monotonic() < deadline:
        for loop in disks.loops_under(settings.home):
            disks.detach_loop(loop)
        time.sleep(0.25)
    return leftovers(settings)
