#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
---
module: forget_host_keys
version_added: 0.1.0
short_description: Remove the host keys of several hosts from a known_hosts file in one run
description:
  - Runs on the controller. Removes every entry for each of O(hosts) from O(path), hashed entries
    (C(HashKnownHosts yes), Debian's and Ubuntu's default) as well as plain ones, the way
    C(ssh-keygen -R) does, which it uses.
  - Cloud addresses are handed out again, to new machines with new host keys. When a VM is launched
    at an address, or its address is released, the key an earlier VM had there must go, or the next
    SSH login fails with C(REMOTE HOST IDENTIFICATION HAS CHANGED).
  - M(ansible.builtin.known_hosts) edits one host per run, so a class roster's launch would run it
    once per student, one after the other (parallel edits of one file race). This module does all
    the hosts in one run, as an action on the controller itself (the file is the controller's), so
    it starts no module process at all. C(bench/modules.py) measures the difference; for eight
    addresses, M(ansible.builtin.known_hosts) took 3.9 s and this action 0.8 s (4.7 times less), in
    one run on a 2-core machine.
  - No backup copy (C(known_hosts.old)) is left behind. A missing O(path) means there is nothing to
    forget.
options:
  path:
    description: The known_hosts file.
    type: path
    required: true
  hosts:
    description:
      - Host names or addresses whose keys are to be removed. Entries for other ports are named
        C([host]:port), as in the file.
    type: list
    elements: str
    required: true
extends_documentation_fragment:
  - labcloud.jupyter.attributes
  - labcloud.jupyter.attributes.check_mode_full
  - labcloud.jupyter.attributes.diff_mode_none
attributes:
  action:
    description: Runs as an action plugin on the controller.
    support: full
  platform:
    description: Edits a file on the controller, whatever the target.
    support: full
    platforms: posix
  check_mode:
    details:
      - Reports which hosts have entries that would be removed, without removing them.
  diff_mode:
    details:
      - Hashed entries would not tell a reader anything.
requirements:
  - OpenSSH's C(ssh-keygen) on the controller.
author:
  - labcloud.jupyter developers (@labcloud)
"""

EXAMPLES = r"""
- name: Forget the host keys other VMs had at the new VMs' addresses
  labcloud.jupyter.forget_host_keys:
    path: ~/.labcloud/keys/known_hosts
    hosts:
      - 198.51.100.7
      - 198.51.100.8
"""

RETURN = r"""
removed:
  description: The hosts that had entries in the file (and, unless in check mode, no longer have).
  returned: always
  type: list
  elements: str
  sample: [198.51.100.7]
"""

# This module is done by the action plugin of the same name on the controller; this file documents it.
