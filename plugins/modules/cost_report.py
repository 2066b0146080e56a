#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
---
module: cost_report
version_added: 0.1.0
short_description: What the collection's resources in a region cost, per owner and project and for the class
description:
  - Finds the resources tagged as the collection's (C(ManagedBy)) in the region - instances that are not
    terminated, their volumes (attached volumes also without tags), Elastic IPs, the instances' own
    public IPv4 addresses, the account's images and snapshots - and prices each one.
  - An instance has its state, type, the hours it has run since its last start (until it was stopped,
    for a stopped one, as its state transition reason says), what those hours cost, its price per hour
    now and per month (730 hours) at its current state, and its health - its EC2 status checks when it
    runs, and what O(health) says of its JupyterLab.
  - A volume or snapshot has its size and price per month; an address whether it is associated (and the
    instance's state) or idle, and its price per hour, which AWS charges either way; an image its age,
    size, who else may launch it, and what its snapshots cost per month. A snapshot that backs an image
    of the report is billed on the image's row.
  - Prices come from the AWS Price List API (C(pricing) in us-east-1) when it answers, otherwise from
    the collection's bundled table (the C(labcloud.jupyter.prices) lookup), which states its date,
    source and regions; RV(prices) says which was used.
  - This closes a gap. C(amazon.aws) has an info module per kind of resource and nothing that prices
    them; AWS Cost Explorer reports what was billed, a day late and without the owners of a class.
options:
  owners:
    description:
      - Report only the resources tagged with these owners (C(Owner)); all the collection's resources when
        not given.
    type: list
    elements: str
  price_source:
    description:
      - V(auto) asks the Price List API and falls back to the bundled table when it cannot be reached;
        V(bundled) uses the bundled table without asking.
    type: str
    choices: [auto, bundled]
    default: auto
  health:
    description:
      - What is known of an owner's JupyterLab (the owner as key, a short text as value), shown on the
        owner's running instance instead of the hint to check it with C(playbooks/tunnel.yml).
    type: dict
    default: {}
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - labcloud.jupyter.attributes
  - labcloud.jupyter.attributes.info_module
author:
  - labcloud.jupyter developers (@labcloud)
seealso:
  - module: labcloud.jupyter.zombies
  - plugin: labcloud.jupyter.prices
    plugin_type: lookup
"""

EXAMPLES = r"""
- name: Report what the class costs
  labcloud.jupyter.cost_report:
    region: us-east-1
  register: report

- name: Write the report as Markdown
  ansible.builtin.copy:
    content: "{{ report.markdown }}"
    dest: ~/cost-report.md
    mode: "0644"

- name: Report two owners with the bundled prices
  labcloud.jupyter.cost_report:
    owners: [hedylamarr, adalovelace]
    price_source: bundled
"""

RETURN = r"""
generated_at:
  description: When the resources were described (UTC, ISO 8601); hours and ages are counted to it.
  returned: always
  type: str
  sample: "2026-12-02T05:00:00+00:00"
region:
  description: The region reported.
  returned: always
  type: str
  sample: us-east-1
prices:
  description: Which prices were used.
  returned: always
  type: dict
  contains:
    source:
      description: V(api) (the Price List API) or V(bundled) (the collection's table).
      type: str
      sample: bundled
    text:
      description: The sentence the report says it with, with the table's date, source and regions.
      type: str
      sample: bundled table of 2025-06 from the AWS pricing pages ..., for us-east-1, us-east-2, us-west-2
    date:
      description: The month the bundled prices were read; null for the API's.
      type: str
      sample: "2025-06"
    regions:
      description: The regions the prices hold in.
      type: list
      elements: str
    api_error:
      description: Why the Price List API was not used, with O(price_source=auto).
      type: str
      returned: when the bundled table was used with O(price_source=auto)
rows:
  description:
    - One row per resource, sorted by owner, project, kind and ID. Amounts in USD, null when unknown.
  returned: always
  type: list
  elements: dict
  contains:
    owner:
      description: The C(Owner) tag (C(-) when missing).
      type: str
    project:
      description: The C(Project) tag (C(-) when missing).
      type: str
    kind:
      description: V(instance), V(public-ipv4), V(elastic-ip), V(volume), V(snapshot) or V(image).
      type: str
    id:
      description: The resource's ID (the address itself for an instance's own public IPv4 address).
      type: str
    state:
      description: Its state, or what it is attached or associated to (V(idle), V(unattached)).
      type: str
    type:
      description: Instance or volume type.
      type: str
    gib:
      description: Size in GiB (volumes, snapshots, images).
      type: int
    hours:
      description: Hours an instance has run since its last start (until it stopped).
      type: float
    age_days:
      description: Age of an image in days.
      type: float
    cost_so_far_usd:
      description: What an instance's hours since its last start cost.
      type: float
    per_hour_usd:
      description: What it costs per hour now.
      type: float
    per_month_usd:
      description: What it costs per month (730 hours) at its current state.
      type: float
    shared_with:
      description: Who else may launch an image.
      type: list
      elements: str
    health:
      description: An instance's health (state, EC2 status checks, JupyterLab).
      type: str
    notes:
      description: More about the row.
      type: str
totals:
  description:
    - One total per owner and project, then the class total (owner and project V(all)), with the fields of RV(rows).
  returned: always
  type: list
  elements: dict
health_note:
  description: What the report says about JupyterLab's health.
  returned: always
  type: str
markdown:
  description: The report as Markdown, one table per owner and project and the class total.
  returned: always
  type: str
csv:
  description: The rows and totals as CSV.
  returned: always
  type: str
"""

from datetime import datetime, timezone
from typing import Any, Dict, List

# The import guard is the pattern ansible-test sanity expects.
try:  # noqa: SIM105
    from botocore.config import Config
except ImportError:
    pass  # AnsibleAWSModule reports the missing botocore

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import LabcloudAWSError
from ansible_collections.labcloud.jupyter.plugins.module_utils.aws import describe_all
from ansible_collections.labcloud.jupyter.plugins.module_utils.cost import csv_text
from ansible_collections.labcloud.jupyter.plugins.module_utils.cost import markdown
from ansible_collections.labcloud.jupyter.plugins.module_utils.cost import report_rows
from ansible_collections.labcloud.jupyter.plugins.module_utils.cost import totals
from ansible_collections.labcloud.jupyter.plugins.module_utils.holdings import describe
from ansible_collections.labcloud.jupyter.plugins.module_utils.prices import API_REGION
from ansible_collections.labcloud.jupyter.plugins.module_utils.prices import PriceTable
from ansible_collections.labcloud.jupyter.plugins.module_utils.prices import from_price_list

HEALTH_NOTE = (
    "a running instance shows its EC2 status checks, and what its JupyterLab said when it was asked (report.yml "
    "asks each running VM whose owner's key is on this machine, over SSH); otherwise the owner's tunnel tells "
    "(playbooks/tunnel.yml -e owner=<owner> -e tunnel_state=status)."
)


def first_line(text: str) -> str:
    """Return the first line of an error, at most 200 characters."""
    return (text.strip().splitlines() or [""])[0][:200]


def price_table(module: AnsibleAWSModule, resources: Dict[str, List[Dict[str, Any]]]) -> Dict[str, Any]:
    """Return the prices to use: the Price List API's when asked for and reachable, else the bundled table."""
    region = module.region
    if module.params["price_source"] == "bundled":
        return {"table": PriceTable(region), "error": None}
    config = Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 1})
    try:
        client = module.client("pricing", region=API_REGION, config=config)

        def get_products(request: Dict[str, Any]) -> List[Any]:
            """The PriceList entries of one GetProducts request."""
            return describe_all(client, "get_products", "PriceList", "Could not read the AWS Price List", **request)

        instance_types = {i.get("InstanceType", "") for i in resources["instances"]}
        volume_types = {v.get("VolumeType", "") for v in resources["volumes"]}
        table = from_price_list(get_products, region, instance_types, volume_types)
    except LabcloudAWSError as e:
        return {"table": PriceTable(region), "error": f"{e.message}: {first_line(str(e.exception))}"}
    # Any other failure to reach the Price List API (no credentials, an endpoint without it) means the bundled table.
    except Exception as e:
        return {"table": PriceTable(region), "error": f"Could not reach the AWS Price List API: {first_line(str(e))}"}
    if not table.from_api:
        return {"table": table, "error": "The AWS Price List API gave none of the prices"}
    return {"table": table, "error": None}


def main() -> None:
    """Run the module."""
    argument_spec = dict(
        owners=dict(type="list", elements="str"),
        price_source=dict(type="str", choices=["auto", "bundled"], default="auto"),
        health=dict(type="dict", default={}),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    if not module.region:
        module.fail_json(msg="Which region? Give region, or set AWS_REGION.")
    try:
        resources = describe(module.client("ec2"), module.region)
    except LabcloudAWSError as e:
        module.fail_json_aws(e.exception, msg=e.message)
    now = datetime.now(tz=timezone.utc).replace(microsecond=0)
    prices = price_table(module, resources)
    table = prices["table"]
    described = table.describe()
    if prices["error"]:
        described["api_error"] = prices["error"]
    health = {str(k): str(v) for k, v in module.params["health"].items()}
    rows = report_rows(resources, now, table, module.params["owners"], health)
    module.exit_json(
        changed=False,
        generated_at=now.isoformat(),
        region=module.region,
        prices=described,
        rows=rows,
        totals=totals(rows),
        health_note=HEALTH_NOTE,
        markdown=markdown(rows, now, module.region, described, HEALTH_NOTE),
        csv=csv_text(rows),
    )


if __name__ == "__main__":
    main()
