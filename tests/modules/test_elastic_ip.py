"""labcloud.jupyter.elastic_ip against a moto server over HTTP, run through `ansible`.

The state is checked with boto3 describe calls on the same endpoint after each run.
"""

from __future__ import annotations

from typing import Any

import pytest

MISSING_INSTANCE = "i-0123456789abcdef0"


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    """Return an EC2 resource's Tags list as a dict."""
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags") or []}


def addresses(ec2, owner: str | None = None) -> list[dict[str, Any]]:
    """Return every address of the account, or those whose Owner tag is `owner`."""
    found = ec2.describe_addresses()["Addresses"]
    return [a for a in found if owner is None or tags_of(a).get("Owner") == owner]


def only_address(ec2, owner: str) -> dict[str, Any]:
    """Return the one address tagged for `owner`, failing if there are more or none."""
    found = addresses(ec2, owner)
    assert len(found) == 1, found
    return found[0]


def test_present_check_real_check_real(run_module, aws, launch):
    instance = launch("alice")
    args = {"owner": "alice", "instance_id": instance, "tags": {"Project": "ocean-models"}}

    predicted = run_module("elastic_ip", args, check=True, diff=True)
    assert predicted["changed"] is True
    assert predicted["allocated"] is True
    assert predicted["allocation_id"] is None
    assert predicted["instance_id"] == instance
    assert predicted["diff"]["before"]["allocation_id"] is None
    assert predicted["diff"]["after"]["instance_id"] == instance
    assert addresses(aws.ec2) == [], "check mode allocated an address"

    applied = run_module("elastic_ip", args, diff=True)
    assert applied["changed"] is True
    assert applied["allocated"] is True
    address = only_address(aws.ec2, "alice")
    assert tags_of(address) == {"Name": "jupyter-alice", "Owner": "alice", "Project": "ocean-models"}
    assert address["Domain"] == "vpc"
    assert address["InstanceId"] == instance
    assert applied["allocation_id"] == address["AllocationId"]
    assert applied["public_ip"] == address["PublicIp"]
    assert applied["association_id"] == address["AssociationId"]
    assert applied["instance_id"] == instance
    assert applied["diff"]["after"]["public_ip"] == address["PublicIp"]

    again_predicted = run_module("elastic_ip", args, check=True)
    assert again_predicted["changed"] is False
    assert again_predicted["allocation_id"] == address["AllocationId"]
    assert again_predicted["association_id"] == address["AssociationId"]

    again = run_module("elastic_ip", args)
    assert again["changed"] is False
    assert again["allocated"] is False
    assert only_address(aws.ec2, "alice") == address


def test_absent_check_real_check_real(run_module, aws, launch):
    instance = launch("alice")
    created = run_module("elastic_ip", {"owner": "alice", "instance_id": instance})
    assert created["changed"] is True
    args = {"owner": "alice", "state": "absent"}

    predicted = run_module("elastic_ip", args, check=True, diff=True)
    assert predicted["changed"] is True
    assert predicted["released"] == [
        {
            "allocation_id": created["allocation_id"],
            "public_ip": created["public_ip"],
            "instance_id": instance,
        }
    ]
    assert predicted["diff"]["before"]["allocation_id"] == created["allocation_id"]
    assert only_address(aws.ec2, "alice")["InstanceId"] == instance, "check mode released the address"

    applied = run_module("elastic_ip", args)
    assert applied["changed"] is True
    assert applied["allocation_id"] == created["allocation_id"]
    assert applied["instance_id"] is None
    assert addresses(aws.ec2) == []

    assert run_module("elastic_ip", args, check=True)["changed"] is False
    again = run_module("elastic_ip", args)
    assert again["changed"] is False
    assert again["released"] == []


def test_tags_are_added_to_an_existing_address_without_reallocating(run_module, aws, launch):
    instance = launch("alice")
    first = run_module("elastic_ip", {"owner": "alice", "instance_id": instance})
    args = {"owner": "alice", "instance_id": instance, "tags": {"Project": "ocean-models"}}

    predicted = run_module("elastic_ip", args, check=True)
    assert predicted["changed"] is True
    assert "Project" not in tags_of(only_address(aws.ec2, "alice"))

    applied = run_module("elastic_ip", args)
    assert applied["changed"] is True
    assert applied["allocated"] is False
    address = only_address(aws.ec2, "alice")
    assert address["AllocationId"] == first["allocation_id"]
    assert tags_of(address)["Project"] == "ocean-models"
    assert run_module("elastic_ip", args)["changed"] is False


def test_two_owners_never_share_or_steal(run_module, aws, launch):
    alice_vm, bob_vm = launch("alice"), launch("bob")
    # Idle addresses an unscoped reuse would happily take: one untagged, one of a look-alike owner.
    untagged = aws.ec2.allocate_address(Domain="vpc")["AllocationId"]
    lookalike = aws.ec2.allocate_address(
        Domain="vpc",
        TagSpecifications=[
            {
                "ResourceType": "elastic-ip",
                "Tags": [{"Key": "Owner", "Value": "alice2"}, {"Key": "Name", "Value": "jupyter-alice"}],
            }
        ],
    )["AllocationId"]

    alice = run_module("elastic_ip", {"owner": "alice", "instance_id": alice_vm})
    bob = run_module("elastic_ip", {"owner": "bob", "instance_id": bob_vm, "allow_reassociation": True})
    assert alice["changed"] and bob["changed"]
    assert len({alice["allocation_id"], bob["allocation_id"], untagged, lookalike}) == 4
    by_id = {a["AllocationId"]: a for a in addresses(aws.ec2)}
    assert by_id[alice["allocation_id"]]["InstanceId"] == alice_vm
    assert by_id[bob["allocation_id"]]["InstanceId"] == bob_vm
    assert not by_id[untagged].get("AssociationId"), "an untagged address was adopted"
    assert not by_id[lookalike].get("AssociationId"), "another owner's address was adopted"
    assert tags_of(by_id[untagged]) == {}

    # Bob cannot put his address on Alice's VM, even when moving is allowed.
    refused = run_module("elastic_ip", {"owner": "bob", "instance_id": alice_vm, "allow_reassociation": True})
    assert refused["failed"] is True
    assert f"Instance {alice_vm} belongs to owner alice" in refused["msg"]

    # Re-runs for both change nothing, and Bob's release leaves Alice's address where it is.
    assert run_module("elastic_ip", {"owner": "alice", "instance_id": alice_vm})["changed"] is False
    assert run_module("elastic_ip", {"owner": "bob", "instance_id": bob_vm})["changed"] is False
    released = run_module("elastic_ip", {"owner": "bob", "state": "absent"})
    assert [r["allocation_id"] for r in released["released"]] == [bob["allocation_id"]]
    assert {a["AllocationId"] for a in addresses(aws.ec2)} == {alice["allocation_id"], untagged, lookalike}
    assert only_address(aws.ec2, "alice")["InstanceId"] == alice_vm


def test_moving_to_another_instance_is_explicit_and_reported(run_module, aws, launch):
    first_vm, second_vm = launch("alice"), launch("alice")
    created = run_module("elastic_ip", {"owner": "alice", "instance_id": first_vm})

    refused = run_module("elastic_ip", {"owner": "alice", "instance_id": second_vm})
    assert refused["failed"] is True
    assert f"is associated with {first_vm}; set allow_reassociation: true to move it to {second_vm}" in refused["msg"]
    assert only_address(aws.ec2, "alice")["InstanceId"] == first_vm

    args = {"owner": "alice", "instance_id": second_vm, "allow_reassociation": True}
    predicted = run_module("elastic_ip", args, check=True, diff=True)
    assert predicted["changed"] is True
    assert predicted["moved_from"] == first_vm
    assert predicted["diff"]["before"]["instance_id"] == first_vm
    assert predicted["diff"]["after"]["instance_id"] == second_vm
    assert only_address(aws.ec2, "alice")["InstanceId"] == first_vm, "check mode moved the address"

    moved = run_module("elastic_ip", args)
    assert moved["changed"] is True
    assert moved["moved_from"] == first_vm
    address = only_address(aws.ec2, "alice")
    assert address["InstanceId"] == second_vm
    assert address["AllocationId"] == created["allocation_id"]
    assert moved["association_id"] == address["AssociationId"]

    assert run_module("elastic_ip", args, check=True)["changed"] is False
    again = run_module("elastic_ip", args)
    assert again["changed"] is False
    assert again["moved_from"] is None


def test_instance_holding_a_foreign_address_is_left_alone(run_module, aws, launch):
    instance = launch("alice")
    foreign = aws.ec2.allocate_address(Domain="vpc")
    aws.ec2.associate_address(AllocationId=foreign["AllocationId"], InstanceId=instance)

    refused = run_module("elastic_ip", {"owner": "alice", "instance_id": instance})
    assert refused["failed"] is True
    assert f"Instance {instance} already holds another Elastic IP: {foreign['PublicIp']}" in refused["msg"]
    assert [a["AllocationId"] for a in addresses(aws.ec2)] == [foreign["AllocationId"]]


def test_missing_instance_fails_before_allocating(run_module, aws, fault_proxy):
    result = run_module(
        "elastic_ip", {"owner": "alice", "instance_id": MISSING_INSTANCE}, endpoint=fault_proxy.endpoint
    )
    assert result["failed"] is True
    assert f"Instance {MISSING_INSTANCE} does not exist; no address was allocated" in result["msg"]
    assert fault_proxy.count("AllocateAddress") == 0
    assert addresses(aws.ec2) == []


def test_failed_association_releases_the_address_it_allocated(run_module, aws, launch, fault_proxy):
    instance = launch("alice")
    # The instance vanishes between the module's check and the association.
    fault_proxy.fail("AssociateAddress", "InvalidInstanceID.NotFound", f"The instance ID '{instance}' does not exist")

    result = run_module("elastic_ip", {"owner": "alice", "instance_id": instance}, endpoint=fault_proxy.endpoint)
    assert result["failed"] is True
    assert fault_proxy.injected == ["AssociateAddress"]
    assert fault_proxy.count("AllocateAddress") == 1
    assert fault_proxy.count("ReleaseAddress") == 1
    assert "Could not associate" in result["msg"]
    assert f"with {instance}" in result["msg"]
    assert "released" in result["msg"]
    assert "so no unassociated address is left" in result["msg"]
    assert "InvalidInstanceID.NotFound" in result["msg"]
    unassociated = [a for a in addresses(aws.ec2) if not a.get("AssociationId")]
    assert unassociated == []
    assert addresses(aws.ec2) == []


def test_failed_release_is_reported_and_the_next_run_converges(run_module, aws, launch, fault_proxy):
    instance = launch("alice")
    fault_proxy.fail("AssociateAddress", "InvalidInstanceID.NotFound", f"The instance ID '{instance}' does not exist")
    fault_proxy.fail("ReleaseAddress", "UnauthorizedOperation", "You are not authorized to perform this operation.")

    result = run_module("elastic_ip", {"owner": "alice", "instance_id": instance}, endpoint=fault_proxy.endpoint)
    assert result["failed"] is True
    leftover = only_address(aws.ec2, "alice")
    assert (
        f"{leftover['PublicIp']} ({leftover['AllocationId']}) this run allocated could not be released" in result["msg"]
    )
    assert "release it by hand" in result["msg"]

    # The leftover carries the owner's tags from allocation, so the next run finds and uses it.
    converged = run_module("elastic_ip", {"owner": "alice", "instance_id": instance})
    assert converged["changed"] is True
    assert converged["allocated"] is False
    assert converged["allocation_id"] == leftover["AllocationId"]
    assert only_address(aws.ec2, "alice")["InstanceId"] == instance


def test_throttling_on_describe_and_associate_is_retried(run_module, aws, launch, fault_proxy):
    instance = launch("alice")
    fault_proxy.fail("DescribeAddresses", "RequestLimitExceeded", "Request limit exceeded.", times=2, status=503)
    fault_proxy.fail("AssociateAddress", "Throttling", "Rate exceeded", times=2)

    # botocore retries throttling itself; one attempt per call leaves the retries to the module.
    result = run_module(
        "elastic_ip",
        {"owner": "alice", "instance_id": instance},
        endpoint=fault_proxy.endpoint,
        env={"AWS_MAX_ATTEMPTS": "1"},
    )
    assert result.get("failed") is not True, result.get("msg")
    assert result["changed"] is True
    assert fault_proxy.injected.count("DescribeAddresses") == 2
    assert fault_proxy.injected.count("AssociateAddress") == 2
    assert fault_proxy.count("AssociateAddress") == 3
    assert fault_proxy.count("AllocateAddress") == 1
    address = only_address(aws.ec2, "alice")
    assert address["InstanceId"] == instance
    assert result["association_id"] == address["AssociationId"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"owner": "ali*", "instance_id": MISSING_INSTANCE}, 'owner: "ali*" contains "*"'),
        (
            {"owner": "alice", "name": "jupyter-?", "instance_id": MISSING_INSTANCE},
            'name: "jupyter-?" contains "?"',
        ),
        (
            {"owner": "alice", "instance_id": MISSING_INSTANCE, "tags": {"Owner": "bob"}},
            'tags: "Owner" is set by the owner option and cannot be "bob"',
        ),
        ({"owner": " ", "instance_id": MISSING_INSTANCE}, "owner must not be empty"),
        ({"owner": "alice"}, "instance_id is required when state is present"),
    ],
)
def test_bad_input_is_refused_before_any_api_call(run_module, fault_proxy, args, message):
    result = run_module("elastic_ip", args, endpoint=fault_proxy.endpoint)
    assert result["failed"] is True
    assert message in result["msg"]
    assert fault_proxy.calls == []


def test_addresses_of_a_roster_in_one_run(run_module, aws, launch, fault_proxy):
    alice, bob = launch("alice"), launch("bob")
    args = {
        "addresses": [
            {"owner": "alice", "instance_id": alice, "tags": {"Course": "cs101"}},
            {"owner": "bob", "instance_id": bob},
        ]
    }

    predicted = run_module("elastic_ip", args, check=True, diff=True)
    assert predicted["changed"] is True
    assert [(r["owner"], r["name"], r["allocated"]) for r in predicted["addresses"]] == [
        ("alice", "jupyter-alice", True),
        ("bob", "jupyter-bob", True),
    ]
    assert predicted["diff"]["after"]["jupyter-bob"]["instance_id"] == bob
    assert addresses(aws.ec2) == [], "check mode allocated an address"

    applied = run_module("elastic_ip", args)
    assert applied["changed"] is True
    for result, owner, instance in zip(applied["addresses"], ("alice", "bob"), (alice, bob), strict=True):
        address = only_address(aws.ec2, owner)
        assert address["InstanceId"] == instance
        assert result["public_ip"] == address["PublicIp"] and result["allocated"] is True
    assert tags_of(only_address(aws.ec2, "alice")) == {"Name": "jupyter-alice", "Owner": "alice", "Course": "cs101"}
    assert only_address(aws.ec2, "alice")["PublicIp"] != only_address(aws.ec2, "bob")["PublicIp"]

    again = run_module("elastic_ip", args, endpoint=fault_proxy.endpoint)
    assert again["changed"] is False
    assert [r["changed"] for r in again["addresses"]] == [False, False]
    assert not [call for call in fault_proxy.calls if not call.startswith("Describe")], fault_proxy.calls

    released = run_module("elastic_ip", {"state": "absent", "addresses": [{"owner": "alice"}, {"owner": "bob"}]})
    assert released["changed"] is True
    assert [len(r["released"]) for r in released["addresses"]] == [1, 1]
    assert addresses(aws.ec2) == []


def test_a_failing_owner_of_a_roster_leaves_the_others_done(run_module, aws, launch):
    alice, bobs_instance = launch("alice"), launch("bob")
    # carol asks for bob's instance: refused, and alice still gets her address.
    args = {"addresses": [{"owner": "alice", "instance_id": alice}, {"owner": "carol", "instance_id": bobs_instance}]}

    result = run_module("elastic_ip", args)
    assert result["failed"] is True
    assert result["changed"] is True
    assert "carol" in result["msg"] and bobs_instance in result["msg"]
    carol = result["addresses"][1]
    assert carol["owner"] == "carol" and carol["changed"] is False and bobs_instance in carol["error"]
    assert only_address(aws.ec2, "alice")["InstanceId"] == alice
    assert addresses(aws.ec2, "carol") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            {"owner": "alice", "addresses": [{"owner": "bob", "instance_id": MISSING_INSTANCE}]},
            "parameters are mutually exclusive: addresses|owner",
        ),
        ({"addresses": [{"owner": "bob"}]}, "instance_id is required when state is present"),
        (
            {"addresses": [{"owner": "bob", "instance_id": "i-1"}, {"owner": "bob", "instance_id": "i-2"}]},
            "jupyter-bob is given more than once in addresses",
        ),
        ({"addresses": [{"owner": "b*", "instance_id": "i-1"}, {"owner": "c"}]}, 'owner b*: owner: "b*" contains "*"'),
    ],
)
def test_bad_roster_input_is_refused_before_any_api_call(run_module, fault_proxy, args, message):
    result = run_module("elastic_ip", args, endpoint=fault_proxy.endpoint)
    assert result["failed"] is True
    assert message in result["msg"]
    assert fault_proxy.calls == []
