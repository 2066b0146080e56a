"""Unit tests of the filter ssh_sources: each owner's SSH networks, and what stops a launch."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.labcloud.jupyter.plugins.filter.ssh_sources import FilterModule

ssh_sources = FilterModule().filters()["ssh_sources"]


def test_each_owner_gets_its_own_sources_or_this_machines_address():
    requests = [
        {"owner": "ada", "ssh_cidr": ["198.51.100.7/24", "2001:db8::1/128", "198.51.100.0/24"]},
        {"owner": "grace", "ssh_cidr": ""},
        {"owner": "linus", "ssh_cidr": "203.0.113.7/32, 192.0.2.0/24"},
    ]
    found = ssh_sources(requests, "2001:db8:5::9/128")
    assert [r["ssh_cidr"] for r in found["requests"]] == [
        ["198.51.100.0/24", "2001:db8::1/128"],
        ["2001:db8:5::9/128"],
        ["203.0.113.7/32", "192.0.2.0/24"],
    ]
    assert found["requests"][0]["owner"] == "ada"
    assert found["invalid"] == found["unknown"] == found["wide"] == [] and found["open"] is False
    assert len(found["networks"]) == 5


def test_what_stops_a_launch_is_listed():
    requests = [
        {"owner": "ada", "ssh_cidr": ["203.0.113.7", "10.0.0.0/8", "2001:db8::/32", "campus"]},
        {"owner": "grace", "ssh_cidr": None},
        {"owner": "linus", "ssh_cidr": "0.0.0.0/0"},
    ]
    found = ssh_sources(requests, "")
    assert found["invalid"] == ["203.0.113.7", "campus"], "a CIDR needs its prefix length"
    assert found["unknown"] == ["grace"]
    assert found["wide"] == ["10.0.0.0/8", "2001:db8::/32", "0.0.0.0/0"] and found["open"] is True
    assert ssh_sources([{"owner": "x", "ssh_cidr": "172.16.0.0/16"}], "")["wide"] == []


@pytest.mark.parametrize("bad", [None, "ada", [{"ssh_cidr": "203.0.113.7/32"}]])
def test_bad_input_is_refused(bad):
    with pytest.raises(AnsibleFilterError, match="ssh_sources"):
        ssh_sources(bad)
