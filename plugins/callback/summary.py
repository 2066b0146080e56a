# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
---
name: summary
type: aggregate
short_description: Print the run's summary for the user after the play recap
version_added: 0.1.0
description:
  - The collection's playbooks record what the user needs next (the instance, its address, the
    ssh and tunnel commands, the JupyterLab URL, what it costs) with
    C(ansible.builtin.set_stats) under the key C(labcloud_summary), a list of lines.
  - This callback prints those lines after the play recap, so the last lines of a run are the
    ones to act on. Nothing is printed when a run recorded no summary.
requirements:
  - Enabled in C(callbacks_enabled) (the collection's C(ansible.cfg) does this).
author:
  - labcloud.jupyter developers (@labcloud)
"""

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    """Print the labcloud_summary lines recorded with set_stats after the play recap."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "labcloud.jupyter.summary"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_stats(self, stats):
        lines = stats.custom.get("_run", {}).get("labcloud_summary") or []
        if not lines:
            return
        self._display.display("")
        for line in lines:
            self._display.display(str(line))
