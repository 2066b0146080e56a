# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
---
name: roster_entry
short_description: Turn one roster entry into a dictionary with an owner
version_added: 0.1.0
description:
  - A class roster lists owners either as plain names or as dictionaries with an C(owner) key and
    per-owner settings (for example C(local_port) or C(instance_type)). This filter turns either form
    into a dictionary, so that playbooks handle one shape.
options:
  _input:
    description: A roster entry, a string or a dictionary with an C(owner) key.
    type: raw
    required: true
author:
  - labcloud.jupyter developers (@labcloud)
"""

EXAMPLES = r"""
- name: Normalise the roster
  ansible.builtin.set_fact:
    owners: "{{ roster | map('labcloud.jupyter.roster_entry') | list }}"
  # [hedylamarr, {owner: adalovelace, local_port: 7010}]
  # -> [{owner: hedylamarr}, {owner: adalovelace, local_port: 7010}]
"""

RETURN = r"""
_value:
  description: The entry as a dictionary with at least the key C(owner).
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.collections import is_string


def roster_entry(entry):
    """Return a roster entry as a dictionary with an owner."""
    if is_string(entry):
        return {"owner": str(entry)}
    if isinstance(entry, dict) and is_string(entry.get("owner")):
        return dict(entry)
    raise AnsibleFilterError(f"A roster entry is an owner's name or a dictionary with an 'owner' key, not {entry!r}")


class FilterModule:
    """The collection's roster filters."""

    def filters(self):
        return {"roster_entry": roster_entry}
