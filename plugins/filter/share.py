# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Filter share_problems: what is wrong with a request to share an image, before any AWS call."""

from typing import Any, Dict, List, Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.labcloud.jupyter.plugins.module_utils.ami_permissions import validate_grantees
from ansible_collections.labcloud.jupyter.plugins.module_utils.ami_permissions import validate_request

DOCUMENTATION = r"""
name: share_problems
version_added: 0.1.0
short_description: What is wrong with a request to share an image
description:
  - Checks the grantees and options of a request to share an image the way
    M(labcloud.jupyter.ami_share) checks them (12-digit account IDs, organization and
    organizational-unit ARNs, no grantee twice, C(purge) and C(public) only with C(state=present)),
    so that a playbook can refuse bad input before it changes anything.
  - Returns one message per problem; empty when the request is fine.
options:
  _input:
    description:
      - The request, with the keys C(account_ids), C(organization_arns), C(organizational_unit_arns)
        (lists), C(state) (V(present) or V(absent)), C(purge) (bool) and C(public) (bool or null).
    type: dict
    required: true
author:
  - labcloud.jupyter developers (@labcloud)
"""

EXAMPLES = r"""
- name: Refuse bad account IDs before the image is made
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ problems | join('; ') }}"
    quiet: true
  vars:
    problems: "{{ {'account_ids': ['12345'], 'state': 'present'} | labcloud.jupyter.share_problems }}"
    # -> ['account_ids: "12345" has 5 digits, an AWS account ID has exactly 12 (quote account IDs ...)']
"""

RETURN = r"""
_value:
  description: One message per problem, empty when there is none.
  type: list
  elements: str
"""


def share_problems(request: Any) -> List[str]:
    """Return one message per problem of the request (empty when it is fine)."""
    if not isinstance(request, Mapping):
        raise AnsibleFilterError(f"share_problems takes a dictionary, not {request!r}")

    def strings(key: str) -> List[str]:
        values = request.get(key) or []
        if not isinstance(values, (list, tuple)):
            raise AnsibleFilterError(f"share_problems: {key} is a list, not {values!r}")
        return [str(value) for value in values]

    public = request.get("public")
    return validate_grantees(
        strings("account_ids"), strings("organization_arns"), strings("organizational_unit_arns")
    ) + validate_request(str(request.get("state") or "present"), bool(request.get("purge")), public)


class FilterModule:
    """The collection's filter for sharing requests."""

    def filters(self) -> Dict[str, Any]:
        """Map filter names to functions."""
        return {"share_problems": share_problems}
