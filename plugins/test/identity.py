# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Test managed: whether a resource's tags mark it as one this collection manages."""

DOCUMENTATION = r"""
name: managed
version_added: 0.1.0
short_description: Whether tags mark a resource this collection manages
description:
  - True when the tags carry C(ManagedBy=labcloud.jupyter), the tag the collection gives the
    instances it launches; false for any other tags and for anything that is not a dictionary.
options:
  _input:
    description: The tags of the resource, as M(amazon.aws.ec2_instance_info) returns them.
    type: dict
    required: true
author:
  - labcloud.jupyter developers (@labcloud)
"""

EXAMPLES = r"""
- name: Keep only the instances of this collection
  ansible.builtin.set_fact:
    lab_instances: "{{ found.instances | selectattr('tags', 'labcloud.jupyter.managed') | list }}"

- name: Refuse to stop an instance the collection did not launch
  ansible.builtin.assert:
    that: instance.tags is labcloud.jupyter.managed
"""

RETURN = r"""
_value:
  description: Whether the tags mark a resource of this collection.
  type: bool
"""

from typing import Any, Dict

from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import is_managed


class TestModule:
    """The collection's identity tests."""

    def tests(self) -> Dict[str, Any]:
        """Map test names to functions."""
        return {"managed": is_managed}
