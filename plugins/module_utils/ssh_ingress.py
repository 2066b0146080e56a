# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure logic of labcloud.jupyter.owner_access: which ingress permissions a group needs.

A group of an owner allows exactly one thing in: TCP to the SSH port from the owner's source
networks (the instructor's address and a campus range, for example, IPv4 or IPv6). Every other
ingress permission is revoked. Nothing here talks to AWS, so the rules can be
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


# The shortest prefix that is not "wide": a shorter one admits more than a campus (65,536 IPv4
# addresses, a /48 IPv6 site) and needs allow_ssh_from_anywhere, like 0.0.0.0/0.
NARROWEST_WIDE = {4: 16, 6: 48}


def cidr_list(value: Any) -> List[str]:
    """Return the CIDRs of an ssh_cidr setting: a list, or text with commas between CIDRs."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def cidrs_problem(value: Any) -> Optional[str]:
    """Return why an ssh_cidr setting is not a list of addresses or CIDRs, or None."""
    for cidr in cidr_list(value):
        try:
            normalize_cidr(cidr)
        except ValueError:
            return f"ssh_cidr {cidr!r} is not an IP address or CIDR"
    return None


def is_wide(cidr: str) -> bool:
    """Whether a network is wider than a campus (IPv4 shorter than /16, IPv6 shorter than /48)."""
    network = ipaddress.ip_network(cidr, strict=False)
    return network.prefixlen < NARROWEST_WIDE[network.version]


def wanted_sources(cidrs: Any, port: int) -> List[Source]:
    """Return the ingress sources an owner's group must have, one per network, without repeats."""
    networks = list(dict.fromkeys(normalize_cidr(cidr) for cidr in cidr_list(cidrs)))
    return [("tcp", port, port, cidr_kind(cidr), cidr) for cidr in networks]


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


def plan_ingress(permissions: List[Dict[str, Any]], wanted: List[Source]) -> Tuple[List[Source], List[Source]]:
    """Return (sources to authorize, sources to revoke) that leave exactly the wanted sources."""
    existing = sources_of(permissions)
    revoke = [source for source in existing if not any(source_matches(source, one) for one in wanted)]
    add = [one for one in wanted if not any(source_matches(source, one) for source in existing)]
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
