# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filter ip_network: parse an IPv4 or IPv6 CIDR the way security group rules need it.

It uses Python's ipaddress module, so it needs neither netaddr nor ansible.utils.
"""

import ipaddress
from typing import Any, Dict, Optional

DOCUMENTATION = r"""
name: ip_network
version_added: 0.1.0
short_description: Parse a CIDR for a security group rule
description:
  - Returns what a security group rule needs to know about a CIDR such as V(203.0.113.7/32),
    or V(null) when the text is not a CIDR (an address without a prefix length is not one).
  - Host bits are cleared, as EC2 does with the rule, and reported in RV(_value.host_bits).
options:
  _input:
    description: The text to parse.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Refuse an ssh_cidr that is not a CIDR
  ansible.builtin.assert:
    that: ssh_cidr | labcloud.jupyter.ip_network is not none
"""

RETURN = r"""
_value:
  description: The parsed network, or V(null).
  type: dict
  contains:
    network:
      description: The network in CIDR notation, host bits cleared.
      type: str
    version:
      description: V(4) or V(6).
      type: int
    prefixlen:
      description: The prefix length.
      type: int
    open:
      description: Whether the network is the whole address space (V(0.0.0.0/0) or V(::/0)).
      type: bool
    host_bits:
      description: Whether the text had host bits set (V(10.0.0.7/24)).
      type: bool
"""


def ip_network(text: Any) -> Optional[Dict[str, Any]]:
    """The parsed CIDR, or None when the text is not one."""
    if not isinstance(text, str) or "/" not in text:
        return None
    try:
        network = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        return None
    return {
        "network": str(network),
        "version": network.version,
        "prefixlen": network.prefixlen,
        "open": network.prefixlen == 0,
        "host_bits": str(network) != text.strip(),
    }


class FilterModule:
    """Ansible filter plugin."""

    def filters(self) -> Dict[str, Any]:
        """Map filter names to functions."""
        return {"ip_network": ip_network}
