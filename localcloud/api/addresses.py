"""Public addresses: the local cloud's own pool, and Elastic IPs kept through stop and start.

- moto hands out random addresses in 54.214.0.0/16 (which belong to someone) and Elastic IPs in
  127.0.0.0/8; here they come from the local cloud's own pool (config.PUBLIC_POOL).
- On stop and start moto replaces an associated Elastic IP with a new auto-assigned address; on
  EC2 the Elastic IP stays.
- AssociateAddress: moto associates with an instance in any state; EC2 refuses an instance that is
  pending, shutting down or terminated (`InvalidInstanceID`, "The pending instance 'i-...' is not
  in a valid state for this operation."), so a tool must wait for `running` (or `stopped`).
"""

from __future__ import annotations

from typing import Any

from localcloud.api.patching import controller, ec2_error, original, replace

# Instance states in which EC2 refuses to associate an address with the instance.
NOT_ASSOCIABLE = ("pending", "shutting-down", "terminated")


def install() -> None:
    from moto.ec2.models import elastic_ip_addresses, elastic_network_interfaces

    elastic_network_interfaces.random_public_ip = allocate_public_ip
    elastic_ip_addresses.random_ip = allocate_public_ip
    replace(elastic_ip_addresses.ElasticAddressBackend, "associate_address", associate_address)


def associate_address(self: Any, instance: Any = None, eni: Any = None, **kwargs: Any) -> Any:
    """AssociateAddress: only with an instance that is running or stopped (or its interface)."""
    target = instance if instance is not None else getattr(eni, "instance", None)
    if target is not None and target.state in NOT_ASSOCIABLE:
        message = f"The {target.state} instance '{target.id}' is not in a valid state for this operation."
        raise ec2_error("InvalidInstanceID", message)
    return original("ElasticAddressBackend", "associate_address")(self, instance=instance, eni=eni, **kwargs)


def allocate_public_ip() -> str:
    """The next free address of the local cloud's pool."""
    return controller().addresses.allocate()


def keep_elastic_addresses(instance: Any) -> None:
    """An associated Elastic IP stays through stop and start (moto swaps in an auto-assigned one)."""
    for address in instance.ec2_backend.addresses:
        if address.eni is not None and address.eni.instance is instance:
            address.eni.public_ip = address.public_ip
