# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action labcloud.jupyter.host_facts: reuse the play's look at the host, or look again.

The documentation is in plugins/modules/host_facts.py. The module reads the host; this plugin,
on the controller, first checks whether an earlier look of the same play (the fact
labcloud_host) answered the same requests, and then runs no module at all.
"""

from typing import Any, Dict, List, Optional

from ansible.plugins.action import ActionBase

from ansible_collections.labcloud.jupyter.plugins.module_utils.host_facts import ARGUMENT_SPEC


def question(request: Dict[str, Any]) -> Dict[str, Any]:
    """The part of a request that decides what is looked at (without what must be found)."""
    return {key: value for key, value in request.items() if key != "require"}


def found(answer: Dict[str, Any], request: Dict[str, Any]) -> bool:
    """Whether the answer has everything the request requires to exist."""
    for name in request["require"]:
        if name == "user":
            if answer["users"].get(request["user"]) is None:
                return False
        elif answer["paths"].get(name) is None:
            return False
    return True


def play_id(task: Any) -> Optional[str]:
    """An identifier of the play the task belongs to, or None when it cannot be told."""
    try:
        return str(task.get_play()._uuid)
    except AttributeError:
        return None


class ActionModule(ActionBase):
    """Answer from the play's earlier look when it covers the requests; otherwise look at all of them."""

    _supports_check_mode = True

    def run(self, tmp: Optional[str] = None, task_vars: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        requests: List[Dict[str, Any]] = args["requests"]
        play = play_id(self._task)
        earlier = (task_vars.get("ansible_facts") or {}).get("labcloud_host") or {}
        if play is not None and earlier.get("play") == play:
            asked = [question(request) for request in requests]
            answered = [question(request) for request in earlier.get("requests", [])]
            if all(request in answered for request in asked) and all(found(earlier, request) for request in requests):
                result.update(changed=False, reused=True)
                return result
            # Looked at again: the requests of the earlier look too, so that the new answer serves
            # every role that relied on the earlier one.
            requests = [request for request in earlier["requests"] if question(request) not in asked] + requests
        looked = self._execute_module(
            module_name="labcloud.jupyter.host_facts", module_args={"requests": requests}, task_vars=task_vars
        )
        result.update(looked)
        if not looked.get("failed"):
            result["ansible_facts"]["labcloud_host"].update(requests=requests, play=play)
            result["reused"] = False
        return result
