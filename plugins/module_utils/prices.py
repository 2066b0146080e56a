# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What AWS charges for what the collection makes, in one place (USD, on-demand list prices).

Read from the AWS pricing pages (EC2 On-Demand, https://aws.amazon.com/ec2/pricing/on-demand/;
EBS, https://aws.amazon.com/ebs/pricing/; public IPv4 addresses, since February 2024) for US East
(N. Virginia), US East (Ohio) and US West (Oregon), which charge the same for these; other regions
charge differently, so reports say "unknown" there rather than guess.
"""

import json
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

PRICE_DATE = "2025-06"
PRICE_REGIONS = ("us-east-1", "us-east-2", "us-west-2")

# Linux instances, per hour.
INSTANCE_HOURLY = {
    "t2.micro": 0.0116,
    "t3.micro": 0.0104,
    "t3.small": 0.0208,
    "t3.medium": 0.0416,
    "t3.large": 0.0832,
    "t3.xlarge": 0.1664,
    "t3.2xlarge": 0.3328,
    "t3a.medium": 0.0376,
    "t3a.large": 0.0752,
    "c5.large": 0.085,
    "c5.xlarge": 0.17,
    "c5.2xlarge": 0.34,
    "c5.4xlarge": 0.68,
    "c5d.large": 0.096,
    "c6i.large": 0.085,
    "c6i.xlarge": 0.17,
    "m5.large": 0.096,
    "m5.xlarge": 0.192,
    "m5.2xlarge": 0.384,
    "m5.4xlarge": 0.768,
    "m5ad.large": 0.103,
    "m5ad.4xlarge": 0.824,
    "m6i.large": 0.096,
    "m6i.xlarge": 0.192,
    "r5.large": 0.126,
    "r5.xlarge": 0.252,
    "g4dn.xlarge": 0.526,
}
# A public IPv4 address (an Elastic IP, or an instance's own), per hour, used or not.
PUBLIC_IPV4_HOURLY = 0.005
# gp3 volume storage, per GiB-month.
GP3_GB_MONTH = 0.08
# EBS volume storage by volume type, per GiB-month (provisioned IOPS and throughput are not counted).
EBS_GB_MONTH = {
    "gp3": GP3_GB_MONTH,
    "gp2": 0.10,
    "io1": 0.125,
    "io2": 0.125,
    "st1": 0.045,
    "sc1": 0.015,
    "standard": 0.05,
}
# EBS snapshot storage (standard tier), per GiB-month of data stored. A snapshot stores only the
# blocks written, so a volume's size is the most its first snapshot can cost.
SNAPSHOT_GB_MONTH = 0.05

# AWS bills a month as 730 hours.
HOURS_PER_MONTH = 730
# Where the bundled prices were read.
PRICE_SOURCE = "AWS pricing pages (EC2 On-Demand, EBS, public IPv4 addresses)"

PRICES = {
    "date": PRICE_DATE,
    "regions": list(PRICE_REGIONS),
    "source": PRICE_SOURCE,
    "hours_per_month": HOURS_PER_MONTH,
    "instance_hourly": INSTANCE_HOURLY,
    "public_ipv4_hourly": PUBLIC_IPV4_HOURLY,
    "gp3_gb_month": GP3_GB_MONTH,
    "ebs_gb_month": EBS_GB_MONTH,
    "snapshot_gb_month": SNAPSHOT_GB_MONTH,
}


def known_region(region: Optional[str]) -> bool:
    """Whether the prices here hold in the region."""
    return region in PRICE_REGIONS


def price(term: str) -> Any:
    """Return one price or list by its name (a copy of the dictionaries and lists); KeyError when unknown."""
    value = PRICES[term]
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value


def all_prices() -> Dict[str, Any]:
    """Every price by its name."""
    return {term: price(term) for term in PRICES}


def usd(value: float) -> float:
    """Round an amount of USD as reports show it (4 decimals: hourly prices are fractions of a cent)."""
    return round(value + 0.0, 4)


def launch_cost(
    instance_type: str, region: Optional[str], gib: Iterable[Any] = (), addresses: int = 1
) -> Dict[str, Any]:
    """Return what an owner's VM costs: the instance, its gp3 volumes and its public IPv4 addresses.

    ``hourly`` and ``monthly`` (730 hours) hold while it runs, ``stopped_monthly`` while it is stopped
    (the volumes and addresses bill on); ``parts`` gives each part per hour. ``known`` is False (and
    the amounts None) when the instance type or the region is not in the table.
    """
    gigabytes = sum(int(size) for size in gib)
    if not known_region(region) or instance_type not in INSTANCE_HOURLY:
        return {"known": False, "hourly": None, "monthly": None, "stopped_monthly": None, "parts": {}, "gib": gigabytes}
    parts = {
        "instance": INSTANCE_HOURLY[instance_type],
        "volumes": gigabytes * GP3_GB_MONTH / HOURS_PER_MONTH,
        "public_ipv4": addresses * PUBLIC_IPV4_HOURLY,
    }
    hourly = sum(parts.values())
    return {
        "known": True,
        "hourly": usd(hourly),
        "monthly": round(hourly * HOURS_PER_MONTH, 2),
        "stopped_monthly": round((hourly - parts["instance"]) * HOURS_PER_MONTH, 2),
        "parts": {part: usd(value) for part, value in parts.items()},
        "gib": gigabytes,
        "date": PRICE_DATE,
    }


class PriceTable:
    """The prices a report uses: the bundled table, or what the AWS Price List API answered for a region."""

    def __init__(self, region: Optional[str], found: Optional[Mapping[str, Any]] = None, missing: Iterable[str] = ()):
        found = found or {}
        self.region = region
        self.from_api = bool(found)
        self.known = self.from_api or known_region(region)
        self.instance_hourly = dict(INSTANCE_HOURLY, **found.get("instance_hourly", {}))
        self.ebs_gb_month = dict(EBS_GB_MONTH, **found.get("ebs_gb_month", {}))
        self.snapshot_gb_month = found.get("snapshot_gb_month", SNAPSHOT_GB_MONTH)
        self.public_ipv4_hourly = found.get("public_ipv4_hourly", PUBLIC_IPV4_HOURLY)
        self.missing = sorted(set(missing))

    def instance(self, instance_type: str) -> Optional[float]:
        """Hourly price of a Linux instance type, or None when unknown."""
        return self.instance_hourly.get(instance_type) if self.known else None

    def volume(self, volume_type: str, gib: int) -> Optional[float]:
        """Monthly price of a volume, or None when its type (or the region) is unknown."""
        rate = self.ebs_gb_month.get(volume_type) if self.known else None
        return None if rate is None else gib * rate

    def snapshot(self, gib: int) -> Optional[float]:
        """Monthly price of snapshot storage of this size (at most: only written blocks are billed)."""
        return gib * self.snapshot_gb_month if self.known else None

    def ipv4(self) -> Optional[float]:
        """Hourly price of a public IPv4 address."""
        return self.public_ipv4_hourly if self.known else None

    def describe(self) -> Dict[str, Any]:
        """Say which prices are used: their source, date and regions."""
        if self.from_api:
            note = f"; bundled table ({PRICE_DATE}) for {', '.join(self.missing)}" if self.missing else ""
            return {
                "source": "api",
                "text": f"AWS Price List API (on-demand, {self.region}, read now){note}",
                "date": None,
                "regions": [self.region],
            }
        where = ", ".join(PRICE_REGIONS)
        text = f"bundled table of {PRICE_DATE} from the {PRICE_SOURCE}, for {where}"
        if not self.known:
            text += f"; {self.region} is not one of them, so amounts are unknown"
        return {"source": "bundled", "text": text, "date": PRICE_DATE, "regions": list(PRICE_REGIONS)}


# What the Price List API (boto3 client "pricing", served in us-east-1) is asked, per price.
API_REGION = "us-east-1"


def _term(field: str, value: str) -> Dict[str, str]:
    """One TERM_MATCH filter of GetProducts."""
    return {"Type": "TERM_MATCH", "Field": field, "Value": value}


def instance_query(region: str, instance_type: str) -> Dict[str, Any]:
    """The GetProducts request of a Linux, shared-tenancy, on-demand instance type in a region."""
    filters = [
        _term("regionCode", region),
        _term("instanceType", instance_type),
        _term("operatingSystem", "Linux"),
        _term("tenancy", "Shared"),
        _term("preInstalledSw", "NA"),
        _term("capacitystatus", "Used"),
        _term("licenseModel", "No License required"),
    ]
    return {"ServiceCode": "AmazonEC2", "Filters": filters}


def volume_query(region: str, volume_type: str) -> Dict[str, Any]:
    """The GetProducts request of EBS storage of a volume type in a region."""
    filters = [_term("regionCode", region), _term("productFamily", "Storage"), _term("volumeApiName", volume_type)]
    return {"ServiceCode": "AmazonEC2", "Filters": filters}


def snapshot_query(region: str) -> Dict[str, Any]:
    """The GetProducts request of EBS snapshot storage in a region."""
    return {
        "ServiceCode": "AmazonEC2",
        "Filters": [_term("regionCode", region), _term("productFamily", "Storage Snapshot")],
    }


def ipv4_query(region: str) -> Dict[str, Any]:
    """The GetProducts request of the VPC's prices in a region (public IPv4 addresses among them)."""
    return {"ServiceCode": "AmazonVPC", "Filters": [_term("regionCode", region)]}


def on_demand_usd(document: Any, usage_suffix: str = "") -> Optional[float]:
    """Return the on-demand USD price of a GetProducts PriceList entry (JSON text or parsed), or None.

    With usage_suffix, only a product whose usagetype ends with it counts (snapshots, IPv4 addresses).
    The first non-zero price dimension is the price (the free tier is a zero dimension).
    """
    product = json.loads(document) if isinstance(document, str) else document
    usage = str(product.get("product", {}).get("attributes", {}).get("usagetype", ""))
    if usage_suffix and not usage.endswith(usage_suffix):
        return None
    prices = [
        float(dimension.get("pricePerUnit", {}).get("USD", 0) or 0)
        for term in (product.get("terms", {}).get("OnDemand") or {}).values()
        for dimension in (term.get("priceDimensions") or {}).values()
    ]
    positive = [value for value in prices if value > 0]
    return positive[0] if positive else None


def first_price(documents: Iterable[Any], usage_suffix: str = "") -> Optional[float]:
    """Return the first on-demand USD price among GetProducts entries, or None."""
    for document in documents:
        value = on_demand_usd(document, usage_suffix)
        if value is not None:
            return value
    return None


def from_price_list(
    get_products: Callable[[Dict[str, Any]], List[Any]],
    region: str,
    instance_types: Iterable[str],
    volume_types: Iterable[str],
) -> PriceTable:
    """Ask the Price List API (get_products: a request -> its PriceList entries) for the prices a report needs.

    A price the API does not give keeps the bundled table's value and is named in the table's
    description; errors of get_products are left to the caller (who then uses the bundled table).
    """
    found: Dict[str, Any] = {"instance_hourly": {}, "ebs_gb_month": {}}
    missing = []
    for instance_type in sorted(set(instance_types)):
        value = first_price(get_products(instance_query(region, instance_type)))
        if value is None:
            missing.append(instance_type)
        else:
            found["instance_hourly"][instance_type] = value
    for volume_type in sorted(set(volume_types)):
        value = first_price(get_products(volume_query(region, volume_type)))
        if value is None:
            missing.append(f"{volume_type} volumes")
        else:
            found["ebs_gb_month"][volume_type] = value
    singles = (
        ("snapshot_gb_month", snapshot_query(region), "EBS:SnapshotUsage", "snapshots"),
        ("public_ipv4_hourly", ipv4_query(region), "PublicIPv4:InUseAddress", "public IPv4 addresses"),
    )
    for key, query, suffix, label in singles:
        value = first_price(get_products(query), suffix)
        if value is None:
            missing.append(label)
        else:
            found[key] = value
    if not any(
        found.get(key) for key in ("instance_hourly", "ebs_gb_month", "snapshot_gb_month", "public_ipv4_hourly")
    ):
        return PriceTable(region)
    return PriceTable(region, found, missing)
