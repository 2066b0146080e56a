# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Lookup region: the one place that decides the AWS region of a run."""

DOCUMENTATION = r"""
name: region
version_added: 0.1.0
short_description: The AWS region of the run, found where AWS users set it
description:
  - Returns the region every playbook and role of the collection works in, decided here only.
  - The first of these that is set and not empty wins, in this order.
  - The variable C(region) (C(-e region=eu-west-1)).
  - The environment variable C(AWS_REGION), then C(AWS_DEFAULT_REGION).
  - The region of the AWS profile, found as the AWS CLI finds it (C(aws configure) writes it), that is
    the profile C(AWS_PROFILE) names, else C(default), in the file C(AWS_CONFIG_FILE) names, else in
    C(~/.aws/config).
  - Fails, saying how to set one, when none of them gives a region, when the region is not a
    region name (such as V(us-east-1)), or when C(AWS_PROFILE) names a profile that does not exist.
  - Takes no terms.
author:
  - labcloud.jupyter developers (@labcloud)
"""

EXAMPLES = r"""
- name: Set the region of every AWS module of the play once
  hosts: localhost
  module_defaults:
    group/labcloud.jupyter.aws:
      region: "{{ lookup('labcloud.jupyter.region') }}"
  tasks:
    - name: Look at the instances of the region
      amazon.aws.ec2_instance_info:
"""

RETURN = r"""
_raw:
  description: The region, one item.
  type: list
  elements: str
  sample: ["eu-west-1"]
"""

import os
from typing import Any, Dict, List, Optional, Tuple

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.labcloud.jupyter.plugins.module_utils.launch_checks import region_error

try:
    import botocore.session
    from botocore.exceptions import BotoCoreError
except ImportError:  # botocore is a requirement of amazon.aws; the error below says so.
    botocore = None

HOW_TO_SET = (
    "give -e region=<region> (for example -e region=us-east-1), export AWS_REGION=<region>, "
    "or set your profile's region with `aws configure`"
)


def profile_region() -> Tuple[Optional[str], str]:
    """Return the region of the AWS CLI's profile (None when it has none) and where it was looked for."""
    profile = os.environ.get("AWS_PROFILE") or "default"
    config_file = os.environ.get("AWS_CONFIG_FILE") or "~/.aws/config"
    where = f"the profile {profile} in {config_file}"
    if botocore is None:
        raise AnsibleLookupError(f"Could not read {where}: botocore is not installed (pip install botocore).")
    try:
        # botocore reads AWS_PROFILE and AWS_CONFIG_FILE from the environment, as the AWS CLI does.
        return botocore.session.Session().get_config_variable("region"), where
    except BotoCoreError as e:
        raise AnsibleLookupError(f"Could not read the region of {where}: {e}. {HOW_TO_SET}.") from e


def find_region(variable: Any) -> Tuple[str, str]:
    """Return the run's region and where it came from, or fail saying how to set one."""
    candidates = [
        ("the variable region", variable),
        ("AWS_REGION", os.environ.get("AWS_REGION")),
        ("AWS_DEFAULT_REGION", os.environ.get("AWS_DEFAULT_REGION")),
    ]
    for source, value in candidates:
        if value is not None and str(value).strip():
            return checked(str(value).strip(), source)
    region, where = profile_region()
    if region:
        return checked(region, where)
    raise AnsibleLookupError(
        "No AWS region is set (no region variable, AWS_REGION or AWS_DEFAULT_REGION, and no region in "
        f"{where}): {HOW_TO_SET}. Nothing was changed."
    )


def checked(region: str, source: str) -> Tuple[str, str]:
    """Return (region, source) when region is a region name, else fail naming where it came from."""
    problem = region_error(region)
    if problem:
        raise AnsibleLookupError(f"{problem} (It came from {source}.) Nothing was changed.")
    return region, source


class LookupModule(LookupBase):
    """Look up the region of the run."""

    def run(self, terms: List[Any], variables: Optional[Dict[str, Any]] = None, **kwargs: Any) -> List[Any]:
        """Return [region]."""
        if terms:
            raise AnsibleLookupError("labcloud.jupyter.region takes no terms: lookup('labcloud.jupyter.region').")
        self.set_options(var_options=variables, direct=kwargs)
        variable = (variables or {}).get("region")
        if variable is not None and self._templar is not None:
            variable = self._templar.template(variable)
        return [find_region(variable)[0]]
