# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later


class ModuleDocFragment(object):
    """The attributes block of the collection's modules, stated once.

    A module extends labcloud.jupyter.attributes (what the attributes mean) and a support fragment
    for each attribute, for example labcloud.jupyter.attributes.check_mode_full and
    labcloud.jupyter.attributes.diff_mode_full. Its own attributes block then only adds details
    that say something about that module.
    """

    # What the attributes mean; used with the support fragments below.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and predict the change without making it.
  diff_mode:
    description: Returns details on what has changed (or would change, in check mode) in diff mode.
"""

    # The module predicts exactly, in check mode, what it would change.
    CHECK_MODE_FULL = r"""
options: {}
attributes:
  check_mode:
    support: full
"""

    # The module returns the state before and after in diff mode.
    DIFF_MODE_FULL = r"""
options: {}
attributes:
  diff_mode:
    support: full
"""

    # The module changes something but has no before and after to show.
    DIFF_MODE_NONE = r"""
options: {}
attributes:
  diff_mode:
    support: none
"""

    # The module only reads: it runs in check mode as it does otherwise, and changes nothing to show in diff mode.
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This module only reads; it runs the same in check mode.
  diff_mode:
    support: N/A
    details:
      - This module only reads; there is nothing to compare.
"""
