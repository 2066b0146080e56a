"""Account quotas, enforced with EC2's own errors and reported through the APIs AWS offers.

moto lets an account allocate any number of Elastic IPs and run any number of vCPUs, and its
Service Quotas knows only the VPC service. A default AWS account is not so kind, and a class of
forty meets that first:

- Elastic IPs per region (default 5): the next AllocateAddress fails with AddressLimitExceeded.
  DescribeAccountAttributes reports the limit (`vpc-max-elastic-ips`, `max-elastic-ips`) and
  the default VPC's ID (moto says "none").
- Running On-Demand vCPUs per instance family group (Standard: A, C, D, H, I, M, R, T, Z, default
  32; G and VT, P, F, X, Inf, Trn, DL: default 0): RunInstances or StartInstances beyond the limit
  fails with VcpuLimitExceeded. Pending and running instances count, as on EC2.
- Service Quotas answers GetServiceQuota, GetAWSDefaultServiceQuota and ListServiceQuotas for
  these EC2 codes (L-0263D0A3, L-1216C47A, L-DB2E81BA, ...) with the values in force.

The values are settings of each `up` (LOCALCLOUD_QUOTAS, see localcloud/README.md), as a quota
increase is requested on AWS.
"""

from __future__ import annotations

import json
from typing import Any

from localcloud.api.patching import controller, ec2_error, original, replace

ELASTIC_IPS = "elastic-ips"
# Instance family groups: (setting name, quota code, quota name, type prefixes).
VCPU_GROUPS = (
    (
        "standard",
        "L-1216C47A",
        "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
        ("a", "c", "d", "h", "i", "m", "r", "t", "z"),
    ),
    ("g", "L-DB2E81BA", "Running On-Demand G and VT instances", ("g", "vt")),
    ("p", "L-417A185B", "Running On-Demand P instances", ("p",)),
    ("f", "L-74FC7D96", "Running On-Demand F instances", ("f",)),
    ("x", "L-7295265B", "Running On-Demand X instances", ("x",)),
    ("inf", "L-1945791B", "Running On-Demand Inf instances", ("inf",)),
    ("trn", "L-2C3B7624", "Running On-Demand Trn instances", ("trn",)),
    ("dl", "L-6E869C2A", "Running On-Demand DL instances", ("dl",)),
)
ELASTIC_IP_QUOTA = ("L-0263D0A3", "EC2-VPC Elastic IPs")
DEFAULTS = {ELASTIC_IPS: 5, "standard": 32, "g": 0, "p": 0, "f": 0, "x": 0, "inf": 0, "trn": 0, "dl": 0}
ACTIVE_STATES = ("pending", "running")


def install() -> None:
    from moto.ec2.models.elastic_ip_addresses import ElasticAddressBackend
    from moto.ec2.responses.account_attributes import AccountAttributes
    from moto.servicequotas.models import ServiceQuotasBackend
    from moto.servicequotas.responses import ServiceQuotasResponse

    replace(ElasticAddressBackend, "allocate_address", allocate_address)
    replace(AccountAttributes, "describe_account_attributes", describe_account_attributes)
    replace(ServiceQuotasBackend, "get_service_quota", get_service_quota)
    replace(ServiceQuotasBackend, "list_aws_default_service_quotas", list_aws_default_service_quotas)
    ServiceQuotasResponse.get_aws_default_service_quota = response_get_aws_default_service_quota
    ServiceQuotasResponse.list_service_quotas = response_list_service_quotas


def limit(name: str) -> int:
    """The quota in force for a setting name (elastic-ips, standard, g, ...)."""
    return int(controller().settings.quotas.get(name, DEFAULTS[name]))


def vcpu_group(instance_type: str) -> tuple[str, str, str, tuple[str, ...]]:
    """The family group of an instance type (the longest matching prefix wins: inf before i)."""
    family = instance_type.split(".")[0].lower()
    matches = [(len(prefix), group) for group in VCPU_GROUPS for prefix in group[3] if family.startswith(prefix)]
    if not matches:
        return VCPU_GROUPS[0]
    return max(matches, key=lambda match: match[0])[1]


def vcpus_of(instance_type: str) -> int:
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    return int(INSTANCE_TYPES.get(instance_type, {}).get("VCpuInfo", {}).get("DefaultVCpus", 1))


def vcpus_in_use(backend: Any, group_name: str, leaving_out: Any = None) -> int:
    """vCPUs of the account's pending and running instances of a family group in the region."""
    return sum(
        vcpus_of(instance.instance_type)
        for instance in backend.all_instances()
        if instance is not leaving_out
        and instance.state in ACTIVE_STATES
        and vcpu_group(instance.instance_type)[0] == group_name
    )


def check_vcpus(backend: Any, instance_type: str, count: int, leaving_out: Any = None) -> None:
    """Refuse to run count more instances of a type when their family group's quota would be passed."""
    group_name, _, _, _ = vcpu_group(instance_type)
    allowed = limit(group_name)
    wanted = vcpus_in_use(backend, group_name, leaving_out) + count * vcpus_of(instance_type)
    if wanted > allowed:
        raise ec2_error(
            "VcpuLimitExceeded",
            f"You have requested more vCPU capacity than your current vCPU limit of {allowed} allows for the "
            "instance bucket that the specified instance type belongs to. Please visit "
            "http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit.",
        )


def allocate_address(self: Any, domain: str, address: str | None = None, tags: dict[str, str] | None = None) -> Any:
    """AllocateAddress, refused past the account's Elastic IP quota in the region."""
    if len(self.addresses) >= limit(ELASTIC_IPS):
        raise ec2_error("AddressLimitExceeded", "The maximum number of addresses has been reached.")
    return original("ElasticAddressBackend", "allocate_address")(self, domain, address, tags)


def describe_account_attributes(self: Any) -> Any:
    """DescribeAccountAttributes with the quotas in force and the real default VPC."""
    from moto.core.responses import ActionResult

    default_vpc = next((vpc.id for vpc in self.ec2_backend.vpcs.values() if vpc.is_default), "none")
    attributes = {
        "vpc-max-security-groups-per-interface": ["5"],
        "max-instances": [str(limit("standard"))],
        "supported-platforms": ["VPC"],
        "default-vpc": [default_vpc],
        "max-elastic-ips": [str(limit(ELASTIC_IPS))],
        "vpc-max-elastic-ips": [str(limit(ELASTIC_IPS))],
    }
    wanted = self._get_param("AttributeNames", [])
    return ActionResult(
        {
            "AccountAttributes": [
                {"AttributeName": name, "AttributeValues": [{"AttributeValue": value} for value in values]}
                for name, values in attributes.items()
                if not wanted or name in wanted
            ]
        }
    )


def ec2_quotas(region: str, account_id: str, defaults: bool = False) -> list[dict[str, Any]]:
    """The EC2 quotas the local cloud enforces, as Service Quotas describes them."""
    rows = [(ELASTIC_IPS, *ELASTIC_IP_QUOTA)] + [(name, code, title) for name, code, title, _ in VCPU_GROUPS]
    return [
        {
            "ServiceCode": "ec2",
            "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
            "QuotaArn": f"arn:aws:servicequotas:{region}:{'' if defaults else account_id}:ec2/{code}",
            "QuotaCode": code,
            "QuotaName": title,
            "Value": float(DEFAULTS[name] if defaults else limit(name)),
            "Unit": "None",
            "Adjustable": True,
            "GlobalQuota": False,
        }
        for name, code, title in rows
    ]


def get_service_quota(self: Any, service_code: str, quota_code: str) -> dict[str, Any]:
    """GetServiceQuota, which knows the EC2 quotas in force too."""
    if service_code == "ec2":
        for quota in ec2_quotas(self.region_name, self.account_id):
            if quota["QuotaCode"] == quota_code:
                return quota
        from moto.servicequotas.exceptions import NoSuchResource

        raise NoSuchResource
    return original("ServiceQuotasBackend", "get_service_quota")(self, service_code, quota_code)


def list_aws_default_service_quotas(self: Any, service_code: str) -> list[dict[str, Any]]:
    """ListAWSDefaultServiceQuotas, which knows EC2's defaults too."""
    if service_code == "ec2":
        return ec2_quotas(self.region_name, self.account_id, defaults=True)
    return original("ServiceQuotasBackend", "list_aws_default_service_quotas")(self, service_code)


def response_get_aws_default_service_quota(self: Any) -> str:
    params = json.loads(self.body)
    for quota in self.backend.list_aws_default_service_quotas(str(params.get("ServiceCode"))):
        if quota["QuotaCode"] == params.get("QuotaCode"):
            return json.dumps({"Quota": quota})
    from moto.servicequotas.exceptions import NoSuchResource

    raise NoSuchResource


def response_list_service_quotas(self: Any) -> str:
    params = json.loads(self.body)
    service_code = str(params.get("ServiceCode"))
    if service_code == "ec2":
        return json.dumps({"Quotas": ec2_quotas(self.backend.region_name, self.backend.account_id)})
    return json.dumps({"Quotas": self.backend.list_aws_default_service_quotas(service_code)})
