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

from typing import Any, Dict, Optional

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
# EBS snapshot storage (standard tier), per GiB-month of data stored. A snapshot stores only the
# blocks written, so a volume's size is the most its first snapshot can cost.
SNAPSHOT_GB_MONTH = 0.05

PRICES = {
    "date": PRICE_DATE,
    "regions": list(PRICE_REGIONS),
    "instance_hourly": INSTANCE_HOURLY,
    "public_ipv4_hourly": PUBLIC_IPV4_HOURLY,
    "gp3_gb_month": GP3_GB_MONTH,
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
