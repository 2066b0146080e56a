# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filter ssh_sources: the networks each owner's group admits to SSH, and what is wrong with them."""

from typing import Any, Dict, List, Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.labcloud.jupyter.plugins.module_utils.ssh_ingress import cidr_list
from ansible_collections.labcloud.jupyter.plugins.module_utils.ssh_ingress import is_wide
from ansible_collections.labcloud.jupyter.plugins.module_utils.ssh_ingress import normalize_cidr

DOCUMENTATION = r"""
name: ssh_sources
version_added: 0.1.0
short_description: The networks each owner's group admits to SSH
description:
  - Takes the owners' requests, each with its own C(ssh_cidr) (a CIDR, a list of them, text with commas
    between them, or empty for this machine's address), and returns them with C(ssh_cidr) as the list
    of networks (host bits cleared, each once), with what stops the launch.
  - A CIDR needs its prefix length (V(203.0.113.7/32), V(2001:db8::1/128)). The networks wider than a
    campus (an IPv4 prefix shorter than /16, an IPv6 prefix shorter than /48, the whole Internet
    included) are listed apart, for the playbooks to refuse them unless C(allow_ssh_from_anywhere).
options:
  _input:
    description: The owners' requests, each a dictionary with C(owner) and C(ssh_cidr).
    type: list
    elements: dict
    required: true
  found:
    description:
      - This machine's public address as a CIDR (V(/32) or V(/128)), for the owners without C(ssh_cidr);
        empty when it could not be found.
    type: str
    default: ""
author:
  - labcloud.jupyter developers (@labcloud)
"""

EXAMPLES = r"""
- name: Decide the sources of every owner
  ansible.builtin.set_fact:
    sources: "{{ requests | labcloud.jupyter.ssh_sources('203.0.113.7/32') }}"
  vars:
    requests:
      - {owner: ada, ssh_cidr: ["198.51.100.0/24", "2001:db8::1/128"]}
      - {owner: grace, ssh_cidr: ""}
"""

RETURN = r"""
_value:
  description: The requests with their networks, and what stops the launch.
  type: dict
  contains:
    requests:
      description: The requests, with C(ssh_cidr) the list of networks.
      type: list
      elements: dict
    networks:
      description: Every network admitted, each once.
      type: list
      elements: str
    invalid:
      description: The settings that are not CIDRs (without a prefix length, or not addresses).
      type: list
      elements: str
    unknown:
      description: The owners without C(ssh_cidr) when this machine's address is not known.
      type: list
      elements: str
    wide:
      description: The networks wider than a campus.
      type: list
      elements: str
    open:
      description: Whether one of them is the whole Internet (V(0.0.0.0/0) or V(::/0)).
      type: bool
"""


def ssh_sources(requests: Any, found: Any = "") -> Dict[str, Any]:
    """Return the requests with their networks, and what is wrong with them."""
    if not isinstance(requests, list) or not all(isinstance(r, Mapping) and "owner" in r for r in requests):
        raise AnsibleFilterError(f"ssh_sources takes a list of requests with an owner each, not {requests!r}")
    result: Dict[str, Any] = {"requests": [], "networks": [], "invalid": [], "unknown": [], "wide": [], "open": False}
    for request in requests:
        given = cidr_list(request.get("ssh_cidr"))
        if not given and not found:
            result["unknown"].append(str(request["owner"]))
        networks: List[str] = []
        for cidr in given or cidr_list(found):
            try:
                if "/" not in cidr:
                    raise ValueError(cidr)
                network = normalize_cidr(cidr)
            except ValueError:
                if cidr not in result["invalid"]:
                    result["invalid"].append(cidr)
                continue
            if network not in networks:
                networks.append(network)
        result["requests"].append({**request, "ssh_cidr": networks})
        for network in networks:
            if network not in result["networks"]:
                result["networks"].append(network)
    result["wide"] = [network for network in result["networks"] if is_wide(network)]
    result["open"] = any(network.endswith("/0") for network in result["wide"])
    return result


class FilterModule:
    """The collection's filter for SSH sources."""

    def filters(self) -> Dict[str, Any]:
        """Map filter names to functions."""
        return {"ssh_sources": ssh_sources}
