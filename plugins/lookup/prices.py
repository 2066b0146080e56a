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
      - V(source), where the prices were read; V(hours_per_month), the 730 hours AWS bills a month as.
      - V(ebs_gb_month), volume storage per GiB-month by volume type.
      - V(launch_cost), what a VM costs, from O(instance_type), O(region), O(gib) and O(addresses) - the
        instance, its gp3 volumes and its public IPv4 addresses - as a dictionary with C(known), C(hourly)
        and C(monthly) (730 hours) while it runs, C(stopped_monthly) while it is stopped, C(parts)
        (C(instance), C(volumes), C(public_ipv4) per hour), C(gib) and C(date); C(known) is false and the
        amounts null for a type or region the table does not hold.
    type: list
    elements: str
    choices: [date, regions, source, hours_per_month, instance_hourly, public_ipv4_hourly, gp3_gb_month,
              ebs_gb_month, snapshot_gb_month, launch_cost]
    required: true
  instance_type:
    description: With V(launch_cost), the instance type.
    type: str
  region:
    description: With V(launch_cost), the region.
    type: str
  gib:
    description: With V(launch_cost), the sizes in GiB of the VM's volumes (gp3).
    type: list
    elements: int
    default: []
  addresses:
    description: With V(launch_cost), how many public IPv4 addresses the VM holds.
    type: int
    default: 1
author:
  - labcloud.jupyter developers (@labcloud)
"""

EXAMPLES = r"""
- name: Say what an image's snapshots cost at most per month
  ansible.builtin.debug:
    msg: "{{ (100 * lookup('labcloud.jupyter.prices', 'snapshot_gb_month')) | round(2) }} USD per month at most"

- name: Say what a c5.large with a 100 GiB disk and a public address costs while it runs
  ansible.builtin.debug:
    msg: >-
      {{ cost.hourly }} USD/hour, {{ cost.monthly }} USD/month running, {{ cost.stopped_monthly }} stopped
  vars:
    cost: >-
      {{ lookup('labcloud.jupyter.prices', 'launch_cost', instance_type='c5.large', region='us-east-1', gib=[100]) }}
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
from ansible_collections.labcloud.jupyter.plugins.module_utils.prices import launch_cost
from ansible_collections.labcloud.jupyter.plugins.module_utils.prices import price


class LookupModule(LookupBase):
    """Look up the collection's price list."""

    def run(self, terms: List[Any], variables: Optional[Dict[str, Any]] = None, **kwargs: Any) -> List[Any]:
        """Return the value of each term."""
        self.set_options(var_options=variables, direct=kwargs)
        found = []
        for term in terms:
            if term == "launch_cost":
                found.append(self.launch_cost())
                continue
            if not isinstance(term, str) or term not in PRICES:
                names = ", ".join([*PRICES, "launch_cost"])
                raise AnsibleLookupError(f"labcloud.jupyter.prices has no {term!r}; the terms are {names}")
            found.append(price(term))
        return found

    def launch_cost(self) -> Dict[str, Any]:
        """Return what the VM of the options costs while it runs."""
        instance_type = self.get_option("instance_type")
        if not instance_type:
            raise AnsibleLookupError("labcloud.jupyter.prices: launch_cost needs instance_type")
        try:
            gib = [int(size) for size in self.get_option("gib") or []]
        except (TypeError, ValueError) as e:
            raise AnsibleLookupError(f"labcloud.jupyter.prices: gib must be sizes in GiB ({e})") from e
        return launch_cost(instance_type, self.get_option("region"), gib, int(self.get_option("addresses")))
