# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action labcloud.jupyter.forget_host_keys: remove several hosts' keys from the controller's known_hosts.

The documentation is in plugins/modules/forget_host_keys.py.
"""

import os
import shutil
import subprocess
from typing import Any, Dict, List, Optional

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

ARGUMENT_SPEC = {
    "path": {"type": "path", "required": True},
    "hosts": {"type": "list", "elements": "str", "required": True},
}


def checked_hosts(hosts: List[str]) -> List[str]:
    """Return the hosts once each, refusing anything ssh-keygen could read as an option or a pattern."""
    found: List[str] = []
    for host in (str(host).strip() for host in hosts):
        if not host or any(character.isspace() for character in host) or host.startswith("-"):
            raise AnsibleActionFail(f"{host!r} is not a host name or address")
        if host not in found:
            found.append(host)
    return found


def has_entry(ssh_keygen: str, path: str, host: str) -> bool:
    """Whether the file holds a key for host (ssh-keygen -F: 0 found, 1 not found)."""
    result = subprocess.run([ssh_keygen, "-F", host, "-f", path], capture_output=True, text=True, check=False)
    if result.returncode not in (0, 1):
        raise AnsibleActionFail(f"ssh-keygen could not read {path}: {(result.stderr or result.stdout).strip()}")
    return result.returncode == 0


def remove_entries(ssh_keygen: str, path: str, host: str) -> None:
    """Remove every entry for host, and the backup ssh-keygen -R makes."""
    result = subprocess.run([ssh_keygen, "-R", host, "-f", path], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AnsibleActionFail(
            f"ssh-keygen could not remove {host} from {path}: {(result.stderr or result.stdout).strip()}"
        )
    backup = path + ".old"
    if os.path.exists(backup):
        os.unlink(backup)


class ActionModule(ActionBase):
    """Forget the hosts' keys in one step on the controller."""

    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        path = os.path.expanduser(args["path"])
        hosts = checked_hosts(args["hosts"])
        if not os.path.exists(path):
            result.update(changed=False, removed=[])
            return result
        if not os.path.isfile(path):
            raise AnsibleActionFail(f"{path} is not a file")
        ssh_keygen = shutil.which("ssh-keygen")
        if ssh_keygen is None:
            raise AnsibleActionFail("ssh-keygen is not installed on this machine (package openssh-client)")
        removed = [host for host in hosts if has_entry(ssh_keygen, path, host)]
        if not self._task.check_mode:
            for host in removed:
                remove_entries(ssh_keygen, path, host)
        result.update(changed=bool(removed), removed=removed)
        return result
