"""Instance type offerings: RunInstances refuses a type in a zone that does not offer it, as EC2 does.

Not every Availability Zone offers every instance type. moto answers DescribeInstanceTypeOfferings
from its bundled data, yet launches any type in any zone. Here that same data decides: RunInstances
in a zone (its subnet's, its network interface's, or Placement.AvailabilityZone) that does not offer
the type fails with EC2's `Unsupported` error, naming the zones that do; without a zone, the instance
goes into the first zone of the region's default subnets that offers its type, as EC2 picks one that
does. A region moto has no offerings data for is not checked.
"""

from __future__ import annotations

from typing import Any

from moto.ec2.models.instance_types import INSTANCE_TYPES

from localcloud.api.patching import ec2_error


def zones_offering(backend: Any, instance_type: str) -> list[str] | None:
    """The zones of the backend's region that offer a type, from the data moto's DescribeInstanceTypeOfferings
    answers with, or None when moto has no data for the region."""
    from moto.ec2.models.instance_types import INSTANCE_TYPE_OFFERINGS

    offerings = INSTANCE_TYPE_OFFERINGS["availability-zone"].get(backend.region_name)
    if not offerings:
        return None
    return sorted({offering["Location"] for offering in offerings if offering["InstanceType"] == instance_type})


def requested_zone(backend: Any, kwargs: dict[str, Any]) -> str | None:
    """The zone a RunInstances request names through its subnet, network interface or placement, or None."""
    if kwargs.get("subnet_id"):
        return backend.get_subnet(kwargs["subnet_id"]).availability_zone
    nics = sorted(kwargs.get("nics") or [], key=lambda nic: int(nic.get("DeviceIndex") or 0))
    if nics and nics[0].get("SubnetId"):
        return backend.get_subnet(nics[0]["SubnetId"]).availability_zone
    if nics and nics[0].get("NetworkInterfaceId"):
        return backend.get_network_interface(nics[0]["NetworkInterfaceId"]).subnet.availability_zone
    return kwargs.get("placement")


def default_zone(backend: Any, instance_type: str) -> str:
    """The zone of an instance launched without one: the first default subnet's zone that offers its type."""
    zones = sorted(backend.get_default_subnets())
    offered = zones_offering(backend, instance_type)
    return next((zone for zone in zones if offered is None or zone in offered), f"{backend.region_name}a")


def check_offered(backend: Any, instance_type: str, zone: str) -> None:
    """Refuse to run a type in a zone that does not offer it, with EC2's error."""
    if instance_type not in INSTANCE_TYPES:
        raise ec2_error("InvalidInstanceType.NotFound", f"The instance type '{instance_type}' does not exist")
    offered = zones_offering(backend, instance_type)
    if offered is None or zone in offered:
        return
    if not offered:
        raise ec2_error(
            "Unsupported",
            "The requested configuration is currently not supported. Please check the documentation for "
            "supported configurations.",
        )
    raise ec2_error(
        "Unsupported",
        f"Your requested instance type ({instance_type}) is not supported in your requested Availability Zone "
        f"({zone}). Please retry your request by not specifying an Availability Zone or choosing "
        f"{', '.join(offered)}.",
    )
