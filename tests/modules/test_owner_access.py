"""labcloud.jupyter.owner_access against a moto server over HTTP, run through `ansible`.

The key pairs and security groups are checked with boto3 describe calls on the same endpoint after
each run; the fault proxy records which API actions a run made and fails chosen ones.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

RULE_DESCRIPTION = "SSH for the JupyterLab tunnel"
OTHER_GROUP = "sg-0123456789abcdef0"


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    """Return an EC2 resource's Tags list as a dict."""
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags") or []}


def sources(group: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Return a group's ingress as sorted (protocol, from, to, source) tuples."""
    found = []
    for permission in group["IpPermissions"]:
        ports = (permission["IpProtocol"], permission.get("FromPort"), permission.get("ToPort"))
        found += [(*ports, r["CidrIp"]) for r in permission.get("IpRanges") or []]
        found += [(*ports, r["CidrIpv6"]) for r in permission.get("Ipv6Ranges") or []]
        found += [(*ports, r["GroupId"]) for r in permission.get("UserIdGroupPairs") or []]
        found += [(*ports, r["PrefixListId"]) for r in permission.get("PrefixListIds") or []]
    return sorted(found, key=str)


@pytest.fixture
def vpc_id(aws) -> str:
    """The default VPC of the region."""
    (vpc,) = aws.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    return vpc["VpcId"]


@pytest.fixture
def public_key(tmp_path: Path) -> Callable[[str], str]:
    """Make a new ed25519 key pair with ssh-keygen and return its public key (OpenSSH format)."""

    def make(name: str) -> str:
        path = tmp_path / name
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
        return path.with_suffix(".pub").read_text().strip()

    return make


def groups(aws, vpc_id: str, names: list[str]) -> dict[str, dict[str, Any]]:
    """Return the security groups of those names in the VPC, by name."""
    filters = [{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": names}]
    return {g["GroupName"]: g for g in aws.ec2.describe_security_groups(Filters=filters)["SecurityGroups"]}


def key_pairs(aws, names: list[str]) -> dict[str, dict[str, Any]]:
    """Return the key pairs of those names, by name."""
    found = aws.ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": names}])["KeyPairs"]
    return {k["KeyName"]: k for k in found}


def owner_results(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the module's per-owner results by name."""
    return {entry["name"]: entry for entry in result["owners"]}


def make_group(aws, vpc_id: str, name: str, tags: dict[str, str], permissions: list[dict[str, Any]]) -> str:
    """Create a group with boto3, tagged and with the given ingress, and return its ID."""
    params: dict[str, Any] = {"GroupName": name, "Description": "made by hand", "VpcId": vpc_id}
    if tags:
        params["TagSpecifications"] = [
            {"ResourceType": "security-group", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
        ]
    group_id = aws.ec2.create_security_group(**params)["GroupId"]
    if permissions:
        aws.ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=permissions)
    return group_id


def ssh_from(cidr: str, port: int = 22) -> dict[str, Any]:
    """An IpPermission for tcp/port from an IPv4 CIDR."""
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": cidr}]}


def test_roster_check_real_and_idempotent(run_module, aws, vpc_id, public_key, fault_proxy):
    roster = [
        {"name": "jupyter-ada", "owner": "ada", "ssh_cidr": "203.0.113.7", "tags": {"Project": "ocean"}},
        {"name": "jupyter-grace", "owner": "grace", "ssh_cidr": "198.51.100.0/24"},
        {"name": "jupyter-linus", "owner": "linus", "ssh_cidr": "192.0.2.9/32", "tags": {"Course": "cs101"}},
    ]
    for entry in roster:
        entry["public_key"] = public_key(entry["name"])
    names = [entry["name"] for entry in roster]
    wanted_cidr = {"jupyter-ada": "203.0.113.7/32", "jupyter-grace": "198.51.100.0/24", "jupyter-linus": "192.0.2.9/32"}
    args = {"vpc_id": vpc_id, "owners": roster}

    predicted = run_module("owner_access", args, check=True, diff=True)
    assert predicted["changed"] is True
    assert [entry["name"] for entry in predicted["owners"]] == names
    for entry in predicted["owners"]:
        assert entry["changed"] is True
        assert entry["key_imported"] is True
        assert entry["key_fingerprint"] is None
        assert entry["group_created"] is True
        assert entry["group_id"] is None
        assert entry["authorized"] == [f"tcp/22 from {wanted_cidr[entry['name']]}"]
        assert entry["revoked"] == []
        assert predicted["diff"]["before"][entry["name"]] == {
            "group_id": None,
            "ingress": [],
            "tags": {},
            "key_pair": False,
        }
        assert predicted["diff"]["after"][entry["name"]]["ingress"] == [f"tcp/22 from {wanted_cidr[entry['name']]}"]
    assert key_pairs(aws, names) == {}, "check mode imported key pairs"
    assert groups(aws, vpc_id, names) == {}, "check mode created groups"

    applied = run_module("owner_access", args, diff=True)
    assert applied["changed"] is True
    found_keys, found_groups = key_pairs(aws, names), groups(aws, vpc_id, names)
    assert sorted(found_keys) == sorted(found_groups) == sorted(names)
    results = owner_results(applied)
    for entry in roster:
        name, result = entry["name"], results[entry["name"]]
        group, key = found_groups[name], found_keys[name]
        expected_tags = {"Name": name, "Owner": entry["owner"], **entry.get("tags", {})}
        assert tags_of(group) == expected_tags
        assert tags_of(key) == expected_tags
        assert group["Description"] == f"SSH to the JupyterLab VM of {entry['owner']}"
        assert group["IpPermissions"] == [
            {
                "IpProtocol": "tcp",
                "FromPort": 22,
                "ToPort": 22,
                "IpRanges": [{"CidrIp": wanted_cidr[name], "Description": RULE_DESCRIPTION}],
                "Ipv6Ranges": [],
                "PrefixListIds": [],
                "UserIdGroupPairs": [],
            }
        ]
        assert result["changed"] is True
        assert result["key_imported"] is True
        assert result["key_fingerprint"] == key["KeyFingerprint"]
        assert result["group_created"] is True
        assert result["group_id"] == group["GroupId"]
        assert result["tags"] == expected_tags
        assert result["authorized"] == [f"tcp/22 from {wanted_cidr[name]}"]
        assert result["revoked"] == []
        assert applied["diff"]["before"][name]["key_pair"] is False
        assert applied["diff"]["after"][name] == {
            "group_id": group["GroupId"],
            "ingress": [f"tcp/22 from {wanted_cidr[name]}"],
            "tags": expected_tags,
            "key_pair": True,
        }

    again = run_module("owner_access", args, endpoint=fault_proxy.endpoint)
    assert again["changed"] is False
    for entry in again["owners"]:
        assert entry["changed"] is False
        assert entry["key_imported"] is False
        assert entry["group_created"] is False
        assert entry["authorized"] == entry["revoked"] == []
        assert entry["key_fingerprint"] == found_keys[entry["name"]]["KeyFingerprint"]
        assert entry["group_id"] == found_groups[entry["name"]]["GroupId"]
    assert fault_proxy.calls, "the second run made no API call at all"
    assert sorted(set(fault_proxy.calls)) == ["DescribeKeyPairs", "DescribeSecurityGroups"]
    assert fault_proxy.count("DescribeKeyPairs") == 1
    assert fault_proxy.count("DescribeSecurityGroups") == 1
    assert groups(aws, vpc_id, names) == found_groups


def test_extra_rules_are_revoked_and_the_wanted_one_kept(run_module, aws, vpc_id, public_key):
    peer_id = make_group(aws, vpc_id, "jupyter-peer", {"Owner": "ada"}, [])
    group_id = make_group(
        aws,
        vpc_id,
        "jupyter-ada",
        {"Owner": "ada", "Keep": "me"},
        [
            ssh_from("0.0.0.0/0"),
            ssh_from("203.0.113.7/32"),
            ssh_from("198.51.100.0/24", 80),
            {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/64"}]},
            {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": peer_id}]},
        ],
    )
    before = groups(aws, vpc_id, ["jupyter-ada"])["jupyter-ada"]
    args = {
        "vpc_id": vpc_id,
        "owners": [{"name": "jupyter-ada", "owner": "ada", "ssh_cidr": "203.0.113.7", "public_key": public_key("ada")}],
    }
    expected_revoked = sorted(
        [
            "tcp/22 from 0.0.0.0/0",
            "tcp/22 from 2001:db8::/64",
            "tcp/80 from 198.51.100.0/24",
            f"all traffic from {peer_id}",
        ]
    )

    predicted = run_module("owner_access", args, check=True, diff=True)
    assert predicted["changed"] is True
    (ada,) = predicted["owners"]
    assert ada["group_id"] == group_id
    assert ada["group_created"] is False
    assert ada["authorized"] == []
    assert sorted(ada["revoked"]) == expected_revoked
    assert ada["tags"] == {"Name": "jupyter-ada", "Owner": "ada", "Keep": "me"}
    assert sorted(predicted["diff"]["before"]["jupyter-ada"]["ingress"]) == sorted(
        [*expected_revoked, "tcp/22 from 203.0.113.7/32"]
    )
    assert predicted["diff"]["before"]["jupyter-ada"]["tags"] == {"Owner": "ada", "Keep": "me"}
    assert predicted["diff"]["after"]["jupyter-ada"] == {
        "group_id": group_id,
        "ingress": ["tcp/22 from 203.0.113.7/32"],
        "tags": {"Name": "jupyter-ada", "Owner": "ada", "Keep": "me"},
        "key_pair": True,
    }
    assert groups(aws, vpc_id, ["jupyter-ada"])["jupyter-ada"] == before, "check mode changed the group"

    applied = run_module("owner_access", args)
    assert applied["changed"] is True
    (ada,) = applied["owners"]
    assert sorted(ada["revoked"]) == expected_revoked
    assert ada["authorized"] == []
    group = groups(aws, vpc_id, ["jupyter-ada"])["jupyter-ada"]
    assert group["GroupId"] == group_id
    assert sources(group) == [("tcp", 22, 22, "203.0.113.7/32")]
    assert tags_of(group) == {"Name": "jupyter-ada", "Owner": "ada", "Keep": "me"}
    assert group["IpPermissionsEgress"] == before["IpPermissionsEgress"]


def test_new_ssh_cidr_replaces_the_old_one_and_ipv6_works(run_module, aws, vpc_id, public_key):
    entry = {"name": "jupyter-ada", "owner": "ada", "ssh_cidr": "203.0.113.7/32", "public_key": public_key("ada")}
    created = run_module("owner_access", {"vpc_id": vpc_id, "owners": [entry], "port": 2222})
    assert created["changed"] is True
    group_id = created["owners"][0]["group_id"]

    moved = run_module(
        "owner_access", {"vpc_id": vpc_id, "owners": [{**entry, "ssh_cidr": "198.51.100.23"}], "port": 2222}
    )
    assert moved["changed"] is True
    (ada,) = moved["owners"]
    assert ada["group_id"] == group_id
    assert ada["revoked"] == ["tcp/2222 from 203.0.113.7/32"]
    assert ada["authorized"] == ["tcp/2222 from 198.51.100.23/32"]
    assert sources(groups(aws, vpc_id, ["jupyter-ada"])["jupyter-ada"]) == [("tcp", 2222, 2222, "198.51.100.23/32")]

    ipv6 = run_module("owner_access", {"vpc_id": vpc_id, "owners": [{**entry, "ssh_cidr": "2001:DB8:0:1::5/64"}]})
    assert ipv6["changed"] is True
    (ada,) = ipv6["owners"]
    assert ada["revoked"] == ["tcp/2222 from 198.51.100.23/32"]
    assert ada["authorized"] == ["tcp/22 from 2001:db8:0:1::/64"]
    (permission,) = groups(aws, vpc_id, ["jupyter-ada"])["jupyter-ada"]["IpPermissions"]
    assert permission["IpRanges"] == []
    assert permission["Ipv6Ranges"] == [{"CidrIpv6": "2001:db8:0:1::/64", "Description": RULE_DESCRIPTION}]
    assert (permission["IpProtocol"], permission["FromPort"], permission["ToPort"]) == ("tcp", 22, 22)


def test_several_sources_ipv4_and_ipv6_are_kept_exactly(run_module, aws, vpc_id, public_key):
    entry = {"name": "jupyter-ada", "owner": "ada", "public_key": public_key("ada")}
    campus = {**entry, "ssh_cidr": ["203.0.113.7/32", "198.51.100.0/24", "2001:db8:7::/48"]}
    created = run_module("owner_access", {"vpc_id": vpc_id, "owners": [campus]})
    assert created["changed"] is True
    assert sorted(created["owners"][0]["authorized"]) == [
        "tcp/22 from 198.51.100.0/24",
        "tcp/22 from 2001:db8:7::/48",
        "tcp/22 from 203.0.113.7/32",
    ]
    assert run_module("owner_access", {"vpc_id": vpc_id, "owners": [campus]})["changed"] is False

    # The campus range goes; the instructor's address and the IPv6 network stay, given as text with commas.
    fewer = run_module(
        "owner_access", {"vpc_id": vpc_id, "owners": [{**entry, "ssh_cidr": "203.0.113.7,2001:db8:7::/48"}]}
    )
    (ada,) = fewer["owners"]
    assert (ada["authorized"], ada["revoked"]) == ([], ["tcp/22 from 198.51.100.0/24"])
    (permission,) = groups(aws, vpc_id, ["jupyter-ada"])["jupyter-ada"]["IpPermissions"]
    assert [r["CidrIp"] for r in permission["IpRanges"]] == ["203.0.113.7/32"]
    assert [r["CidrIpv6"] for r in permission["Ipv6Ranges"]] == ["2001:db8:7::/48"]


def test_group_of_another_owner_is_refused_before_anything_is_changed(run_module, aws, vpc_id, public_key):
    foreign_id = make_group(aws, vpc_id, "jupyter-grace", {"Owner": "hopper"}, [ssh_from("0.0.0.0/0")])
    untagged_id = make_group(aws, vpc_id, "jupyter-linus", {}, [ssh_from("10.0.0.0/8", 80)])
    before = groups(aws, vpc_id, ["jupyter-grace", "jupyter-linus"])
    owners = [
        {"name": "jupyter-ada", "owner": "ada", "ssh_cidr": "203.0.113.7", "public_key": public_key("ada")},
        {"name": "jupyter-grace", "owner": "grace", "ssh_cidr": "203.0.113.8", "public_key": public_key("grace")},
        {"name": "jupyter-linus", "owner": "linus", "ssh_cidr": "203.0.113.9", "public_key": public_key("linus")},
    ]

    result = run_module("owner_access", {"vpc_id": vpc_id, "owners": owners})
    assert result["failed"] is True
    assert result["changed"] is False
    assert (
        f"Security group jupyter-grace ({foreign_id}) exists in {vpc_id} but is not tagged Owner=grace" in result["msg"]
    )
    assert (
        f"Security group jupyter-linus ({untagged_id}) exists in {vpc_id} but is not tagged Owner=linus"
        in result["msg"]
    )
    assert result["msg"].endswith("nothing was changed")

    after = groups(aws, vpc_id, ["jupyter-ada", "jupyter-grace", "jupyter-linus"])
    assert after == before, "a refused run changed a group or made ada's"
    assert key_pairs(aws, ["jupyter-ada", "jupyter-grace", "jupyter-linus"]) == {}


def test_existing_key_pair_is_never_replaced(run_module, aws, vpc_id, public_key):
    existing = aws.ec2.import_key_pair(KeyName="jupyter-ada", PublicKeyMaterial=public_key("old").encode())
    entry = {"name": "jupyter-ada", "owner": "ada", "ssh_cidr": "203.0.113.7", "public_key": public_key("new")}

    result = run_module("owner_access", {"vpc_id": vpc_id, "owners": [entry]})
    assert result["changed"] is True  # the group was created
    (ada,) = result["owners"]
    assert ada["key_imported"] is False
    assert ada["key_fingerprint"] == existing["KeyFingerprint"]
    key = key_pairs(aws, ["jupyter-ada"])["jupyter-ada"]
    assert key["KeyFingerprint"] == existing["KeyFingerprint"]
    assert key["KeyPairId"] == existing["KeyPairId"]
    assert tags_of(key) == {}, "an existing key pair was retagged"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"owners": [{"name": "jupyter-ada", "owner": "ada", "ssh_cidr": "203.0.113.300"}]},
            "jupyter-ada: ssh_cidr '203.0.113.300' is not an IP address or CIDR",
        ),
        (
            {
                "owners": [
                    {"name": "jupyter-ada", "owner": "ada", "ssh_cidr": "203.0.113.7"},
                    {"name": "jupyter-ada", "owner": "grace", "ssh_cidr": "203.0.113.8"},
                ]
            },
            "jupyter-ada is given more than once in owners",
        ),
        ({"port": 0}, "port 0 is not a TCP port (1-65535)"),
        # The names go into EC2 filters, where "*" would match every owner's key pair and group.
        (
            {"owners": [{"name": "jupyter-*", "owner": "ada", "ssh_cidr": "203.0.113.7"}]},
            'jupyter-*: name: "jupyter-*" contains "*"',
        ),
        (
            {"owners": [{"name": "jupyter-ada", "owner": "ada", "ssh_cidr": "203.0.113.7", "tags": {"Owner": "bob"}}]},
            'jupyter-ada: tags: "Owner" is set by the owner option and cannot be "bob"',
        ),
    ],
)
def test_bad_input_is_refused_before_any_api_call(run_module, aws, vpc_id, fault_proxy, change, message):
    args = {"vpc_id": vpc_id, "owners": [{"name": "jupyter-ada", "owner": "ada", "ssh_cidr": "203.0.113.7"}], **change}
    result = run_module("owner_access", args, endpoint=fault_proxy.endpoint)
    assert result["failed"] is True
    assert message in result["msg"]
    assert fault_proxy.calls == []


def test_missing_key_pair_without_public_key(run_module, aws, vpc_id):
    args = {"vpc_id": vpc_id, "owners": [{"name": "jupyter-ada", "owner": "ada", "ssh_cidr": "203.0.113.7"}]}

    predicted = run_module("owner_access", args, check=True)
    assert predicted.get("failed") is not True, predicted.get("msg")
    assert predicted["changed"] is True
    assert predicted["owners"][0]["key_imported"] is True
    assert predicted["owners"][0]["key_fingerprint"] is None
    assert key_pairs(aws, ["jupyter-ada"]) == groups(aws, vpc_id, ["jupyter-ada"]) == {}

    result = run_module("owner_access", args)
    assert result["failed"] is True
    assert result["msg"] == (
        "Key pair jupyter-ada does not exist and no public_key was given to import; nothing was changed"
    )
    assert result["changed"] is False
    assert key_pairs(aws, ["jupyter-ada"]) == groups(aws, vpc_id, ["jupyter-ada"]) == {}


@pytest.mark.parametrize(
    ("fault", "done"),
    [
        ("ImportKeyPair", []),
        ("AuthorizeSecurityGroupIngress", ["imported key pair jupyter-ada", "created security group jupyter-ada"]),
    ],
)
def test_failed_owner_reports_the_changes_made_before_the_failure(
    run_module, aws, vpc_id, public_key, fault_proxy, fault, done
):
    entry = {"name": "jupyter-ada", "owner": "ada", "ssh_cidr": "203.0.113.7", "public_key": public_key("ada")}
    other = {"name": "jupyter-bob", "owner": "bob", "ssh_cidr": "203.0.113.8", "public_key": public_key("bob")}
    fault_proxy.fail(fault, "UnauthorizedOperation", "You are not authorized to perform this operation.")

    result = run_module("owner_access", {"vpc_id": vpc_id, "owners": [entry, other]}, endpoint=fault_proxy.endpoint)
    assert result["failed"] is True
    assert fault_proxy.injected == [fault]
    # Which owner hit the fault depends on the order of the parallel calls.
    failed = [owner for owner in result["owners"] if "error" in owner]
    assert len(failed) == 1, result["owners"]
    name = failed[0]["name"]
    served = "jupyter-bob" if name == "jupyter-ada" else "jupyter-ada"
    assert "UnauthorizedOperation" in result["msg"]
    assert result["msg"].endswith(f"; done for {served}; run again once fixed")
    made = [text.replace("jupyter-ada", name) for text in done]
    for text in made:
        assert text in result["msg"]
    if not made:
        assert "(after it" not in result["msg"]
    assert failed[0]["changed"] is bool(made)
    assert result["changed"] is True  # the other owner was served
    assert (name in key_pairs(aws, [name])) is bool(made)
    assert (name in groups(aws, vpc_id, [name])) is bool(made)

    # The next run finishes the job.
    again = run_module("owner_access", {"vpc_id": vpc_id, "owners": [entry, other]})
    assert again.get("failed") is not True, again.get("msg")
    assert sources(groups(aws, vpc_id, [name])[name]) == [
        ("tcp", 22, 22, "203.0.113.7/32" if name == "jupyter-ada" else "203.0.113.8/32")
    ]


def test_api_error_names_what_was_being_done(run_module, aws, vpc_id, public_key, fault_proxy):
    fault_proxy.fail(
        "CreateSecurityGroup", "UnauthorizedOperation", "You are not authorized to perform this operation."
    )
    args = {
        "vpc_id": vpc_id,
        "owners": [{"name": "jupyter-ada", "owner": "ada", "ssh_cidr": "203.0.113.7", "public_key": public_key("a")}],
    }

    result = run_module("owner_access", args, endpoint=fault_proxy.endpoint)
    assert result["failed"] is True
    assert fault_proxy.injected == ["CreateSecurityGroup"]
    assert f"Could not create security group jupyter-ada in {vpc_id}" in result["msg"]
    assert "UnauthorizedOperation" in result["msg"]
    assert "error" in result["owners"][0]
    assert "(after it imported key pair jupyter-ada)" in result["msg"]
    assert result["changed"] is True
    assert groups(aws, vpc_id, ["jupyter-ada"]) == {}
    assert fault_proxy.count("AuthorizeSecurityGroupIngress") == 0
