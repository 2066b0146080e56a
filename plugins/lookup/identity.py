# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Lookup identity: the constants of the owner identity (ManagedBy value, owner rule, tag keys)."""

DOCUMENTATION = r"""
name: identity
version_added: 0.1.0
short_description: The constants of the collection's owner identity
description:
  - Returns the facts about owners and tags that roles and playbooks need, from the place the
    collection's modules take them, so that they are written once.
  - One value per term, in the order of the terms.
options:
  _terms:
    description:
      - What to return.
      - V(managed_by), the value of the C(ManagedBy) tag of the collection's instances.
      - V(owner_pattern), the regular expression a valid owner matches.
      - V(owner_rule), the same rule as a phrase for messages.
      - V(login_users), the login user of each image family.
      - V(tag_keys), the keys of the collection's tags by their names C(name), C(owner),
        C(managed_by), C(login_user), C(image_family), and those of its images C(project), C(version),
        C(source_instance), C(packages) and C(verified).
      - V(key_dir), where the owners' private keys are kept by default (V(~/.labcloud/keys)).
      - V(jupyter_port), the port JupyterLab listens on inside the VM by default (the tutorial's V(8887)).
      - V(local_port), the first local port of the SSH tunnel by default (the tutorial's V(7005)).
      - V(url_command), the command on the VM that prints JupyterLab's URL with its token.
    type: list
    elements: str
    choices:
      - managed_by
      - owner_pattern
      - owner_rule
      - login_users
      - tag_keys
      - key_dir
      - jupyter_port
      - local_port
      - url_command
    required: true
author:
  - labcloud.jupyter developers (@labcloud)
"""

EXAMPLES = r"""
- name: Find every instance of the collection
  amazon.aws.ec2_instance_info:
    filters:
      "tag:ManagedBy": "{{ lookup('labcloud.jupyter.identity', 'managed_by') }}"

- name: Check an owner the way the modules do
  ansible.builtin.assert:
    that: owner is match(lookup('labcloud.jupyter.identity', 'owner_pattern'))
    fail_msg: "Invalid owner {{ owner }}: use {{ lookup('labcloud.jupyter.identity', 'owner_rule') }}"

- name: Read the login user tag of an instance
  ansible.builtin.debug:
    msg: "{{ instance.tags[lookup('labcloud.jupyter.identity', 'tag_keys').login_user] }}"
"""

RETURN = r"""
_raw:
  description:
    - One value per term; text for V(managed_by), V(owner_pattern), V(owner_rule), V(key_dir) and
      V(url_command), a whole number for the ports, a dictionary for the others.
  type: list
  elements: raw
  sample: ["labcloud.jupyter"]
"""

from typing import Any, Dict, List, Optional

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import JUPYTER_PORT
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import KEY_DIR
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import LOCAL_PORT
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import LOGIN_USERS
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import MANAGED_BY
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import OWNER_PATTERN
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import OWNER_RULE
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import TAG_KEYS
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import URL_COMMAND

# Every term and its value.
FACTS = {
    "managed_by": MANAGED_BY,
    "owner_pattern": OWNER_PATTERN,
    "owner_rule": OWNER_RULE,
    "login_users": LOGIN_USERS,
    "tag_keys": TAG_KEYS,
    "key_dir": KEY_DIR,
    "jupyter_port": JUPYTER_PORT,
    "local_port": LOCAL_PORT,
    "url_command": URL_COMMAND,
}


def fact(term: Any) -> Any:
    """Return the value of one term (a copy, for the dictionaries)."""
    if not isinstance(term, str) or term not in FACTS:
        raise AnsibleLookupError(f"labcloud.jupyter.identity has no {term!r}; the terms are {', '.join(FACTS)}")
    value = FACTS[term]
    return dict(value) if isinstance(value, dict) else value


class LookupModule(LookupBase):
    """Look up constants of the owner identity."""

    def run(self, terms: List[Any], variables: Optional[Dict[str, Any]] = None, **kwargs: Any) -> List[Any]:
        """Return the value of each term."""
        self.set_options(var_options=variables, direct=kwargs)
        return [fact(term) for term in terms]
