"""The base image: a Debian root filesystem made once with debootstrap and cached.

Two cached stages: the debootstrapped tree (keyed by suite, mirror and packages), and the base
image made from a copy of it (keyed also by the guest agent, its configuration and the host's
extra CA certificates). A change to the agent rebuilds only the quick second stage; a warm cache
is reused as is.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import shutil
import subprocess
import time
from pathlib import Path

from localcloud.config import Settings, private_dir
from localcloud.errors import LocalCloudError

log = logging.getLogger(__name__)

GUEST = Path(__file__).parent / "guest"
PACKAGES = [
    "systemd",
    "systemd-sysv",
    "dbus",
    "libpam-systemd",
    "openssh-server",
    "sudo",
    "python3",
    "python3-apt",
    "ca-certificates",
    "curl",
    "gnupg",
    "procps",
    "iproute2",
    "netbase",
    "less",
]
HOST_EXTRA_CAS = Path("/usr/local/share/ca-certificates")
AGENT_CONFIG = {"default_user": "admin", "default_user_groups": ["adm", "sudo"]}


def extra_ca_files() -> list[Path]:
    """The host's locally added CA certificates, which the machines must trust too."""
    if not HOST_EXTRA_CAS.is_dir():
        return []
    return sorted(p for p in HOST_EXTRA_CAS.rglob("*.crt") if p.is_file())


def bootstrap_key(settings: Settings) -> str:
    """A digest of the inputs of the debootstrapped tree."""
    return hashlib.sha256(json.dumps([settings.suite, settings.mirror, PACKAGES]).encode()).hexdigest()[:16]


def image_key(settings: Settings) -> str:
    """A digest of every input of the base image (the customisation's own code included)."""
    digest = hashlib.sha256(bootstrap_key(settings).encode())
    digest.update(json.dumps(AGENT_CONFIG).encode())
    digest.update(inspect.getsource(customise).encode())
    for path in sorted(GUEST.iterdir()) + extra_ca_files():
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def image_dir(settings: Settings) -> Path:
    """Where the base image for the current inputs lives."""
    return settings.cache / f"image-debian-{settings.suite}-{image_key(settings)}"


def rootfs(settings: Settings) -> Path:
    """The cached base image's root filesystem, built if it is not there yet."""
    private_dir(settings.cache, "LOCALCLOUD_CACHE (the image cache)")
    target = image_dir(settings)
    if (target / "complete").exists():
        return target / "rootfs"
    bootstrapped = settings.cache / f"debootstrap-{settings.suite}-{bootstrap_key(settings)}"
    if not (bootstrapped / "complete").exists():
        bootstrap(settings, bootstrapped)
    work = fresh_dir(Path(str(target) + ".partial"))
    subprocess.run(["cp", "-a", str(bootstrapped / "rootfs"), str(work / "rootfs")], check=True)
    customise(work / "rootfs", settings)
    (work / "complete").write_text("")
    if target.exists():
        shutil.rmtree(target)
    work.rename(target)
    prune(settings, keep={target.name, bootstrapped.name})
    return target / "rootfs"


def prune(settings: Settings, keep: set[str]) -> None:
    """Remove cached trees made from older inputs."""
    for entry in settings.cache.iterdir():
        if entry.is_dir() and entry.name.startswith(("image-", "debootstrap-")) and entry.name not in keep:
            shutil.rmtree(entry, ignore_errors=True)


def fresh_dir(path: Path) -> Path:
    """An empty directory at path, or a clear error if the cache cannot be written."""
    try:
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
    except OSError as exc:
        raise LocalCloudError(
            f"the image cache {path.parent} is not writable ({exc.strerror}); set LOCALCLOUD_CACHE"
        ) from exc
    return path


def bootstrap(settings: Settings, target: Path) -> None:
    """Run debootstrap into a temporary directory, then move the tree into place."""
    for tool in ("debootstrap", "chroot"):
        if shutil.which(tool) is None:
            raise LocalCloudError(f"{tool} is not installed: run `make setup` (or apt-get install debootstrap)")
    work = fresh_dir(Path(str(target) + ".partial"))
    tree = work / "rootfs"
    started = time.monotonic()
    log.info("building the base image with debootstrap (%s) into %s", settings.suite, tree)
    result = subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            settings.suite,
            str(tree),
            settings.mirror,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        (work / "debootstrap.log").write_text(result.stdout + result.stderr)
        raise LocalCloudError(
            f"debootstrap failed (exit {result.returncode}); its log is {work / 'debootstrap.log'}:\n"
            + "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        )
    (work / "complete").write_text(json.dumps({"seconds": round(time.monotonic() - started, 1)}))
    if target.exists():
        shutil.rmtree(target)
    work.rename(target)
    log.info("debootstrap finished in %.0f s", time.monotonic() - started)


def chroot(tree: Path, *argv: str) -> None:
    """Run a command inside the tree."""
    subprocess.run(["chroot", str(tree), *argv], check=True, capture_output=True)


def customise(tree: Path, settings: Settings) -> None:
    """Make the debootstrapped tree look like a Debian cloud image with the local cloud's agent."""
    (tree / "etc/apt/sources.list").write_text(
        f"deb {settings.mirror} {settings.suite} main\n"
        f"deb {settings.mirror} {settings.suite}-updates main\n"
        f"deb http://deb.debian.org/debian-security {settings.suite}-security main\n"
    )
    cas = tree / "usr/local/share/ca-certificates"
    cas.mkdir(parents=True, exist_ok=True)
    for ca in extra_ca_files():
        shutil.copy2(ca, cas / ca.name)
    chroot(tree, "update-ca-certificates")
    shutil.copy2(GUEST / "localcloud-agent", tree / "usr/local/sbin/localcloud-agent")
    (tree / "usr/local/sbin/localcloud-agent").chmod(0o755)
    # cloud-init's command line, so that `cloud-init status --wait` works as on a cloud image.
    shutil.copy2(GUEST / "cloud-init", tree / "usr/bin/cloud-init")
    (tree / "usr/bin/cloud-init").chmod(0o755)
    units = tree / "etc/systemd/system"
    for unit, wanted_by in (
        ("localcloud-init.service", "sysinit.target"),
        ("localcloud-user-data.service", "multi-user.target"),
        ("localcloud-first-boot.service", "multi-user.target"),
    ):
        shutil.copy2(GUEST / unit, units / unit)
        wants = units / f"{wanted_by}.wants"
        wants.mkdir(exist_ok=True)
        (wants / unit).symlink_to(f"/etc/systemd/system/{unit}")
    # DNS from the VPC resolver, and the SDK pointed at the local cloud's API endpoint: for
    # services (systemd's default environment) and for logins and sudo (pam_env's /etc/environment).
    shutil.copy2(GUEST / "resolv.conf", tree / "etc/resolv.conf")
    (tree / "etc/systemd/system.conf.d").mkdir(parents=True, exist_ok=True)
    shutil.copy2(GUEST / "aws-endpoint.conf", tree / "etc/systemd/system.conf.d/50-localcloud-aws-endpoint.conf")
    endpoint = (GUEST / "aws-endpoint.conf").read_text().split("DefaultEnvironment=", 1)[1].strip()
    with open(tree / "etc/environment", "a") as environment:
        environment.write(endpoint + "\n")
    (tree / "etc/localcloud").mkdir(exist_ok=True)
    (tree / "etc/localcloud/agent.json").write_text(json.dumps(AGENT_CONFIG, indent=2) + "\n")
    # Each instance gets its own machine ID and host keys at first boot. systemd takes a machine ID
    # from D-Bus's when /etc/machine-id is empty or "uninitialized": debootstrap left a D-Bus ID
    # in the tree (every instance would share it), so D-Bus reads /etc/machine-id instead, as on
    # Debian's cloud images. systemd then makes the ID from the container's UUID (random at every
    # boot from an uninitialised ID) and writes it to /etc/machine-id, where it stays.
    (tree / "etc/machine-id").write_text("")
    dbus_id = tree / "var/lib/dbus/machine-id"
    if dbus_id.parent.is_dir():
        dbus_id.unlink(missing_ok=True)
        dbus_id.symlink_to("/etc/machine-id")
    for key in (tree / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (tree / "etc/hostname").write_text("localhost\n")
    chroot(tree, "apt-get", "clean")
    for lists in (tree / "var/lib/apt/lists").glob("*_*"):
        lists.unlink()
