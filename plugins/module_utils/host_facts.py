# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The arguments of labcloud.jupyter.host_facts, stated once for the module (which looks at the
host) and its action plugin (which decides on the controller whether an earlier look answers them).
"""

# One role's request: what it needs to see, and what of it must exist for an earlier answer to do.
REQUEST_OPTIONS = dict(
    user=dict(type="str"),
    packages=dict(type="list", elements="str", default=[]),
    paths=dict(type="dict", default={}),
    services=dict(type="list", elements="str", default=[]),
    devices=dict(type="dict", default={}),
    require=dict(type="list", elements="str", default=[]),
)

ARGUMENT_SPEC = dict(requests=dict(type="list", elements="dict", required=True, options=REQUEST_OPTIONS))
