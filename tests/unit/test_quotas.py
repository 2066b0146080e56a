"""Unit tests of the quota rules a launch is checked against before anything is made."""

from __future__ import annotations

import pytest
from ansible_collections.labcloud.jupyter.plugins.module_utils.quotas import (
    address_problems,
    launch_needs,
    vcpu_group,
    vcpu_problems,
)


@pytest.mark.parametrize(
    ("instance_type", "code"),
    [
        ("t3.micro", "L-1216C47A"),
        ("c5.large", "L-1216C47A"),
        ("i3.large", "L-1216C47A"),
        ("inf2.xlarge", "L-1945791B"),
        ("g4dn.xlarge", "L-DB2E81BA"),
        ("vt1.3xlarge", "L-DB2E81BA"),
        ("p4d.24xlarge", "L-417A185B"),
        ("trn1.2xlarge", "L-2C3B7624"),
        ("dl1.24xlarge", "L-6E869C2A"),
        ("x2gd.large", "L-7295265B"),
        ("f1.2xlarge", "L-74FC7D96"),
    ],
)
def test_family_groups(instance_type, code):
    assert vcpu_group(instance_type)[0] == code


def test_addresses_fit_or_say_what_to_do():
    assert address_problems("us-west-2", 5, 2, ["a", "b", "c"]) == []
    assert address_problems("us-west-2", None, 5, ["a"]) == [], "an unknown limit is not guessed"
    (problem,) = address_problems("us-west-2", 5, 4, ["a", "b"])
    assert "needs 2 new address(es) (a, b)" in problem and "so 1 can be allocated" in problem
    assert "to at least 6" in problem


def test_vcpus_fit_per_group():
    needed = {"L-1216C47A": [("a", "t3.micro", 2), ("b", "t3.micro", 2)], "L-DB2E81BA": [("c", "g4dn.xlarge", 4)]}
    limits = {"L-1216C47A": 32.0, "L-DB2E81BA": 0.0}
    (problem,) = vcpu_problems("us-west-2", limits, {"L-1216C47A": 28}, needed)
    assert "G and VT" in problem and "to at least 4" in problem
    assert len(vcpu_problems("us-west-2", limits, {"L-1216C47A": 29}, needed)) == 2
    assert vcpu_problems("us-west-2", {"L-1216C47A": None}, {}, {"L-1216C47A": [("a", "t3.micro", 2)]}) == []


def test_what_a_launch_needs():
    entries = [
        {"owner": "running", "instance_type": "t3.micro"},
        {"owner": "stopped", "instance_type": "t3.micro"},
        {"owner": "new", "instance_type": "c5.xlarge"},
        {"owner": "no-eip", "instance_type": "t3.micro", "elastic_ip": False},
    ]
    results = [
        {"instance": {"instance_type": "t3.micro", "state": {"name": "running"}}, "address": {"allocation_id": "x"}},
        {"instance": {"instance_type": "m5.large", "state": {"name": "stopped"}}, "address": None},
        {"instance": None, "address": None},
        {"instance": None, "address": None},
    ]
    addresses, starts = launch_needs(entries, results, {"t3.micro": 2, "m5.large": 2, "c5.xlarge": 4})
    assert addresses == ["stopped", "new"]
    assert starts == {"L-1216C47A": [("stopped", "m5.large", 2), ("new", "c5.xlarge", 4), ("no-eip", "t3.micro", 2)]}
