"""Not every Availability Zone offers every instance type. The local cloud's RunInstances refuses a type
in a zone that does not offer it with EC2's error (from the data its DescribeInstanceTypeOfferings answers
with), and playbooks/launch.yml puts each owner's VM in a subnet whose zone offers its type, or fails before
anything is made when the subnet given cannot.

In us-east-1 (moto's data), trn1.2xlarge is offered in us-east-1c and us-east-1f only, so the default
subnet of the first zone cannot take it; t3.micro is offered everywhere but in us-east-1e.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from owner_cloud import REGION, add_image
from test_owner_access import groups, key_pairs

from localcloud.api.patching import controller
from tests.modules.test_share_playbook import changed, run_share

DEBIAN = "136693071363"
CIDR = "203.0.113.7/32"
OWNER = "hedylamarr"
# A type the region's first zone does not offer, and the zones that do.
TYPE = "trn1.2xlarge"
TYPE_ZONES = [f"{REGION}c", f"{REGION}f"]


@pytest.fixture
def trn_quota(monkeypatch):
    """A Trn vCPU quota that lets one trn1.2xlarge run (a new account has 0)."""
    cloud = controller()
    monkeypatch.setattr(cloud, "settings", dataclasses.replace(cloud.settings, quotas={"trn": 8}))


def default_subnets(aws) -> dict[str, str]:
    """The region's default subnets, by zone."""
    found = aws.ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    return {subnet["AvailabilityZone"]: subnet["SubnetId"] for subnet in found}


def offered_in(aws, instance_type: str) -> list[str]:
    """The zones DescribeInstanceTypeOfferings says offer a type."""
    offerings = aws.ec2.describe_instance_type_offerings(
        LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": [instance_type]}]
    )["InstanceTypeOfferings"]
    return sorted(offering["Location"] for offering in offerings)


def instances(aws) -> list[dict[str, Any]]:
    """Every instance of the account, terminated ones aside."""
    reservations = aws.ec2.describe_instances()["Reservations"]
    return [i for r in reservations for i in r["Instances"] if i["State"]["Name"] != "terminated"]


def run_launch(endpoint: str, key_dir: Path, *extra: str):
    """Run playbooks/launch.yml as a user does, launching only (no machine answers SSH in this cloud)."""
    return run_share(
        endpoint,
        "-e",
        f"owner={OWNER}",
        "-e",
        f"ssh_cidr={CIDR}",
        "-e",
        f"labcloud_key_dir={key_dir}",
        "-e",
        f"instance_type={TYPE}",
        "-e",
        "configure=false",
        "-e",
        "ec2_instance_wait_for_ssh=false",
        *extra,
        playbook="launch.yml",
    )


def test_run_instances_refuses_a_type_in_a_zone_that_does_not_offer_it(aws, trn_quota):
    image = aws.ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    subnets = default_subnets(aws)
    assert offered_in(aws, "t3.micro") == [f"{REGION}{zone}" for zone in "abcdf"]
    assert offered_in(aws, TYPE) == TYPE_ZONES
    launch = {"ImageId": image, "MinCount": 1, "MaxCount": 1, "InstanceType": "t3.micro"}
    expected = (
        f"Your requested instance type (t3.micro) is not supported in your requested Availability Zone ({REGION}e). "
        f"Please retry your request by not specifying an Availability Zone or choosing {REGION}a, {REGION}b, "
        f"{REGION}c, {REGION}d, {REGION}f."
    )
    for where in (
        {"SubnetId": subnets[f"{REGION}e"]},
        {"Placement": {"AvailabilityZone": f"{REGION}e"}},
        {
            "NetworkInterfaces": [
                {"DeviceIndex": 0, "SubnetId": subnets[f"{REGION}e"], "AssociatePublicIpAddress": True}
            ]
        },
    ):
        with pytest.raises(ClientError) as refused:
            aws.ec2.run_instances(**launch, **where)
        assert refused.value.response["Error"] == {"Code": "Unsupported", "Message": expected}, where
    assert instances(aws) == []

    # Without a zone, EC2 picks one that offers the type.
    (placed,) = aws.ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType=TYPE)["Instances"]
    assert placed["Placement"]["AvailabilityZone"] == TYPE_ZONES[0]
    assert placed["SubnetId"] == subnets[TYPE_ZONES[0]]


def test_launch_puts_the_vm_in_a_zone_that_offers_its_type(endpoint, aws, tmp_path, trn_quota):
    add_image(DEBIAN, "debian-12-amd64-20250101")
    subnets = default_subnets(aws)
    image = ("-e", f"image={DEBIAN}/debian-12-amd64-*")

    first = run_launch(endpoint, tmp_path / "keys", *image)
    assert first.returncode == 0, first.stdout[-3000:]
    (instance,) = instances(aws)
    assert instance["InstanceType"] == TYPE
    assert instance["Placement"]["AvailabilityZone"] == TYPE_ZONES[0]
    assert instance["SubnetId"] == subnets[TYPE_ZONES[0]]

    again = run_launch(endpoint, tmp_path / "keys", *image)
    assert again.returncode == 0, again.stdout[-3000:]
    assert changed(again) == 0, again.stdout[-3000:]
    assert [i["InstanceId"] for i in instances(aws)] == [instance["InstanceId"]]


def test_a_given_subnet_whose_zone_does_not_offer_the_type_fails_before_anything_is_made(
    aws, tmp_path, fault_proxy, trn_quota
):
    add_image(DEBIAN, "debian-12-amd64-20250101")
    subnet = default_subnets(aws)[f"{REGION}a"]
    key_dir = tmp_path / "keys"

    refused = run_launch(
        fault_proxy.endpoint,
        key_dir,
        "-e",
        f"image={DEBIAN}/debian-12-amd64-*",
        "-e",
        f"ec2_instance_subnet_id={subnet}",
    )
    assert refused.returncode != 0
    output = " ".join(refused.stdout.split())
    assert (
        f"Instance type {TYPE} (for jupyter-{OWNER}) is not offered in {REGION}a, the zone of subnet {subnet}; "
        f"{REGION} offers it in {', '.join(TYPE_ZONES)}: set ec2_instance_subnet_id to a subnet in one of those zones"
    ) in output, refused.stdout[-3000:]
    assert fault_proxy.count("DescribeInstanceTypeOfferings") == 1
    made = [call for call in fault_proxy.calls if not call.startswith(("Describe", "Get", "List"))]
    assert made == []
    assert not key_dir.exists(), "a private key was made"
    assert instances(aws) == []
    assert key_pairs(aws, [f"jupyter-{OWNER}"]) == {}
    vpc_id = aws.ec2.describe_subnets(SubnetIds=[subnet])["Subnets"][0]["VpcId"]
    assert groups(aws, vpc_id, [f"jupyter-{OWNER}"]) == {}
    assert aws.ec2.describe_addresses()["Addresses"] == []


def test_offerings_that_may_not_be_read_are_warned_about(run_module, aws, tmp_path, fault_proxy):
    image = add_image(DEBIAN, "debian-12-amd64-20250101")
    fault_proxy.fail("DescribeInstanceTypeOfferings", "UnauthorizedOperation", "You are not authorized.")
    owner = {
        "name": "jupyter-ada",
        "owner": "ada",
        "ssh_cidr": CIDR,
        "key_file": str(tmp_path / "jupyter-ada.pem"),
        "instance_type": "t3.micro",
        "image": image,
        "root_size": 8,
    }
    result = run_module("owner_access", {"launch": True, "owners": [owner]}, check=True, endpoint=fault_proxy.endpoint)
    assert result.get("failed") is not True, result.get("msg")
    assert [w for w in result["warnings"] if f"goes on in {REGION}a without checking that it offers t3.micro" in w]
    assert result["owners"][0]["subnet"]["subnet_id"] == default_subnets(aws)[f"{REGION}a"]
