"""ModifyInstanceAttribute on the local cloud's API as EC2 answers it: the shutdown behaviour
changes in both of the SDKs' forms, and a value EC2 does not know is refused."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from owner_cloud import owner_tags, run_instance


def behaviour(aws, instance_id: str) -> str:
    answer = aws.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="instanceInitiatedShutdownBehavior")
    return answer["InstanceInitiatedShutdownBehavior"]["Value"]


def test_the_shutdown_behaviour_changes_in_both_forms(aws) -> None:
    instance_id = run_instance(aws, owner_tags("ada"))
    assert behaviour(aws, instance_id) == "stop"
    modify = aws.ec2.modify_instance_attribute
    modify(InstanceId=instance_id, InstanceInitiatedShutdownBehavior={"Value": "terminate"})
    assert behaviour(aws, instance_id) == "terminate"
    aws.ec2.modify_instance_attribute(
        InstanceId=instance_id, Attribute="instanceInitiatedShutdownBehavior", Value="stop"
    )
    assert behaviour(aws, instance_id) == "stop"
    # Other attributes still take moto's path.
    modify(InstanceId=instance_id, DisableApiTermination={"Value": True})
    termination = aws.ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="disableApiTermination")
    assert termination["DisableApiTermination"]["Value"] is True


def test_an_unknown_shutdown_behaviour_is_refused(aws) -> None:
    instance_id = run_instance(aws, owner_tags("ada"))
    with pytest.raises(ClientError) as refused:
        aws.ec2.modify_instance_attribute(
            InstanceId=instance_id, InstanceInitiatedShutdownBehavior={"Value": "hibernate"}
        )
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert behaviour(aws, instance_id) == "stop"
