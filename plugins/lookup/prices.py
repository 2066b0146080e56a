# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Lookup prices: what AWS charges for what the collection makes, from plugins/module_utils/prices.py."""

DOCUMENTATION = r"""
name: prices
version_added: 0.1.0
short_description: AWS list prices of what the collection makes (instances, addresses, volumes, snapshots)
description:
  - Returns on-demand list prices in USD, as the AWS pricing pages gave them on the date V(date), for
    the regions V(regions), which charge the same for these. Reports of the collection (a launch's
    summary, an image's storage cost) read them here, so that they are kept in one place.
  - One value per term, in the order of the terms.
options:
  _terms:
    description:
      - What to return.
      - V(date), the month the prices were read.
      - V(regions), the regions they hold in.
      - V(instance_hourly), the hourly price of each Linux instance type the collection knows.
      - V(public_ipv4_hourly), a public IPv4 address per hour, used or not.
      - V(gp3_gb_month), gp3 volume storage per GiB-month.
      - V(snapshot_gb_month), EBS snapshot storage (standard tier) per GiB-month.
    type: list
    elements: str
    choices: [date, regions, instance_hourly, public_ipv4_hourly, gp3_gb_month, snapshot_gb_month]
    required: true
author:
  - labcloud.jupyter developers (@labcloud)
"""

EXAMPLES = r"""
- name: Say what an image's snapshots cost at most per month
  ansible.builtin.debug:
    msg: "{{ (100 * lookup('labcloud.jupyter.prices', 'snapshot_gb_month')) | round(2) }} USD per month at most"
"""

RETURN = r"""
_raw:
  description: The value of each term.
  type: list
  elements: raw
"""

from typing import Any, Dict, List, Optional

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.labcloud.jupyter.plugins.module_utils.prices import PRICES
from ansible_collections.labcloud.jupyter.plugins.module_utils.prices import price


class LookupModule(LookupBase):
    """Look up the collection's price list."""

    def run(self, terms: List[Any], variables: Optional[Dict[str, Any]] = None, **kwargs: Any) -> List[Any]:
        """Return the value of each term."""
        self.set_options(var_options=variables, direct=kwargs)
        found = []
        for term in terms:
            if not isinstance(term, str) or term not in PRICES:
                raise AnsibleLookupError(f"labcloud.jupyter.prices has no {term!r}; the terms are {', '.join(PRICES)}")
            found.append(price(term))
        return found
