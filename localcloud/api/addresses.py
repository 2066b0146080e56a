"""Public addresses: the local cloud's own pool, and Elastic IPs kept through stop and start.

- moto hands out random addresses in 54.214.0.0/16 (which belong to someone) and Elastic IPs in
  127.0.0.0/8; here they come from the local cloud's own pool (config.PUBLIC_POOL).
- On stop and start moto replaces an associated Elastic IP with a new auto-assigned address; on
  EC2 the Elastic IP stays.
"""

from __future__ import annotations

from typing import Any

from localcloud.api.patching import controller


def install() -> None:
    from moto.ec2.models import elastic_ip_addresses, elastic_network_interfaces

    elastic_network_interfaces.random_public_ip = allocate_public_ip
    elastic_ip_addresses.random_ip = allocate_public_ip


def allocate_public_ip() -> str:
    """The next free address of the local cloud's pool."""
    return controller().addresses.allocate()


def keep_elastic_addresses(instance: Any) -> None:
    """An associated Elastic IP stays through stop and start (moto swaps in an auto-assigned one)."""
    for address in instance.ec2_backend.addresses:
        if address.eni is not None and address.eni.instance is instance:
            address.eni.public_ip = address.public_ip
