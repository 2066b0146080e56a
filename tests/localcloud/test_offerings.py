"""Instance type offerings on the local cloud: RunInstances refuses a type in an Availability Zone that
does not offer it, with EC2's error, and agrees with DescribeInstanceTypeOfferings (moto's data).

In us-west-2, t2.micro is offered in us-west-2a, us-west-2b and us-west-2c, not in us-west-2d.
"""

from __future__ import annotations

from tests.localcloud_harness import Cloud


def test_a_type_is_refused_in_a_zone_that_does_not_offer_it(cloud: Cloud) -> None:
    ec2 = cloud.client()
    region = ec2.meta.region_name
    offerings = ec2.describe_instance_type_offerings(
        LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": ["t2.micro"]}]
    )["InstanceTypeOfferings"]
    offered = sorted(offering["Location"] for offering in offerings)
    subnets = {
        subnet["AvailabilityZone"]: subnet["SubnetId"]
        for subnet in ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
    }
    missing = sorted(zone for zone in subnets if zone not in offered)
    assert missing, f"every zone of {region} offers t2.micro: choose another type for this test"
    key_name, _ = cloud.key_pair(ec2)
    try:
        reservation = ec2.run_instances(
            ImageId=cloud.base_image(ec2)["ImageId"],
            InstanceType="t2.micro",
            MinCount=1,
            MaxCount=1,
            KeyName=key_name,
            SubnetId=subnets[missing[0]],
        )
    except ec2.exceptions.ClientError as exc:
        assert exc.response["Error"] == {
            "Code": "Unsupported",
            "Message": f"Your requested instance type (t2.micro) is not supported in your requested Availability "
            f"Zone ({missing[0]}). Please retry your request by not specifying an Availability Zone or choosing "
            f"{', '.join(offered)}.",
        }
    else:
        cloud.launched.append((ec2, reservation["Instances"][0]["InstanceId"]))
        raise AssertionError(f"RunInstances launched t2.micro in {missing[0]}")
