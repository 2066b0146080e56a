"""The account's quotas are checked before a launch makes anything: labcloud.jupyter.owner_access with
launch=true against the local cloud's API (moto with the quotas AWS enforces), run through `ansible`.

A default account has 5 Elastic IPs per region and 32 running standard vCPUs (0 for G instances);
a class larger than that must fail before the first key pair, group, instance or address, with what
to request or change.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from owner_cloud import add_image, allocate, owner_tags, run_instance
from test_owner_access import groups, key_pairs

from localcloud.api.patching import controller

DEBIAN = "136693071363"
CIDR = "203.0.113.7/32"


@pytest.fixture
def quotas(monkeypatch):
    """Set the local cloud's quotas for the test, as an instructor's account would have them."""

    def set_quotas(**values: int) -> None:
        cloud = controller()
        names = {key.replace("_", "-"): value for key, value in values.items()}
        monkeypatch.setattr(cloud, "settings", dataclasses.replace(cloud.settings, quotas=names))

    return set_quotas


@pytest.fixture
def vpc_id(aws) -> str:
    (vpc,) = aws.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    return vpc["VpcId"]


def roster(tmp_path, names: list[str], **settings: Any) -> list[dict[str, Any]]:
    image = add_image(DEBIAN, "debian-12-amd64-20250101")
    launch = {"instance_type": "t3.micro", "image": image, "root_size": 8, **settings}
    return [
        {
            "name": f"jupyter-{name}",
            "owner": name,
            "ssh_cidr": CIDR,
            "key_file": str(tmp_path / f"{name}.pem"),
            **launch,
        }
        for name in names
    ]


def mutating(calls: list[str]) -> list[str]:
    return [call for call in calls if not call.startswith(("Describe", "Get", "List"))]


def test_a_class_larger_than_the_elastic_ip_quota_fails_before_anything_is_made(
    run_module, aws, vpc_id, tmp_path, fault_proxy, quotas
):
    quotas(elastic_ips=3)
    allocate(aws, {"Name": "someone-else"})
    ada = run_instance(aws, owner_tags("ada"))
    allocate(aws, {"Name": "jupyter-ada", "Owner": "ada"}, ada)
    names = ["ada", "grace", "linus", "alan"]
    owners = roster(tmp_path, names)

    for check in (True, False):
        result = run_module(
            "owner_access", {"launch": True, "owners": owners}, check=check, endpoint=fault_proxy.endpoint
        )
        assert result["failed"] is True and result["changed"] is False, result
        (problem,) = result["problems"]
        assert problem.startswith("Elastic IP quota: this launch needs 3 new address(es) (grace, linus, alan)")
        assert "allows 3 of which 2 are held, so 1 can be allocated" in problem
        assert "EC2-VPC Elastic IPs (L-0263D0A3) to at least 5" in problem
        assert "-e ec2_instance_elastic_ip=false" in problem
    assert mutating(fault_proxy.calls) == []
    assert list(tmp_path.glob("*.pem")) == [], "a private key was made"
    assert key_pairs(aws, [f"jupyter-{n}" for n in names]) == groups(aws, vpc_id, [f"jupyter-{n}" for n in names]) == {}

    # Without Elastic IPs for two of them, the one address left is enough.
    owners = [{**entry, "elastic_ip": entry["owner"] not in ("linus", "alan")} for entry in owners]
    result = run_module("owner_access", {"launch": True, "owners": owners})
    assert result.get("failed") is not True, result.get("msg")
    # Or with the quota an instructor requested.
    quotas(elastic_ips=5)
    owners = [{**entry, "elastic_ip": True} for entry in owners]
    assert run_module("owner_access", {"launch": True, "owners": owners}).get("failed") is not True


def test_the_vcpus_of_each_family_group_are_checked_against_its_quota(run_module, aws, tmp_path, fault_proxy, quotas):
    quotas(standard=4)
    run_instance(aws, {"Name": "someone-else"})
    ada = run_instance(aws, owner_tags("ada"))

    # ada's instance runs already (it needs nothing more); grace's and linus's new t3.micro (2 vCPUs
    # each) would make 8 of the 4 allowed, with 4 in use.
    owners = roster(tmp_path, ["ada", "grace", "linus"])
    result = run_module("owner_access", {"launch": True, "owners": owners}, endpoint=fault_proxy.endpoint)
    assert result["failed"] is True, result
    (problem,) = result["problems"]
    assert problem.startswith("vCPU quota: this launch starts 2 instance(s) of t3.micro with 4 vCPUs in all")
    assert "allows 4 vCPUs of Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances (L-1216C47A)" in problem
    assert "of which 4 are in use" in problem and "to at least 8" in problem
    assert mutating(fault_proxy.calls) == []

    # A stopped instance needs its vCPUs again when the launch starts it.
    aws.ec2.stop_instances(InstanceIds=[ada])
    quotas(standard=2)
    result = run_module("owner_access", {"launch": True, "owners": roster(tmp_path, ["ada"])})
    assert result["failed"] is True and "starts 1 instance(s) of t3.micro with 2 vCPUs" in result["msg"], result

    # A GPU type meets its own quota, 0 in a new account.
    quotas(standard=64)
    result = run_module(
        "owner_access", {"launch": True, "owners": roster(tmp_path, ["grace"], instance_type="g4dn.xlarge")}
    )
    assert result["failed"] is True
    assert "allows 0 vCPUs of Running On-Demand G and VT instances (L-DB2E81BA)" in result["msg"], result["msg"]


def test_a_quota_that_cannot_be_read_is_warned_about_not_guessed(run_module, aws, tmp_path, fault_proxy, quotas):
    quotas(standard=0)
    fault_proxy.fail("GetServiceQuota", "AccessDeniedException", "not authorized", times=1)
    result = run_module(
        "owner_access", {"launch": True, "owners": roster(tmp_path, ["grace"])}, endpoint=fault_proxy.endpoint
    )
    assert result.get("failed") is not True, result.get("msg")
    assert [w for w in result.get("warnings", []) if "without checking Running On-Demand Standard" in w], result
