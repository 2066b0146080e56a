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
    the hosts in one run.
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

import os

from ansible.module_utils.basic import AnsibleModule


def has_entry(module, ssh_keygen, path, host):
    """Whether the file holds a key for host (ssh-keygen -F: 0 found, 1 not found)."""
    rc, out, err = module.run_command([ssh_keygen, "-F", host, "-f", path])
    if rc not in (0, 1):
        module.fail_json(msg="ssh-keygen could not read %s: %s" % (path, (err or out).strip()), host=host)
    return rc == 0


def remove_entries(module, ssh_keygen, path, host):
    """Remove every entry for host, and the backup ssh-keygen -R makes."""
    rc, out, err = module.run_command([ssh_keygen, "-R", host, "-f", path])
    if rc != 0:
        module.fail_json(msg="ssh-keygen could not remove %s from %s: %s" % (host, path, (err or out).strip()))
    backup = path + ".old"
    if os.path.exists(backup):
        os.unlink(backup)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            hosts=dict(type="list", elements="str", required=True),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    hosts = []
    for host in module.params["hosts"]:
        host = host.strip()
        if not host or any(character.isspace() for character in host) or host.startswith("-"):
            module.fail_json(msg="%r is not a host name or address" % host)
        if host not in hosts:
            hosts.append(host)
    if not os.path.exists(path):
        module.exit_json(changed=False, removed=[])
    if not os.path.isfile(path):
        module.fail_json(msg="%s is not a file" % path)
    ssh_keygen = module.get_bin_path("ssh-keygen", required=True)
    removed = [host for host in hosts if has_entry(module, ssh_keygen, path, host)]
    if not module.check_mode:
        for host in removed:
            remove_entries(module, ssh_keygen, path, host)
    module.exit_json(changed=bool(removed), removed=removed)


if __name__ == "__main__":
    main()
