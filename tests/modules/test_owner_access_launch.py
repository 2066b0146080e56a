"""labcloud.jupyter.owner_access's private keys, launch checks, creation tags and state=absent, against a moto
server over HTTP, run through `ansible`; the key pairs, groups and key files are checked after each run.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
from owner_cloud import add_image, allocate, import_key, make_private_key, owner_tags, public_half, run_instance
from test_owner_access import groups, key_pairs, make_group, ssh_from, tags_of

DEBIAN = "136693071363"
CIDR = "203.0.113.7/32"
NAMES = ["jupyter-ada", "jupyter-grace", "jupyter-linus"]


@pytest.fixture
def vpc_id(aws) -> str:
    """The default VPC of the region."""
    (vpc,) = aws.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    return vpc["VpcId"]


def owner(name: str, **settings: Any) -> dict[str, Any]:
    """An owners entry of owner_access for jupyter-<name>, admitting CIDR."""
    return {"name": f"jupyter-{name}", "owner": name, "ssh_cidr": CIDR, **settings}


def mode(path: Path) -> int:
    """A file's permission bits."""
    return stat.S_IMODE(path.stat().st_mode)


def imported_key(aws, name: str) -> str:
    """The public key EC2 keeps for a key pair, without its comment."""
    (key,) = aws.ec2.describe_key_pairs(KeyNames=[name], IncludePublicKey=True)["KeyPairs"]
    return " ".join(key["PublicKey"].split()[:2])


def mutating(calls: list[str]) -> list[str]:
    """The API calls that may change something."""
    return [call for call in calls if not call.startswith(("Describe", "Get"))]


def test_a_missing_private_key_is_made_and_its_public_half_imported(run_module, aws, vpc_id, tmp_path):
    key_dir = tmp_path / "keys"
    key_file = key_dir / "jupyter-ada.pem"
    args = {"vpc_id": vpc_id, "owners": [owner("ada", key_file=str(key_file))]}

    predicted = run_module("owner_access", args, check=True)
    assert predicted["changed"] is True
    (ada,) = predicted["owners"]
    assert (ada["key_file_made"], ada["key_imported"], ada["group_created"]) == (True, True, True)
    assert not key_dir.exists(), "check mode made the key directory"
    assert key_pairs(aws, ["jupyter-ada"]) == {}

    applied = run_module("owner_access", args)
    assert applied["changed"] is True
    (ada,) = applied["owners"]
    assert (ada["key_file_made"], ada["key_imported"]) == (True, True)
    assert (mode(key_dir), mode(key_file)) == (0o700, 0o400)
    assert imported_key(aws, "jupyter-ada") == public_half(key_file)
    assert ada["key_fingerprint"] == key_pairs(aws, ["jupyter-ada"])["jupyter-ada"]["KeyFingerprint"]
    made = key_file.read_bytes()

    for check in (True, False):
        again = run_module("owner_access", args, check=check)
        assert again["changed"] is False
        assert (again["owners"][0]["key_file_made"], again["owners"][0]["key_imported"]) == (False, False)
    assert key_file.read_bytes() == made
    assert mode(key_file) == 0o400


def test_an_existing_private_key_is_never_rewritten(run_module, aws, vpc_id, tmp_path):
    key_file = tmp_path / "jupyter-ada.pem"
    make_private_key(key_file)
    before = (key_file.read_bytes(), mode(key_file), key_file.stat().st_mtime_ns)
    args = {"vpc_id": vpc_id, "owners": [owner("ada", key_file=str(key_file))]}

    predicted = run_module("owner_access", args, check=True)
    assert predicted["changed"] is True
    assert (predicted["owners"][0]["key_file_made"], predicted["owners"][0]["key_imported"]) == (False, True)
    assert key_pairs(aws, ["jupyter-ada"]) == {}

    applied = run_module("owner_access", args)
    assert applied["changed"] is True
    assert (applied["owners"][0]["key_file_made"], applied["owners"][0]["key_imported"]) == (False, True)
    assert imported_key(aws, "jupyter-ada") == public_half(key_file)

    for check in (True, False):
        assert run_module("owner_access", args, check=check)["changed"] is False
    assert (key_file.read_bytes(), mode(key_file), key_file.stat().st_mtime_ns) == before


def test_launch_problems_fail_the_run_with_all_of_them_and_change_nothing(
    run_module, aws, vpc_id, tmp_path, fault_proxy
):
    image = add_image(DEBIAN, "debian-12-amd64-20250101", root_size=16)
    import_key(aws, "jupyter-grace", make_private_key(tmp_path / "elsewhere.pem"), {"Owner": "grace"})
    launch = {"instance_type": "t3.micro", "root_size": 20}
    owners = [
        owner("ada", key_file=str(tmp_path / "keys" / "jupyter-ada.pem"), image="missing-*", **launch),
        owner("grace", key_file=str(tmp_path / "keys" / "jupyter-grace.pem"), image=image, **launch),
        owner("linus", public_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA", image=image, **{**launch, "root_size": 8}),
    ]
    args = {"launch": True, "owners": owners}

    for check in (True, False):
        result = run_module("owner_access", args, check=check, endpoint=fault_proxy.endpoint)
        assert result["failed"] is True
        assert result["changed"] is False
        assert len(result["problems"]) == 3, result["problems"]
        for start in (
            "No image missing-* in us-east-1",
            "Key pair jupyter-grace exists in us-east-1 but its private key",
            "Root volume of 8 GiB is smaller than the 16 GiB snapshot",
        ):
            assert start in result["msg"]
            assert [problem for problem in result["problems"] if problem.startswith(start)]
    assert mutating(fault_proxy.calls) == []
    assert not (tmp_path / "keys").exists(), "a private key was made"
    assert list(key_pairs(aws, NAMES)) == ["jupyter-grace"]
    assert groups(aws, vpc_id, NAMES) == {}


def test_launch_prepares_the_owners_and_returns_what_it_found(run_module, aws, vpc_id, tmp_path):
    image = add_image(DEBIAN, "debian-12-amd64-20250101")
    ada = run_instance(aws, owner_tags("ada"))
    address = allocate(aws, {"Name": "jupyter-ada", "Owner": "ada"}, ada)
    launch = {"instance_type": "t3.micro", "image": f"{DEBIAN}/debian-12-amd64-*", "root_size": 8}
    owners = [owner(name, key_file=str(tmp_path / f"jupyter-{name}.pem"), **launch) for name in ("ada", "grace")]
    args = {"launch": True, "owners": owners}
    (subnet,) = [
        found
        for found in aws.ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
        if found["AvailabilityZone"] == "us-east-1a"
    ]

    def assert_found(result: dict[str, Any]) -> None:
        assert result.get("failed") is not True, result.get("msg")
        assert result["subnet"]["subnet_id"] == subnet["SubnetId"]
        assert result["subnet"]["vpc_id"] == vpc_id
        assert result["instance_types"]["t3.micro"]["architectures"] == ["x86_64"]
        assert result["account"] == "123456789012"
        found = {entry["owner"]: entry for entry in result["owners"]}
        assert found["ada"]["instance"]["instance_id"] == ada
        assert found["ada"]["address"]["allocation_id"] == address["AllocationId"]
        assert (found["ada"]["image"], found["ada"]["address_in_order"]) == (None, True)
        assert (found["grace"]["instance"], found["grace"]["address"]) == (None, None)
        assert found["grace"]["image"]["image_id"] == image
        assert found["grace"]["image"]["login_user"] == "admin"
        assert found["grace"]["address_in_order"] is False

    predicted = run_module("owner_access", args, check=True)
    assert_found(predicted)
    assert predicted["changed"] is True
    assert [entry["key_file_made"] for entry in predicted["owners"]] == [True, True]
    assert key_pairs(aws, NAMES) == groups(aws, vpc_id, NAMES) == {}
    assert list(tmp_path.glob("*.pem")) == []

    applied = run_module("owner_access", args)
    assert_found(applied)
    assert applied["changed"] is True
    made = groups(aws, vpc_id, NAMES)
    assert sorted(made) == sorted(key_pairs(aws, NAMES)) == ["jupyter-ada", "jupyter-grace"]
    for name in made:
        assert imported_key(aws, name) == public_half(tmp_path / f"{name}.pem")

    for check in (True, False):
        again = run_module("owner_access", args, check=check)
        assert_found(again)
        assert again["changed"] is False
    assert groups(aws, vpc_id, NAMES) == made


def test_creation_tags_are_set_only_on_what_is_made(run_module, aws, vpc_id, tmp_path):
    make_group(aws, vpc_id, "jupyter-grace", {"Owner": "grace", "Created": "long ago"}, [ssh_from(CIDR)])
    owners = [
        owner("ada", public_key=make_private_key(tmp_path / "ada.pem"), tags={"Project": "ocean"}),
        owner("grace", public_key=make_private_key(tmp_path / "grace.pem")),
    ]
    first = {"Created": "2025-01-01", "Project": "overridden"}
    made_tags = {"Name": "jupyter-ada", "Owner": "ada", "Project": "ocean", "Created": "2025-01-01"}
    grace_tags = {"Name": "jupyter-grace", "Owner": "grace", "Created": "long ago"}
    args = {"vpc_id": vpc_id, "owners": [{**entry, "creation_tags": first} for entry in owners]}

    predicted = run_module("owner_access", args, check=True)
    assert predicted["changed"] is True
    assert [entry["tags"] for entry in predicted["owners"]] == [made_tags, grace_tags]
    assert key_pairs(aws, NAMES) == {}

    applied = run_module("owner_access", args)
    assert applied["changed"] is True
    assert [entry["tags"] for entry in applied["owners"]] == [made_tags, grace_tags]
    found_groups, found_keys = groups(aws, vpc_id, NAMES), key_pairs(aws, NAMES)
    assert tags_of(found_groups["jupyter-ada"]) == tags_of(found_keys["jupyter-ada"]) == made_tags
    assert tags_of(found_groups["jupyter-grace"]) == grace_tags
    # grace's key pair is new: it gets the creation tags her own tags do not set.
    assert tags_of(found_keys["jupyter-grace"]) == {"Name": "jupyter-grace", "Owner": "grace", **first}

    later = {"vpc_id": vpc_id, "owners": [{**entry, "creation_tags": {"Created": "2026-06-01"}} for entry in owners]}
    for check in (True, False):
        again = run_module("owner_access", later, check=check)
        assert again["changed"] is False
        assert [entry["tags"] for entry in again["owners"]] == [made_tags, grace_tags]
    assert groups(aws, vpc_id, NAMES) == found_groups
    assert key_pairs(aws, NAMES) == found_keys


def test_absent_deletes_only_what_is_tagged_for_the_owner(run_module, aws, vpc_id, tmp_path):
    key_file = tmp_path / "jupyter-ada.pem"
    made = run_module("owner_access", {"vpc_id": vpc_id, "owners": [owner("ada", key_file=str(key_file))]})
    assert made["changed"] is True
    theirs = {"Name": "jupyter-grace", "Owner": "hopper"}
    make_group(aws, vpc_id, "jupyter-grace", theirs, [ssh_from(CIDR)])
    import_key(aws, "jupyter-grace", make_private_key(tmp_path / "hopper.pem"), theirs)
    make_group(aws, vpc_id, "jupyter-linus", {}, [])
    import_key(aws, "jupyter-linus", make_private_key(tmp_path / "linus.pem"))
    kept = {"groups": groups(aws, vpc_id, NAMES[1:]), "keys": key_pairs(aws, NAMES[1:])}
    ada_group = groups(aws, vpc_id, ["jupyter-ada"])["jupyter-ada"]["GroupId"]
    args = {
        "state": "absent",
        "owners": [{"name": f"jupyter-{name}", "owner": name} for name in ("ada", "grace", "linus")],
    }

    predicted = run_module("owner_access", args, check=True)
    assert predicted["changed"] is True
    assert [(e["name"], e["group_deleted"], e["key_deleted"]) for e in predicted["owners"]] == [
        ("jupyter-ada", True, True),
        ("jupyter-grace", False, False),
        ("jupyter-linus", False, False),
    ]
    assert predicted["owners"][0]["group_id"] == ada_group
    assert sorted(groups(aws, vpc_id, NAMES)) == sorted(key_pairs(aws, NAMES)) == NAMES

    applied = run_module("owner_access", args)
    assert applied["changed"] is True
    deleted = [(e["group_deleted"], e["key_deleted"]) for e in applied["owners"]]
    assert deleted == [(True, True), (False, False), (False, False)]
    assert groups(aws, vpc_id, NAMES) == kept["groups"]
    assert key_pairs(aws, NAMES) == kept["keys"]
    assert key_file.exists(), "the private key file was deleted"

    for check in (True, False):
        again = run_module("owner_access", args, check=check)
        assert again["changed"] is False
        assert [e["changed"] for e in again["owners"]] == [False, False, False]
    assert groups(aws, vpc_id, NAMES) == kept["groups"]


def test_launch_and_absent_cannot_be_asked_together(run_module, fault_proxy):
    args = {"launch": True, "state": "absent", "owners": [owner("ada")]}
    result = run_module("owner_access", args, endpoint=fault_proxy.endpoint)
    assert result["failed"] is True
    assert "parameters are mutually exclusive: launch|state" in result["msg"]
    assert fault_proxy.calls == []
