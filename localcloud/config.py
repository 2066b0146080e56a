"""Where the local cloud keeps its state, and the settings a user can change through the environment."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from pathlib import Path

from localcloud.errors import LocalCloudError

# Debian's own AWS account: the base image is registered under it, as Debian's AMIs are on AWS.
DEBIAN_ACCOUNT_ID = "136693071363"
# The account that credentials without a matching moto IAM user act as (moto's default).
DEFAULT_ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-west-2"
DEFAULT_PORT = 5566
# Public addresses (auto-assigned and Elastic IPs) come from this documentation range. The host
# routes each one in use to its machine's network namespace and holds an `unreachable` route for
# the rest, so no address from it is ever sent towards the uplink.
PUBLIC_POOL = ipaddress.ip_network("198.51.100.0/24")
# The address every machine uses as its gateway; it sits on the host side of each veth pair.
GATEWAY = ipaddress.ip_address("169.254.1.1")
# Private ranges of moto's default VPCs, never routed off the host either.
PRIVATE_GUARD = ipaddress.ip_network("172.31.0.0/16")
# What a machine finds inside its own namespace, served by the local cloud's process as EC2 serves
# it: the instance metadata service, the VPC's DNS resolver (EC2's Route 53 Resolver answers at
# 169.254.169.253 too), and the local cloud's API (EC2, STS, S3, ...) as a VPC endpoint would
# offer it, which the base image's system-wide AWS configuration points the SDK at.
IMDS_ADDRESS = ipaddress.ip_address("169.254.169.254")
RESOLVER_ADDRESS = ipaddress.ip_address("169.254.169.253")
SERVICES_ADDRESS = ipaddress.ip_address("169.254.169.252")
# Where machines may never send anything, whatever the port: this host's own networks (added at
# `up`), and the ranges that are not the public Internet. The documentation ranges are left out
# on purpose: on some hosts the package registries resolve into them.
FORBIDDEN_DESTINATIONS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, including other clouds' metadata services
        "172.16.0.0/12",  # RFC 1918
        "192.0.0.0/24",  # IETF protocol assignments
        "192.168.0.0/16",  # RFC 1918
        "198.18.0.0/15",  # benchmarking
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, and the broadcast address
    )
)
# TCP ports machines may open to the outside (the package registries); DNS goes to the resolver.
EGRESS_TCP_PORTS = (80, 443)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Paths and network settings of one local cloud."""

    home: Path
    cache: Path
    port: int
    region: str
    suite: str
    mirror: str
    # Account quotas in force (localcloud.api.quotas names them); absent ones keep AWS's defaults.
    quotas: dict[str, int] = dataclasses.field(default_factory=dict)
    # Seconds the first boot of a new instance holds the package manager's lock (cloud-init's
    # package job on a fresh cloud image).
    first_boot_seconds: int = 60

    @property
    def pidfile(self) -> Path:
        return self.home / "localcloud.pid"

    @property
    def envfile(self) -> Path:
        return self.home / "env"

    @property
    def logfile(self) -> Path:
        return self.home / "localcloud.log"

    @property
    def machines(self) -> Path:
        return self.home / "machines"

    @property
    def store(self) -> Path:
        """Where volumes and snapshots live: a btrfs file system mounted from store_image when it can be."""
        return self.home / "store"

    @property
    def store_image(self) -> Path:
        return self.home / "store.btrfs"

    @property
    def volumes(self) -> Path:
        return self.store / "volumes"

    @property
    def snapshots(self) -> Path:
        return self.store / "snapshots"

    @property
    def ledger(self) -> Path:
        """Host resources (namespaces, links, loop devices, rules) recorded for `down`."""
        return self.home / "ledger"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def credentials(self) -> Path:
        """The administrator's access key, made at each start (mode 0600)."""
        return self.home / "credentials"


def private_dir(path: Path, setting: str) -> Path:
    """Make a directory only root may enter (0700), tightening an existing one."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.chmod(0o700)
    except OSError as exc:
        raise LocalCloudError(f"{path} is not writable ({exc.strerror}); set {setting}") from exc
    return path


def write_credentials(settings: Settings, access_key: str, secret_key: str) -> None:
    """Keep the administrator's keys where only root can read them."""
    staged = settings.credentials.with_suffix(".new")
    staged.unlink(missing_ok=True)
    descriptor = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        json.dump({"access_key": access_key, "secret_key": secret_key}, stream)
    staged.rename(settings.credentials)


def read_credentials(settings: Settings) -> dict[str, str] | None:
    """The administrator's keys of the running local cloud, or None."""
    try:
        return json.loads(settings.credentials.read_text())
    except (OSError, ValueError):
        return None


def load() -> Settings:
    """Read the settings from the environment, with the defaults documented in localcloud/README.md."""
    home = Path(os.environ.get("LOCALCLOUD_HOME", "/var/lib/labcloud-localcloud"))
    cache = Path(os.environ.get("LOCALCLOUD_CACHE", "/var/cache/labcloud-localcloud"))
    return Settings(
        home=home,
        cache=cache,
        port=int(os.environ.get("LOCALCLOUD_PORT", DEFAULT_PORT)),
        region=os.environ.get("LOCALCLOUD_REGION", DEFAULT_REGION),
        suite=os.environ.get("LOCALCLOUD_SUITE", "bookworm"),
        mirror=os.environ.get("LOCALCLOUD_MIRROR", "http://deb.debian.org/debian"),
        quotas=parse_quotas(os.environ.get("LOCALCLOUD_QUOTAS", "")),
        first_boot_seconds=parse_seconds(
            "LOCALCLOUD_FIRST_BOOT_SECONDS", os.environ.get("LOCALCLOUD_FIRST_BOOT_SECONDS", "60")
        ),
    )


def parse_quotas(text: str) -> dict[str, int]:
    """LOCALCLOUD_QUOTAS: comma-separated name=value pairs, such as "elastic-ips=40,standard=256"."""
    quotas = {}
    for item in [part.strip() for part in text.split(",") if part.strip()]:
        name, _, value = item.partition("=")
        if not value.strip().isdigit():
            raise LocalCloudError(
                f"LOCALCLOUD_QUOTAS: {item!r} is not name=<whole number> (for example elastic-ips=40)"
            )
        quotas[name.strip()] = int(value)
    return quotas


def parse_seconds(name: str, text: str) -> int:
    if not text.strip().isdigit():
        raise LocalCloudError(f"{name} is a whole number of seconds, not {text!r}")
    return int(text)
