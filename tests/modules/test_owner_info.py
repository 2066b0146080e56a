"""labcloud.jupyter.owner_info against a moto server over HTTP, run through `ansible`.

The owners' resources are made with boto3 (images in moto's backend, where RegisterImage cannot set
an architecture, a state or a snapshot size); the module only reads, so each behaviour is run in
check mode and for real, and both must report the same and change nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from owner_cloud import (
    add_image,
    allocate,
    import_key,
    make_private_key,
    owner_tags,
    run_instance,
    set_image_state,
    wait_for_state,
)
from test_owner_access import make_group, ssh_from

ACCOUNT_A = "123456789012"
DEBIAN = "136693071363"
CIDR = "203.0.113.7/32"


@pytest.fixture
def vpc_id(aws) -> str:
    """The default VPC of the region."""
    (vpc,) = aws.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    return vpc["VpcId"]


def identity(owner: str) -> dict[str, str]:
    """The Name and Owner tags of an owner's key pair, group and address."""
    return {"Name": f"jupyter-{owner}", "Owner": owner}


def give_access(aws, vpc_id: str, key_dir: Path, owner: str, *cidrs: str, tags: dict[str, str] | None = None) -> str:
    """Give the owner a private key, its key pair and a group admitting SSH from cidrs; return the key file."""
    key_file = key_dir / f"jupyter-{owner}.pem"
    import_key(aws, f"jupyter-{owner}", make_private_key(key_file), identity(owner))
    make_group(aws, vpc_id, f"jupyter-{owner}", tags or identity(owner), [ssh_from(cidr) for cidr in cidrs])
    return str(key_file)


def by_owner(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The module's per-owner results by owner."""
    return {entry["owner"]: entry for entry in result["owners"]}


def look(run_module, args: dict[str, Any], **options: Any) -> dict[str, Any]:
    """Run owner_info in check mode and for real; both report the same, change nothing and do not fail."""
    predicted = run_module("owner_info", args, check=True, **options)
    result = run_module("owner_info", args, **options)
    for found in (predicted, result):
        assert found.get("failed") is not True, found.get("msg")
        assert found["changed"] is False
    assert predicted["owners"] == result["owners"]
    assert predicted["problems"] == result["problems"]
    return result


def test_finds_each_owners_resources_by_their_tags_only(run_module, aws, vpc_id, tmp_path, fault_proxy):
    ada = run_instance(aws, owner_tags("ada"))
    key_file = give_access(aws, vpc_id, tmp_path, "ada", CIDR)
    ada_address = allocate(aws, identity("ada"), ada)
    grace = run_instance(aws, owner_tags("grace"))
    grace_address = allocate(aws, identity("grace"), grace)
    # Lookalikes of ada's: not launched by the collection, another name, terminated; addresses of another name
    # or without tags.
    run_instance(aws, identity("ada"))
    run_instance(aws, {**owner_tags("ada"), "Name": "jupyter-ada-old"})
    gone = run_instance(aws, owner_tags("ada"))
    aws.ec2.terminate_instances(InstanceIds=[gone])
    wait_for_state(aws, gone, "terminated")
    allocate(aws, {"Name": "jupyter-ada-old", "Owner": "ada"})
    aws.ec2.allocate_address(Domain="vpc")
    key = aws.ec2.describe_key_pairs(KeyNames=["jupyter-ada"])["KeyPairs"][0]
    group_id = aws.ec2.describe_security_groups(GroupNames=["jupyter-ada"])["SecurityGroups"][0]["GroupId"]
    args = {"owners": [{"owner": "ada", "key_file": key_file, "ssh_cidr": CIDR}, {"owner": "grace"}]}

    result = look(run_module, args, endpoint=fault_proxy.endpoint)
    assert (result["account"], result["region"]) == (ACCOUNT_A, "us-east-1")
    assert (result["problems"], result["subnet"], result["instance_types"]) == ([], None, {})
    found = by_owner(result)
    assert [entry["owner"] for entry in result["owners"]] == ["ada", "grace"]
    assert [i["instance_id"] for i in found["ada"]["instances"]] == [ada]
    assert found["ada"]["instance"]["instance_id"] == ada
    assert found["ada"]["instance"]["tags"] == owner_tags("ada")
    assert found["ada"]["key_pair"] == {
        "key_name": "jupyter-ada",
        "key_fingerprint": key["KeyFingerprint"],
        "tags": identity("ada"),
    }
    assert found["ada"]["security_group"] == {"group_id": group_id, "vpc_id": vpc_id, "tags": identity("ada")}
    assert found["ada"]["address"] == {
        "allocation_id": ada_address["AllocationId"],
        "public_ip": ada_address["PublicIp"],
        "instance_id": ada,
        "tags": identity("ada"),
    }
    assert found["ada"]["access_in_order"] is True
    assert found["ada"]["address_in_order"] is True
    assert (found["ada"]["image"], found["ada"]["images"], found["ada"]["image_available"]) == (None, [], False)

    assert [i["instance_id"] for i in found["grace"]["instances"]] == [grace]
    assert found["grace"]["address"]["allocation_id"] == grace_address["AllocationId"]
    assert found["grace"]["key_pair"] is None
    assert found["grace"]["security_group"] is None
    assert found["grace"]["access_in_order"] is False
    assert found["grace"]["address_in_order"] is True

    # One call per kind of resource for the whole roster, besides the checks of the credentials and region.
    per_run = {"GetCallerIdentity", "DescribeRegions", "DescribeInstances", "DescribeKeyPairs"}
    per_run |= {"DescribeSecurityGroups", "DescribeAddresses"}
    assert set(fault_proxy.calls) == per_run
    assert len(fault_proxy.calls) == 2 * len(per_run)


def test_access_in_order_only_when_owner_access_would_change_nothing(run_module, aws, vpc_id, tmp_path):
    owners = [
        {"owner": "ada", "key_file": give_access(aws, vpc_id, tmp_path, "ada", CIDR)},
        {"owner": "grace", "key_file": give_access(aws, vpc_id, tmp_path, "grace", "198.51.100.0/24")},
        {"owner": "hedy", "key_file": give_access(aws, vpc_id, tmp_path, "hedy", CIDR, "0.0.0.0/0")},
        {"owner": "linus", "key_file": give_access(aws, vpc_id, tmp_path, "linus", CIDR), "tags": {"Course": "cs"}},
        {
            "owner": "barbara",
            "key_file": give_access(aws, vpc_id, tmp_path, "barbara", CIDR, tags={"Owner": "barbara"}),
        },
        {"owner": "katherine", "key_file": str(tmp_path / "none.pem")},
    ]
    make_group(aws, vpc_id, "jupyter-katherine", identity("katherine"), [ssh_from(CIDR)])
    # Without key_file, an existing key pair is enough.
    import_key(aws, "jupyter-margaret", make_private_key(tmp_path / "elsewhere" / "m.pem"), identity("margaret"))
    make_group(aws, vpc_id, "jupyter-margaret", identity("margaret"), [ssh_from(CIDR)])
    owners.append({"owner": "margaret"})

    result = look(run_module, {"owners": [{**entry, "ssh_cidr": CIDR} for entry in owners]})
    in_order = {owner: entry["access_in_order"] for owner, entry in by_owner(result).items()}
    assert in_order == {
        "ada": True,
        "grace": False,  # another source
        "hedy": False,  # one source too many
        "linus": False,  # a wanted tag missing
        "barbara": False,  # the Name tag missing
        "katherine": False,  # no key pair
        "margaret": True,
    }
    assert result["problems"] == []

    moved = look(run_module, {"owners": [{**owners[0], "ssh_cidr": "198.51.100.7"}]})
    assert moved["owners"][0]["access_in_order"] is False
    other_port = look(run_module, {"owners": [{**owners[0], "ssh_cidr": CIDR}], "port": 2222})
    assert other_port["owners"][0]["access_in_order"] is False


def test_address_in_order_only_when_associated_with_the_owners_instance_and_tagged(run_module, aws):
    instances = {owner: run_instance(aws, owner_tags(owner)) for owner in ("ada", "grace", "hedy", "linus")}
    allocate(aws, identity("ada"), instances["ada"])
    allocate(aws, identity("grace"))
    allocate(aws, {**identity("hedy"), "Course": "cs101"}, instances["hedy"])
    allocate(aws, identity("linus"), instances["hedy"])
    allocate(aws, identity("barbara"), instances["ada"])
    owners = [{"owner": owner, "tags": {"Course": "cs101"} if owner == "hedy" else {}} for owner in instances]

    result = look(run_module, {"owners": [*owners, {"owner": "barbara"}]})
    in_order = {owner: entry["address_in_order"] for owner, entry in by_owner(result).items()}
    # grace's is not associated, linus's is on hedy's instance, barbara has no instance.
    assert in_order == {"ada": True, "grace": False, "hedy": True, "linus": False, "barbara": False}

    tagged = look(run_module, {"owners": [{"owner": "ada", "tags": {"Course": "cs101"}}]})
    assert tagged["owners"][0]["address_in_order"] is False


def test_launch_reports_every_problem_at_once_without_failing(run_module, aws, vpc_id, tmp_path, fault_proxy):
    arm = add_image(ACCOUNT_A, "lab-arm", architecture="arm64", root_size=16, tags={"ImageFamily": "debian"})
    run_instance(aws, owner_tags("grace"))
    make_group(aws, vpc_id, "jupyter-linus", {"Name": "jupyter-linus", "Owner": "hopper"}, [ssh_from(CIDR)])
    import_key(aws, "jupyter-katherine", make_private_key(tmp_path / "lost.pem"), identity("katherine"))
    import_key(aws, "jupyter-margaret", make_private_key(tmp_path / "hers.pem"), identity("margaret"))
    make_private_key(tmp_path / "jupyter-margaret.pem")
    barbara = [run_instance(aws, owner_tags("barbara")) for _ in range(2)]
    owners = [
        {"owner": "ada", "instance_type": "t3.micro", "image": "ada-missing-*"},
        {"owner": "grace", "instance_type": "t3.micro", "image": "grace-never-looked-up-*"},
        {"owner": "hedy", "instance_type": "t3.micro", "image": arm, "root_size": 8},
        {"owner": "linus"},
        {"owner": "katherine", "key_file": str(tmp_path / "jupyter-katherine.pem")},
        {"owner": "margaret", "key_file": str(tmp_path / "jupyter-margaret.pem")},
        {"owner": "barbara"},
    ]

    result = look(run_module, {"launch": True, "owners": owners}, endpoint=fault_proxy.endpoint)
    problems = result["problems"]
    expected = [
        "No image ada-missing-* in us-east-1",
        f"Root volume of 8 GiB is smaller than the 16 GiB snapshot of image {arm}",
        f"Image {arm} is arm64, which instance type t3.micro cannot run (x86_64)",
        "Security group jupyter-linus (",
        "Key pair jupyter-katherine exists in us-east-1 but its private key",
        "Key pair jupyter-margaret in us-east-1 does not match the private key",
        f"barbara has 2 instances named jupyter-barbara ({', '.join(barbara)})",
    ]
    assert len(problems) == len(expected), problems
    for start in expected:
        assert [problem for problem in problems if problem.startswith(start)], (start, problems)
    found = by_owner(result)
    assert found["ada"]["problems"] == [problems[0]]
    assert found["grace"]["problems"] == []
    assert found["grace"]["image"] is None
    assert "grace-never-looked-up" not in " ".join(problems)
    # An image that is there but does not fit is still described.
    assert (found["hedy"]["image"]["image_id"], found["hedy"]["image"]["root_size"]) == (arm, 16)
    assert found["ada"]["image"] is None
    assert found["barbara"]["instance"] is None
    assert sorted(i["instance_id"] for i in found["barbara"]["instances"]) == sorted(barbara)
    assert list(result["instance_types"]) == ["t3.micro"]
    assert result["instance_types"]["t3.micro"]["architectures"] == ["x86_64"]
    assert result["subnet"]["vpc_id"] == vpc_id
    # One look-up per image request of the owners still to launch (ada's and hedy's), in each run.
    assert fault_proxy.count("DescribeImages") == 2 * 2


def test_launch_reports_an_unknown_instance_type(run_module):
    result = look(run_module, {"launch": True, "owners": [{"owner": "ada", "instance_type": "t9.nope"}]})
    assert result["problems"] == [
        "Instance type t9.nope does not exist in us-east-1: check its spelling (for example c5.large, t3.micro, "
        "m5ad.4xlarge) with aws ec2 describe-instance-types --region us-east-1."
    ]
    assert result["instance_types"] == {}


def test_launch_reports_only_the_unknown_instance_type(run_module):
    owners = [{"owner": "ada", "instance_type": "t9.nope"}, {"owner": "grace", "instance_type": "t3.micro"}]
    result = look(run_module, {"launch": True, "owners": owners})
    assert [problem.split(":")[0] for problem in result["problems"]] == [
        "Instance type t9.nope does not exist in us-east-1"
    ]
    assert list(result["instance_types"]) == ["t3.micro"]


def test_launch_takes_the_newest_available_image_of_a_request(run_module, aws, vpc_id):
    add_image(DEBIAN, "debian-12-amd64-20240101", created=datetime(2024, 1, 1, tzinfo=UTC))
    newer = add_image(DEBIAN, "debian-12-amd64-20250101", created=datetime(2025, 1, 1, tzinfo=UTC))
    add_image(DEBIAN, "debian-12-amd64-20250601", created=datetime(2025, 6, 1, tzinfo=UTC), state="pending")
    add_image(DEBIAN, "debian-12-arm64-20250701", architecture="arm64", created=datetime(2025, 7, 1, tzinfo=UTC))
    own = add_image(ACCOUNT_A, "lab-jupyter", root_size=12, public=False, tags={"ImageFamily": "ubuntu"})
    plain = add_image(ACCOUNT_A, "plain-image", public=False)
    launch = {"instance_type": "t3.micro", "root_size": 20}
    owners = [
        {"owner": "ada", "image": f"{DEBIAN}/debian-12-amd64-*", **launch},
        {"owner": "grace", "image": "self/lab-*", **launch},
        {"owner": "hedy", "image": "lab-*", **launch},
        {"owner": "linus", "image": plain, "image_family": "amazon", **launch},
    ]
    (default_subnet,) = [
        subnet
        for subnet in aws.ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
        if subnet["AvailabilityZone"] == "us-east-1a"
    ]

    result = look(run_module, {"launch": True, "owners": owners})
    assert result["problems"] == []
    assert result["subnet"] == {
        "subnet_id": default_subnet["SubnetId"],
        "vpc_id": vpc_id,
        "availability_zone": "us-east-1a",
        "cidr_block": default_subnet["CidrBlock"],
    }
    assert result["instance_types"]["t3.micro"]["vcpus"] == 2
    images = {owner: entry["image"] for owner, entry in by_owner(result).items()}
    assert images["ada"]["image_id"] == newer
    assert images["ada"]["name"] == "debian-12-amd64-20250101"
    assert (images["ada"]["family"], images["ada"]["login_user"]) == ("debian", "admin")
    assert (images["ada"]["architecture"], images["ada"]["root_size"]) == ("x86_64", 8)
    assert images["ada"]["root_device_name"] == "/dev/xvda"
    for owner in ("grace", "hedy"):
        assert images[owner]["image_id"] == own
        assert (images[owner]["family"], images[owner]["login_user"], images[owner]["root_size"]) == (
            "ubuntu",
            "ubuntu",
            12,
        )
        assert images[owner]["tags"] == {"ImageFamily": "ubuntu"}
    assert (images["linus"]["image_id"], images["linus"]["login_user"]) == (plain, "ec2-user")


def test_images_of_instances(run_module, aws):
    ada, grace = run_instance(aws, owner_tags("ada")), run_instance(aws, owner_tags("grace"))
    saved = aws.ec2.create_image(InstanceId=ada, Name="ada-saved")["ImageId"]
    saving = aws.ec2.create_image(InstanceId=grace, Name="grace-saving")["ImageId"]
    aws.ec2.get_waiter("image_available").wait(ImageIds=[saved, saving], WaiterConfig={"Delay": 1})
    set_image_state(saving, "pending")
    add_image(ACCOUNT_A, "not-of-an-instance", public=False)
    args = {"owners": [{"owner": "ada"}, {"owner": "grace"}, {"owner": "hedy"}], "images_of_instances": True}

    found = by_owner(look(run_module, args))
    assert found["ada"]["image_available"] is True
    assert found["ada"]["images"] == [
        {"image_id": saved, "name": "ada-saved", "state": "available", "source_instance_id": ada, "tags": {}}
    ]
    assert found["grace"]["image_available"] is False
    assert [(image["image_id"], image["state"]) for image in found["grace"]["images"]] == [(saving, "pending")]
    assert (found["hedy"]["images"], found["hedy"]["image_available"]) == ([], False)

    without = by_owner(look(run_module, {**args, "images_of_instances": False}))
    assert (without["ada"]["images"], without["ada"]["image_available"]) == ([], False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"owners": [{"owner": "Ada"}]}, "Invalid owner 'Ada': use 2 to 32 lower-case letters"),
        ({"owners": [{"owner": "ada", "ssh_cidr": "203.0.113.300"}]}, "jupyter-ada: ssh_cidr '203.0.113.300' is not"),
        ({"owners": [{"owner": "ada"}, {"owner": "ada"}]}, "jupyter-ada is given more than once in owners"),
        ({"owners": [{"owner": "ada"}], "region": "useast1"}, "Region useast1 is not a region name: "),
    ],
)
def test_bad_input_fails_before_any_api_call(run_module, fault_proxy, args, message):
    result = run_module("owner_info", args, endpoint=fault_proxy.endpoint)
    assert result["failed"] is True
    assert message in result["msg"]
    assert fault_proxy.calls == []


def test_a_region_the_account_does_not_have(run_module, fault_proxy):
    result = run_module(
        "owner_info", {"owners": [{"owner": "ada"}], "region": "us-nowhere-1"}, endpoint=fault_proxy.endpoint
    )
    assert result["failed"] is True
    assert result["msg"].startswith("Region us-nowhere-1 does not exist or is not enabled in this account: use one of ")
    assert "us-east-1" in result["msg"]
    assert fault_proxy.calls == ["GetCallerIdentity", "DescribeRegions"]
