"""What an instance's metadata service answers, read from the EC2 API's state at each request.

`InstanceMetadata` is the `localcloud.host.imds.MetadataSource` of one instance: its metadata
options, and the tree under /latest/ (meta-data, user-data, dynamic) as EC2 lays it out. It
reads moto's instance each time, so an Elastic IP associated later, a tag added later or a
changed option shows at once. Instance-profile credentials are made with STS for the profile's
role when they are first asked for, and made again before they expire, as EC2 rotates them.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

# Instance-profile credentials last this long, and are replaced when less than REFRESH is left
# (EC2 makes new ones at least five minutes before the old ones expire).
CREDENTIAL_SECONDS = 6 * 3600
CREDENTIAL_REFRESH = 15 * 60


def tag_values(instance: Any) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in instance.get_tags()}


def internal_hostname(instance: Any) -> str:
    """EC2's private DNS name: ip-a-b-c-d.<region>.compute.internal (ec2.internal in us-east-1)."""
    region = instance.ec2_backend.region_name
    domain = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    return "ip-" + instance.private_ip.replace(".", "-") + "." + domain


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class InstanceMetadata:
    """The metadata service's view of one instance."""

    def __init__(self, instance: Any, clock: Any = time.time):
        self.instance = instance
        self.clock = clock
        self.lock = threading.Lock()
        self.cached: dict[str, dict[str, Any]] = {}

    def options(self) -> dict[str, str]:
        options = self.instance.metadata_options
        return {
            "http_endpoint": options.http_endpoint,
            "http_tokens": options.http_tokens,
            "instance_metadata_tags": options.instance_metadata_tags,
        }

    def profile(self) -> Any | None:
        """The instance profile associated with the instance, if any."""
        association = self.instance.ec2_backend.iam_instance_profile_associations.get(self.instance.id)
        return association.iam_instance_profile if association is not None else None

    def credentials(self, role: Any) -> str:
        """The role's current credentials as EC2 serves them (JSON), renewed before they expire."""
        with self.lock:
            current = self.cached.get(role.arn)
            if current is None or current["expires"] - self.clock() < CREDENTIAL_REFRESH:
                current = self.cached[role.arn] = self.assume(role)
            return current["document"]

    def assume(self, role: Any) -> dict[str, Any]:
        from moto.sts.models import sts_backends
        from moto.utilities.utils import get_partition

        backend = self.instance.ec2_backend
        assumed = sts_backends[backend.account_id][get_partition(backend.region_name)].assume_role(
            region_name=backend.region_name,
            role_session_name=self.instance.id,
            role_arn=role.arn,
            policy=None,
            duration=CREDENTIAL_SECONDS,
            external_id=None,
        )
        document = {
            "Code": "Success",
            "LastUpdated": iso(datetime.now(UTC)),
            "Type": "AWS-HMAC",
            "AccessKeyId": assumed.access_key_id,
            "SecretAccessKey": assumed.secret_access_key,
            "Token": assumed.session_token,
            "Expiration": iso(assumed.expiration.replace(tzinfo=UTC)),
        }
        return {"document": json.dumps(document, indent=2), "expires": self.clock() + CREDENTIAL_SECONDS}

    def iam(self) -> dict[str, Any] | None:
        profile = self.profile()
        if profile is None or not profile.roles:
            return None
        role = profile.roles[0]
        info = {
            "Code": "Success",
            "LastUpdated": iso(datetime.now(UTC)),
            "InstanceProfileArn": profile.arn,
            "InstanceProfileId": profile.id,
        }
        return {
            "info": json.dumps(info, indent=2),
            "security-credentials": {role.name: lambda: self.credentials(role)},
        }

    def network(self, mac: str) -> dict[str, Any]:
        instance = self.instance
        backend = instance.ec2_backend
        subnet = backend.get_subnet(instance.subnet_id)
        vpc = backend.get_vpc(subnet.vpc_id)
        groups = [group for nic in instance.nics.values() for group in nic.group_set]
        interface: dict[str, Any] = {
            "device-number": "0",
            "interface-id": next(iter(instance.nics.values())).id if instance.nics else "",
            "local-hostname": internal_hostname(instance),
            "local-ipv4s": instance.private_ip,
            "mac": mac,
            "owner-id": backend.account_id,
            "security-group-ids": "\n".join(group.id for group in groups),
            "security-groups": "\n".join(group.name for group in groups),
            "subnet-id": subnet.id,
            "subnet-ipv4-cidr-block": subnet.cidr_block,
            "vpc-id": vpc.id,
            "vpc-ipv4-cidr-block": vpc.cidr_block,
        }
        if instance.public_ip:
            interface["public-ipv4s"] = instance.public_ip
        return {"interfaces": {"macs": {mac: interface}}}

    def tree(self) -> dict[str, Any] | None:
        instance = self.instance
        if instance.state in ("terminated", "shutting-down"):
            return None
        backend = instance.ec2_backend
        nic = next(iter(instance.nics.values()), None)
        mac = getattr(nic, "mac_address", "") or "02:00:00:00:00:00"
        zone = instance.placement.zone or f"{backend.region_name}a"
        meta: dict[str, Any] = {
            "ami-id": instance.image_id,
            "ami-launch-index": str(getattr(instance, "ami_launch_index", 0)),
            "hostname": internal_hostname(instance),
            "instance-action": "none",
            "instance-id": instance.id,
            "instance-life-cycle": "on-demand",
            "instance-type": instance.instance_type,
            "local-hostname": internal_hostname(instance),
            "local-ipv4": instance.private_ip,
            "mac": mac,
            "network": self.network(mac),
            "placement": {"availability-zone": zone, "region": backend.region_name},
            "reservation-id": getattr(instance, "reservation_id", "") or "",
            "security-groups": "\n".join(g.name for n in instance.nics.values() for g in n.group_set),
            "services": {"domain": "amazonaws.com", "partition": "aws"},
        }
        if instance.public_ip:
            meta["public-ipv4"] = instance.public_ip
        if instance.key_name and instance.key_name in backend.key_pairs:
            key = backend.key_pairs[instance.key_name].public_key.strip()
            meta["public-keys"] = {"__list__": f"0={instance.key_name}", "0": {"openssh-key": key}}
        iam = self.iam()
        if iam is not None:
            meta["iam"] = iam
        if instance.metadata_options.instance_metadata_tags == "enabled":
            meta["tags"] = {"instance": tag_values(instance)}
        identity = {
            "accountId": backend.account_id,
            "architecture": "x86_64",
            "availabilityZone": zone,
            "imageId": instance.image_id,
            "instanceId": instance.id,
            "instanceType": instance.instance_type,
            "pendingTime": iso(instance.launch_time.replace(tzinfo=UTC))
            if isinstance(instance.launch_time, datetime)
            else str(instance.launch_time),
            "privateIp": instance.private_ip,
            "region": backend.region_name,
            "version": "2017-09-30",
        }
        tree: dict[str, Any] = {
            "meta-data": meta,
            "dynamic": {"instance-identity": {"document": json.dumps(identity, indent=2)}},
        }
        data = user_data(instance)
        if data is not None:
            tree["user-data"] = data
        return tree


def user_data(instance: Any) -> bytes | None:
    """The instance's user data, decoded."""
    data = instance.user_data
    if not data:
        return None
    if isinstance(data, list):
        data = data[0]
    raw = data.as_bytes() if hasattr(data, "as_bytes") else str(data).encode()
    return base64.b64decode(raw)
