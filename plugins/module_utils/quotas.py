# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The account quotas a launch needs, checked before the first resource is made.

A default AWS account has 5 Elastic IPs per region and a quota of running On-Demand vCPUs per
instance family group (32 for the standard families, 0 for GPUs and the other accelerated ones).
Without a check, owner 6 of a class fails with AddressLimitExceeded after every VM is launched.
Nothing here talks to AWS: owner_lookup reads the quotas, the addresses and the running instances,
and these functions say what is missing and what to request or change.
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple

# Elastic IPs of a region (EC2-VPC), as Service Quotas names it.
ELASTIC_IP_QUOTA = ("L-0263D0A3", "EC2-VPC Elastic IPs")
# Running On-Demand vCPUs, per instance family group: (quota code, quota name, type prefixes).
VCPU_GROUPS: Tuple[Tuple[str, str, Tuple[str, ...]], ...] = (
    (
        "L-1216C47A",
        "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
        ("a", "c", "d", "h", "i", "m", "r", "t", "z"),
    ),
    ("L-DB2E81BA", "Running On-Demand G and VT instances", ("g", "vt")),
    ("L-417A185B", "Running On-Demand P instances", ("p",)),
    ("L-74FC7D96", "Running On-Demand F instances", ("f",)),
    ("L-7295265B", "Running On-Demand X instances", ("x",)),
    ("L-1945791B", "Running On-Demand Inf instances", ("inf",)),
    ("L-2C3B7624", "Running On-Demand Trn instances", ("trn",)),
    ("L-6E869C2A", "Running On-Demand DL instances", ("dl",)),
)
# The states in which an instance counts against the vCPU quota.
ACTIVE_STATES = ("pending", "running")
REQUEST = "request an increase in the Service Quotas console (or `aws service-quotas request-service-quota-increase`)"


def vcpu_group(instance_type: str) -> Tuple[str, str]:
    """Return the quota code and name of an instance type's family group (inf before i: the longest prefix)."""
    family = instance_type.split(".")[0].lower()
    matches = [
        (len(prefix), code, name)
        for code, name, prefixes in VCPU_GROUPS
        for prefix in prefixes
        if family.startswith(prefix)
    ]
    if not matches:
        return VCPU_GROUPS[0][0], VCPU_GROUPS[0][1]
    best = max(matches)
    return best[1], best[2]


def address_problems(region: str, limit: Optional[int], held: int, needed: Sequence[str]) -> List[str]:
    """Return why the owners in needed cannot each get a new Elastic IP (limit None: unknown, not checked)."""
    if limit is None or not needed or held + len(needed) <= limit:
        return []
    free = max(limit - held, 0)
    return [
        f"Elastic IP quota: this launch needs {len(needed)} new address(es) ({', '.join(needed)}), and {region} allows "
        f"{limit} of which {held} are held, so {free} can be allocated. Before anything is made: release unused "
        f"addresses (playbooks/cleanup.yml finds the collection's), {REQUEST} for {ELASTIC_IP_QUOTA[1]} "
        f"({ELASTIC_IP_QUOTA[0]}) to at least {held + len(needed)}, or launch without Elastic IPs "
        f"(-e ec2_instance_elastic_ip=false: each VM's public address then changes on every stop and start)."
    ]


def vcpu_problems(
    region: str,
    limits: Dict[str, Optional[float]],
    running: Dict[str, int],
    needed: Dict[str, List[Tuple[str, str, int]]],
) -> List[str]:
    """Return why the vCPUs the launch needs do not fit a family group's quota.

    limits: quota code -> vCPUs allowed (None: unknown, not checked); running: quota code -> vCPUs of
    the account's pending and running instances; needed: quota code -> (owner, instance type, vCPUs)
    of each instance the launch starts.
    """
    problems = []
    names = {group[0]: group[1] for group in VCPU_GROUPS}
    for code in sorted(needed):
        limit, wanted = limits.get(code), needed[code]
        total = sum(start[2] for start in wanted)
        if limit is None or not wanted or running.get(code, 0) + total <= limit:
            continue
        types = ", ".join(sorted({start[1] for start in wanted}))
        in_use = running.get(code, 0)
        problems.append(
            f"vCPU quota: this launch starts {len(wanted)} instance(s) of {types} with {total} vCPUs in all, "
            f"and {region} allows {int(limit)} vCPUs of {names[code]} ({code}), of which {in_use} are in "
            f"use. Before anything is made: {REQUEST} to at least {in_use + total}, or choose an "
            "instance type of a family group with room (a G instance needs its own quota, usually 0 in a new account)."
        )
    return problems


def launch_needs(
    entries: Sequence[Dict[str, Any]], results: Sequence[Dict[str, Any]], vcpus: Dict[str, Optional[int]]
) -> Tuple[List[str], Dict[str, List[Tuple[str, str, int]]]]:
    """Return the owners that need a new Elastic IP, and the instances a launch starts per quota code.

    An owner with a live instance keeps it (a stopped one is started: it needs its vCPUs again); an
    owner without one gets a new instance of its entry's type. An owner whose address exists keeps it.
    """
    addresses, starts = [], {}
    for entry, result in zip(entries, results):  # noqa: B905 (modules keep Python 3.6 syntax)
        instance = result.get("instance")
        if entry.get("elastic_ip", True) and not result.get("address"):
            addresses.append(entry["owner"])
        if instance is not None and instance.get("state", {}).get("name") in ACTIVE_STATES:
            continue
        instance_type = instance["instance_type"] if instance is not None else entry.get("instance_type")
        if not instance_type or vcpus.get(instance_type) is None:
            continue
        code = vcpu_group(instance_type)[0]
        starts.setdefault(code, []).append((entry["owner"], instance_type, int(vcpus[instance_type] or 0)))
    return addresses, starts
