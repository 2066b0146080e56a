# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure logic of labcloud.jupyter.owner_access: which ingress permissions a group needs.

A group of an owner allows exactly one thing in: TCP to the SSH port from one source network.
Every other ingress permission is revoked. Nothing here talks to AWS, so the rules can be
unit-tested on their own.
"""

import ipaddress
from typing import Any, Dict, List, Optional, Tuple

# One source of one permission: (protocol, from port, to port, kind, source). kind is the key of
# the IpPermission list the source sits in (IpRanges, Ipv6Ranges, UserIdGroupPairs, PrefixListIds).
Source = Tuple[str, Optional[int], Optional[int], str, str]

SOURCE_KEYS = {
    "IpRanges": "CidrIp",
    "Ipv6Ranges": "CidrIpv6",
    "UserIdGroupPairs": "GroupId",
    "PrefixListIds": "PrefixListId",
}


def normalize_cidr(value: str) -> str:
    """Return the network of an address or CIDR (host bits cleared), raising ValueError if it is none."""
    return str(ipaddress.ip_network(str(value).strip(), strict=False))


def cidr_kind(cidr: str) -> str:
    """Return the IpPermission list a CIDR belongs in: IpRanges (IPv4) or Ipv6Ranges (IPv6)."""
    return "IpRanges" if ipaddress.ip_network(cidr).version == 4 else "Ipv6Ranges"


def wanted_source(cidr: str, port: int) -> Source:
    """Return the one ingress source an owner's group must have."""
    return ("tcp", port, port, cidr_kind(cidr), cidr)


def sources_of(permissions: List[Dict[str, Any]]) -> List[Source]:
    """Split a group's IpPermissions into one entry per source, in their order."""
    sources = []
    for permission in permissions:
        protocol = str(permission.get("IpProtocol"))
        from_port, to_port = permission.get("FromPort"), permission.get("ToPort")
        for kind, key in SOURCE_KEYS.items():
            for entry in permission.get(kind) or []:
                sources.append((protocol, from_port, to_port, kind, str(entry.get(key))))
    return sources


def source_matches(existing: Source, wanted: Source) -> bool:
    """Whether an existing source is the wanted one (the CIDR compared as a network)."""
    if existing[:4] != wanted[:4]:
        return False
    try:
        return normalize_cidr(existing[4]) == wanted[4]
    except ValueError:
        return False


def permission_of(source: Source, description: Optional[str] = None) -> Dict[str, Any]:
    """Return the IpPermission that authorizes or revokes exactly one source."""
    protocol, from_port, to_port, kind, value = source
    entry: Dict[str, Any] = {SOURCE_KEYS[kind]: value}
    if description:
        entry["Description"] = description
    permission: Dict[str, Any] = {"IpProtocol": protocol, kind: [entry]}
    if from_port is not None:
        permission["FromPort"] = from_port
    if to_port is not None:
        permission["ToPort"] = to_port
    return permission


def plan_ingress(permissions: List[Dict[str, Any]], wanted: Source) -> Tuple[List[Source], List[Source]]:
    """Return (sources to authorize, sources to revoke) that leave only the wanted source."""
    existing = sources_of(permissions)
    revoke = [source for source in existing if not source_matches(source, wanted)]
    add = [] if any(source_matches(source, wanted) for source in existing) else [wanted]
    return add, revoke


def describe_source(source: Source) -> str:
    """Return a source as text for results and messages: tcp/22 from 203.0.113.7/32."""
    protocol, from_port, to_port, _kind, value = source
    if protocol == "-1":
        what = "all traffic"
    elif from_port is None or from_port == to_port:
        what = f"{protocol}/{from_port}" if from_port is not None else protocol
    else:
        what = f"{protocol}/{from_port}-{to_port}"
    return f"{what} from {value}"
