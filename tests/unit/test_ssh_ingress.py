"""Unit tests for the pure logic of labcloud.jupyter.owner_access: which ingress a group needs."""

import pytest
from ansible_collections.labcloud.jupyter.plugins.module_utils.ssh_ingress import (
    cidr_kind,
    cidr_list,
    cidrs_problem,
    describe_source,
    is_wide,
    normalize_cidr,
    permission_of,
    plan_ingress,
    sources_of,
    wanted_sources,
)


def wanted_source(cidr, port):
    (source,) = wanted_sources([cidr], port)
    return source


ADA = "203.0.113.7/32"
SSH_FROM_ADA = ("tcp", 22, 22, "IpRanges", ADA)


def permission(protocol="tcp", from_port=22, to_port=22, **sources):
    """An IpPermission as DescribeSecurityGroups returns it; sources by kind, e.g. IpRanges=["10.0.0.0/8"]."""
    keys = {
        "IpRanges": "CidrIp",
        "Ipv6Ranges": "CidrIpv6",
        "UserIdGroupPairs": "GroupId",
        "PrefixListIds": "PrefixListId",
    }
    result = {"IpProtocol": protocol, "IpRanges": [], "Ipv6Ranges": [], "UserIdGroupPairs": [], "PrefixListIds": []}
    if from_port is not None:
        result["FromPort"] = from_port
    if to_port is not None:
        result["ToPort"] = to_port
    for kind, values in sources.items():
        result[kind] = [{keys[kind]: value} for value in values]
    return result


class TestNormalizeCidr:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ("203.0.113.7", "203.0.113.7/32"),
            (" 203.0.113.7 ", "203.0.113.7/32"),
            ("203.0.113.7/32", "203.0.113.7/32"),
            ("203.0.113.7/24", "203.0.113.0/24"),
            ("10.1.2.3/8", "10.0.0.0/8"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("2001:db8::1", "2001:db8::1/128"),
            ("2001:DB8:0:0::1/64", "2001:db8::/64"),
            ("::/0", "::/0"),
        ],
    )
    def test_networks(self, value, expected):
        assert normalize_cidr(value) == expected

    @pytest.mark.parametrize(
        "value", ["", "not-an-ip", "203.0.113.7/33", "203.0.113", "300.0.113.7", "2001:db8::/129", "10.0.0.0/-1"]
    )
    def test_garbage_raises_value_error(self, value):
        with pytest.raises(ValueError):
            normalize_cidr(value)

    def test_kind_and_wanted_source(self):
        assert cidr_kind("203.0.113.0/24") == "IpRanges"
        assert cidr_kind("2001:db8::/64") == "Ipv6Ranges"
        assert wanted_source("2001:db8::/64", 2222) == ("tcp", 2222, 2222, "Ipv6Ranges", "2001:db8::/64")
        assert wanted_source(ADA, 22) == SSH_FROM_ADA


class TestPlanIngress:
    def test_empty_group_gets_only_the_wanted_source(self):
        assert plan_ingress([], [SSH_FROM_ADA]) == ([SSH_FROM_ADA], [])

    def test_group_already_right_needs_nothing(self):
        assert plan_ingress([permission(IpRanges=[ADA])], [SSH_FROM_ADA]) == ([], [])

    def test_right_cidr_written_differently_matches(self):
        wanted = wanted_source(normalize_cidr("203.0.113.7"), 22)
        assert plan_ingress([permission(IpRanges=["203.0.113.7/32"])], [wanted]) == ([], [])
        assert plan_ingress([permission(IpRanges=["203.0.113.7"])], [SSH_FROM_ADA]) == ([], [])
        net = wanted_source(normalize_cidr("203.0.113.0/24"), 22)
        assert plan_ingress([permission(IpRanges=["203.0.113.0/24"])], [net]) == ([], [])
        assert plan_ingress([permission(IpRanges=["203.0.113.1/24"])], [net]) == ([], [])
        ipv6 = wanted_source(normalize_cidr("2001:db8::/64"), 22)
        assert plan_ingress([permission(Ipv6Ranges=["2001:DB8:0::/64"])], [ipv6]) == ([], [])

    def test_every_other_source_is_revoked_and_the_wanted_one_kept(self):
        permissions = [
            permission(IpRanges=["0.0.0.0/0", ADA]),
            permission("-1", None, None, IpRanges=["10.0.0.0/8"]),
            permission("tcp", 80, 80, IpRanges=[ADA]),
            permission(UserIdGroupPairs=["sg-0123456789abcdef0"]),
            permission(Ipv6Ranges=["::/0"]),
            permission(PrefixListIds=["pl-0123456789abcdef0"]),
        ]
        add, revoke = plan_ingress(permissions, [SSH_FROM_ADA])
        assert add == []
        assert revoke == [
            ("tcp", 22, 22, "IpRanges", "0.0.0.0/0"),
            ("-1", None, None, "IpRanges", "10.0.0.0/8"),
            ("tcp", 80, 80, "IpRanges", ADA),
            ("tcp", 22, 22, "UserIdGroupPairs", "sg-0123456789abcdef0"),
            ("tcp", 22, 22, "Ipv6Ranges", "::/0"),
            ("tcp", 22, 22, "PrefixListIds", "pl-0123456789abcdef0"),
        ]

    def test_wanted_source_is_added_when_only_others_exist(self):
        add, revoke = plan_ingress([permission(IpRanges=["198.51.100.0/24"])], [SSH_FROM_ADA])
        assert add == [SSH_FROM_ADA]
        assert revoke == [("tcp", 22, 22, "IpRanges", "198.51.100.0/24")]

    def test_same_cidr_on_a_port_range_or_other_protocol_is_not_the_wanted_one(self):
        permissions = [permission("tcp", 0, 65535, IpRanges=[ADA]), permission("udp", IpRanges=[ADA])]
        add, revoke = plan_ingress(permissions, [SSH_FROM_ADA])
        assert add == [SSH_FROM_ADA]
        assert revoke == [("tcp", 0, 65535, "IpRanges", ADA), ("udp", 22, 22, "IpRanges", ADA)]

    def test_ipv4_rule_is_replaced_by_the_ipv6_one(self):
        wanted = wanted_source("2001:db8::/64", 22)
        add, revoke = plan_ingress([permission(IpRanges=[ADA])], [wanted])
        assert add == [wanted]
        assert revoke == [SSH_FROM_ADA]


class TestSeveralSources:
    CAMPUS = ("tcp", 22, 22, "IpRanges", "198.51.100.0/24")
    HOME6 = ("tcp", 22, 22, "Ipv6Ranges", "2001:db8::1/128")

    def test_a_list_or_commas_give_the_networks_once(self):
        assert cidr_list(["203.0.113.7/32", " 198.51.100.0/24 "]) == ["203.0.113.7/32", "198.51.100.0/24"]
        assert cidr_list("203.0.113.7/32,2001:db8::1") == ["203.0.113.7/32", "2001:db8::1"]
        assert cidr_list(None) == cidr_list("") == []
        sources = wanted_sources(["203.0.113.7", "203.0.113.7/32", "198.51.100.9/24", "2001:db8::1"], 22)
        assert sources == [SSH_FROM_ADA, self.CAMPUS, self.HOME6]

    def test_each_source_is_kept_added_or_revoked_on_its_own(self):
        wanted = [SSH_FROM_ADA, self.CAMPUS, self.HOME6]
        add, revoke = plan_ingress([permission(IpRanges=[ADA, "192.0.2.0/24"])], wanted)
        assert add == [self.CAMPUS, self.HOME6]
        assert revoke == [("tcp", 22, 22, "IpRanges", "192.0.2.0/24")]
        everything = [permission(IpRanges=[ADA, "198.51.100.0/24"], Ipv6Ranges=["2001:db8::1/128"])]
        assert plan_ingress(everything, wanted) == ([], [])

    def test_problems_and_width(self):
        assert cidrs_problem(["203.0.113.7/32", "2001:db8::/48"]) is None
        assert cidrs_problem(["203.0.113.7/32", "campus"]) == "ssh_cidr 'campus' is not an IP address or CIDR"
        assert [is_wide(c) for c in ("10.0.0.0/8", "172.16.0.0/16", "0.0.0.0/0")] == [True, False, True]
        assert [is_wide(c) for c in ("2001:db8::/32", "2001:db8::/48", "::/0")] == [True, False, True]


class TestPermissionOf:
    @pytest.mark.parametrize(
        "source",
        [
            SSH_FROM_ADA,
            ("tcp", 2222, 2222, "Ipv6Ranges", "2001:db8::/64"),
            ("-1", None, None, "IpRanges", "0.0.0.0/0"),
            ("tcp", 1000, 2000, "UserIdGroupPairs", "sg-0123456789abcdef0"),
            ("tcp", 22, 22, "PrefixListIds", "pl-0123456789abcdef0"),
        ],
    )
    @pytest.mark.parametrize("description", [None, "SSH for the JupyterLab tunnel"])
    def test_round_trip(self, source, description):
        assert sources_of([permission_of(source, description)]) == [source]

    def test_shape(self):
        assert permission_of(SSH_FROM_ADA, "SSH") == {
            "IpProtocol": "tcp",
            "FromPort": 22,
            "ToPort": 22,
            "IpRanges": [{"CidrIp": ADA, "Description": "SSH"}],
        }
        assert permission_of(("-1", None, None, "Ipv6Ranges", "::/0")) == {
            "IpProtocol": "-1",
            "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
        }


class TestDescribeSource:
    @pytest.mark.parametrize(
        ("source", "text"),
        [
            (SSH_FROM_ADA, "tcp/22 from 203.0.113.7/32"),
            (("tcp", 1000, 2000, "IpRanges", "10.0.0.0/8"), "tcp/1000-2000 from 10.0.0.0/8"),
            (("-1", None, None, "IpRanges", "0.0.0.0/0"), "all traffic from 0.0.0.0/0"),
            (("-1", -1, -1, "Ipv6Ranges", "::/0"), "all traffic from ::/0"),
            (("tcp", None, None, "PrefixListIds", "pl-1"), "tcp from pl-1"),
            (("tcp", 22, 22, "UserIdGroupPairs", "sg-1"), "tcp/22 from sg-1"),
            (("tcp", 22, 22, "Ipv6Ranges", "2001:db8::/64"), "tcp/22 from 2001:db8::/64"),
        ],
    )
    def test_text(self, source, text):
        assert describe_source(source) == text
