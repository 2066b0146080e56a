"""labcloud.jupyter.elastic_ip's wait option against a moto server over HTTP, run through `ansible`.

moto's instances are running at once, so a pending instance is made by setting its state in moto's
in-process backend; the fault proxy's hook moves it on once the module has looked at it.
"""

from __future__ import annotations

import time

from owner_cloud import owner_tags, run_instance, set_instance_state
from test_elastic_ip import addresses, only_address

REASON = "Server.InternalError: Internal error on launch"


def test_wait_with_running_instances_check_real_check_real(run_module, aws):
    instances = {owner: run_instance(aws, owner_tags(owner)) for owner in ("alice", "bob")}
    args = {"wait": True, "addresses": [{"owner": owner, "instance_id": i} for owner, i in instances.items()]}

    predicted = run_module("elastic_ip", args, check=True)
    assert predicted["changed"] is True
    assert [result["instance_state"] for result in predicted["addresses"]] == ["running", "running"]
    assert addresses(aws.ec2) == []

    applied = run_module("elastic_ip", args)
    assert applied["changed"] is True
    for result in applied["addresses"]:
        assert result["instance_state"] == "running"
        assert not result["instance_state_reason"]
        assert only_address(aws.ec2, result["owner"])["InstanceId"] == instances[result["owner"]]

    for check in (True, False):
        again = run_module("elastic_ip", args, check=check)
        assert again["changed"] is False
        assert [result["instance_state"] for result in again["addresses"]] == ["running", "running"]


def test_waits_until_pending_instances_are_running(run_module, aws, fault_proxy):
    instances = {owner: run_instance(aws, owner_tags(owner)) for owner in ("alice", "bob")}
    for instance_id in instances.values():
        set_instance_state(instance_id, "pending")
    fault_proxy.after_call(
        "DescribeInstances", 1, lambda: [set_instance_state(i, "running") for i in instances.values()]
    )
    args = {
        "wait": True,
        "poll_interval": 1,
        "addresses": [{"owner": owner, "instance_id": i} for owner, i in instances.items()],
    }

    result = run_module("elastic_ip", args, endpoint=fault_proxy.endpoint)
    assert result.get("failed") is not True, result.get("msg")
    assert [entry["instance_state"] for entry in result["addresses"]] == ["running", "running"]
    for owner, instance_id in instances.items():
        assert only_address(aws.ec2, owner)["InstanceId"] == instance_id
    # One look at both instances while pending, one once running, then each owner's own.
    assert fault_proxy.count("DescribeInstances") == 2 + len(instances)


def test_check_mode_does_not_wait(run_module, aws, fault_proxy):
    instance_id = run_instance(aws, owner_tags("alice"))
    set_instance_state(instance_id, "pending")
    args = {"owner": "alice", "instance_id": instance_id, "wait": True, "wait_timeout": 120}

    started = time.monotonic()
    predicted = run_module("elastic_ip", args, check=True, endpoint=fault_proxy.endpoint)
    assert time.monotonic() - started < 60
    assert predicted["changed"] is True
    assert predicted["instance_state"] == "pending"
    assert fault_proxy.count("DescribeInstances") == 1
    assert addresses(aws.ec2) == []


def test_an_instance_that_ends_stopped_gets_its_address_and_says_why(run_module, aws, fault_proxy):
    instance_id = run_instance(aws, owner_tags("alice"))
    set_instance_state(instance_id, "pending")
    fault_proxy.after_call("DescribeInstances", 1, lambda: set_instance_state(instance_id, "stopped", REASON))
    args = {"owner": "alice", "instance_id": instance_id, "wait": True, "poll_interval": 1}

    result = run_module("elastic_ip", args, endpoint=fault_proxy.endpoint)
    assert result.get("failed") is not True, result.get("msg")
    assert (result["instance_state"], result["instance_state_reason"]) == ("stopped", REASON)
    assert only_address(aws.ec2, "alice")["InstanceId"] == instance_id


def test_an_instance_that_ends_terminated_fails_its_owner_only(run_module, aws, fault_proxy):
    alice, bob = run_instance(aws, owner_tags("alice")), run_instance(aws, owner_tags("bob"))
    set_instance_state(alice, "pending")
    fault_proxy.after_call("DescribeInstances", 1, lambda: set_instance_state(alice, "terminated", REASON))
    args = {
        "wait": True,
        "poll_interval": 1,
        "addresses": [{"owner": "alice", "instance_id": alice}, {"owner": "bob", "instance_id": bob}],
    }

    result = run_module("elastic_ip", args, endpoint=fault_proxy.endpoint)
    assert result["failed"] is True
    assert f"Instance {alice} is terminated ({REASON})" in result["msg"]
    assert "error" in result["addresses"][0]
    assert addresses(aws.ec2, "alice") == []
    assert only_address(aws.ec2, "bob")["InstanceId"] == bob


def test_an_instance_still_pending_after_wait_timeout_fails_its_owner(run_module, aws):
    instance_id = run_instance(aws, owner_tags("alice"))
    set_instance_state(instance_id, "pending")
    args = {"owner": "alice", "instance_id": instance_id, "wait": True, "wait_timeout": 2, "poll_interval": 1}

    result = run_module("elastic_ip", args)
    assert result["failed"] is True
    assert instance_id in result["msg"] and "pending" in result["msg"]
    assert addresses(aws.ec2) == []
