"""Where the local cloud keeps its state, and the settings a user can change through the environment."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from pathlib import Path

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


@dataclasses.dataclass(frozen=True)
class Settings:
    """Paths and network settings of one local cloud."""

    home: Path
    cache: Path
    port: int
    region: str
    suite: str
    mirror: str

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
    )
