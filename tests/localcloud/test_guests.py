"""What a machine finds around it, as on EC2: the metadata service, the API with its role's
credentials, S3, account quotas, and a first boot that is still busy when SSH answers."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.localcloud_harness import Cloud, ssh, unique, wait_ssh

TTL = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN = "X-aws-ec2-metadata-token"
IMDS = "http://169.254.169.254"


def imds(address: str, key, path: str, token: str | None = None) -> tuple[str, str]:
    """GET a metadata path from inside the machine; returns (HTTP status, body)."""
    header = f"-H '{TOKEN}: {token}'" if token else ""
    out = ssh(address, key, f"curl -s {header} -w '\\n%{{http_code}}' {IMDS}{path}").stdout
    body, _, status = out.rpartition("\n")
    return status, body


def imds_token(address: str, key, ttl: int = 300) -> str:
    return ssh(address, key, f"curl -s -X PUT -H '{TTL}: {ttl}' {IMDS}/latest/api/token").stdout


def role_profile(cloud: Cloud) -> str:
    """An instance profile whose role EC2 may assume (made once per test)."""
    iam = cloud.client("iam")
    name = unique("role")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    return name


def test_imdsv2_tokens_are_required_and_answers_follow_the_instance(cloud: Cloud) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    instance = cloud.launch(
        ec2,
        key_name=key_name,
        MetadataOptions={"HttpTokens": "required", "HttpEndpoint": "enabled", "InstanceMetadataTags": "enabled"},
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Course", "Value": "ocean-101"}]}],
    )
    instance_id, address = instance["InstanceId"], instance["PublicIpAddress"]
    wait_ssh(address, key)
    assert imds(address, key, "/latest/meta-data/instance-id")[0] == "401", "IMDSv1 is refused when tokens are required"
    assert imds(address, key, "/latest/meta-data/instance-id", token="forged")[0] == "401"
    bad_ttl = ssh(
        address, key, f"curl -s -o /dev/null -w '%{{http_code}}' -X PUT -H '{TTL}: 0' {IMDS}/latest/api/token"
    )
    assert bad_ttl.stdout == "400"
    proxied = ssh(
        address,
        key,
        f"curl -s -o /dev/null -w '%{{http_code}}' -X PUT -H '{TTL}: 60' -H 'X-Forwarded-For: 1.2.3.4' "
        f"{IMDS}/latest/api/token",
    )
    assert proxied.stdout == "403", "no token for a request that went through a proxy"
    token = imds_token(address, key)
    assert imds(address, key, "/latest/meta-data/instance-id", token) == ("200", instance_id)
    assert imds(address, key, "/latest/meta-data/instance-type", token) == ("200", "t3.micro")
    assert imds(address, key, "/latest/meta-data/ami-id", token) == ("200", instance["ImageId"])
    assert imds(address, key, "/latest/meta-data/local-ipv4", token) == ("200", instance["PrivateIpAddress"])
    assert imds(address, key, "/latest/meta-data/placement/region", token) == ("200", cloud.env["AWS_REGION"])
    zone = instance["Placement"]["AvailabilityZone"]
    assert imds(address, key, "/latest/meta-data/placement/availability-zone", token) == ("200", zone)
    assert imds(address, key, "/latest/meta-data/public-ipv4", token) == ("200", address)
    assert imds(address, key, "/latest/meta-data/tags/instance/Course", token) == ("200", "ocean-101")
    assert imds(address, key, "/latest/meta-data/public-keys/", token) == ("200", f"0={key_name}")
    openssh = imds(address, key, "/latest/meta-data/public-keys/0/openssh-key", token)[1]
    assert openssh.split()[0] == "ssh-ed25519"
    mac = imds(address, key, "/latest/meta-data/mac", token)[1]
    assert imds(address, key, f"/latest/meta-data/network/interfaces/macs/{mac}/vpc-id", token) == (
        "200",
        instance["VpcId"],
    )
    document = json.loads(imds(address, key, "/latest/dynamic/instance-identity/document", token)[1])
    assert document["instanceId"] == instance_id and document["region"] == cloud.env["AWS_REGION"]
    assert imds(address, key, "/latest/meta-data/iam/", token)[0] == "404", "no instance profile, no iam/"
    assert imds(address, key, "/latest/meta-data/nothing-here", token)[0] == "404"

    # An Elastic IP associated later shows at once; stop and start keep it.
    allocation = ec2.allocate_address(Domain="vpc")
    try:
        ec2.associate_address(AllocationId=allocation["AllocationId"], InstanceId=instance_id)
        eip = allocation["PublicIp"]
        wait_ssh(eip, key)
        assert imds(eip, key, "/latest/meta-data/public-ipv4", imds_token(eip, key)) == ("200", eip)
        ec2.stop_instances(InstanceIds=[instance_id])
        cloud.wait_state(ec2, instance_id, "stopped")
        ec2.start_instances(InstanceIds=[instance_id])
        cloud.wait_state(ec2, instance_id, "running")
        wait_ssh(eip, key)
        fresh = imds_token(eip, key)
        assert imds(eip, key, "/latest/meta-data/public-ipv4", fresh) == ("200", eip)
        assert imds(eip, key, "/latest/meta-data/instance-id", token)[0] == "401", "tokens die with the boot"
        # Tags off, and the endpoint off, take effect at once.
        ec2.modify_instance_metadata_options(InstanceId=instance_id, InstanceMetadataTags="disabled")
        assert imds(eip, key, "/latest/meta-data/tags/instance/Course", fresh)[0] == "404"
        ec2.modify_instance_metadata_options(InstanceId=instance_id, HttpEndpoint="disabled")
        assert imds(eip, key, "/latest/meta-data/instance-id", fresh)[0] == "403"
    finally:
        ec2.disassociate_address(PublicIp=allocation["PublicIp"])
        ec2.release_address(AllocationId=allocation["AllocationId"])


def test_imdsv1_is_answered_only_when_tokens_are_optional(cloud: Cloud) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    instance = cloud.launch(ec2, key_name=key_name, MetadataOptions={"HttpTokens": "optional"})
    wait_ssh(instance["PublicIpAddress"], key)
    assert imds(instance["PublicIpAddress"], key, "/latest/meta-data/instance-id") == ("200", instance["InstanceId"])


def test_the_instance_role_signs_api_calls_and_s3_copies_from_the_machine(cloud: Cloud) -> None:
    """The SDK and CLI on a machine need nothing but the system-wide endpoint: credentials come
    from the metadata service, as on EC2."""
    ec2 = cloud.client()
    s3 = cloud.client("s3")
    bucket = unique("data")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": cloud.env["AWS_REGION"]})
    s3.put_object(Bucket=bucket, Key="sst/2026-12.nc", Body=b"sea surface temperature")
    key_name, key = cloud.key_pair(ec2)
    profile = role_profile(cloud)
    instance = cloud.launch(
        ec2, key_name=key_name, IamInstanceProfile={"Name": profile}, MetadataOptions={"HttpTokens": "required"}
    )
    address = instance["PublicIpAddress"]
    wait_ssh(address, key)
    token = imds_token(address, key)
    roles = imds(address, key, "/latest/meta-data/iam/security-credentials/", token)
    assert roles == ("200", profile)
    credentials = json.loads(imds(address, key, f"/latest/meta-data/iam/security-credentials/{profile}", token)[1])
    assert credentials["Code"] == "Success" and credentials["AccessKeyId"] and credentials["Token"]
    again = json.loads(imds(address, key, f"/latest/meta-data/iam/security-credentials/{profile}", token)[1])
    assert again["AccessKeyId"] == credentials["AccessKeyId"], "the same credentials until they near expiry"
    # The credentials the machine got are the local cloud's own: they sign a call from here too.
    as_instance = boto3.client(
        "ec2",
        endpoint_url=cloud.env["AWS_ENDPOINT_URL"],
        region_name=cloud.env["AWS_REGION"],
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["Token"],
    )
    assert as_instance.describe_instances(InstanceIds=[instance["InstanceId"]])["Reservations"]
    # On the machine: the AWS CLI and boto3 from PyPI (SDKs that read AWS_ENDPOINT_URL, as the
    # research environment's do), with no configuration of their own.
    ssh(address, key, "cloud-init status --wait >/dev/null", timeout=300)
    ssh(
        address,
        key,
        "sudo DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq && "
        "sudo DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq python3-venv "
        ">/dev/null && python3 -m venv /tmp/sdk && "
        "PIP_CERT=/etc/ssl/certs/ca-certificates.crt /tmp/sdk/bin/pip install -q boto3 awscli",
        timeout=600,
    )
    # The region is the user's setting on EC2 too (boto3 does not ask the metadata service for it).
    region = imds(address, key, "/latest/meta-data/placement/region", token)[1]
    described = ssh(
        address,
        key,
        f"/tmp/sdk/bin/python -c \"import boto3; r = boto3.client('ec2', region_name='{region}').describe_instances("
        f"InstanceIds=['{instance['InstanceId']}']); print(r['Reservations'][0]['Instances'][0]['InstanceId'])\"",
    )
    assert described.stdout.strip() == instance["InstanceId"]
    copied = ssh(
        address,
        key,
        f"AWS_DEFAULT_REGION={region} /tmp/sdk/bin/aws s3 cp s3://{bucket}/sst/2026-12.nc /tmp/sst.nc"
        " && cat /tmp/sst.nc",
        check=False,
    )
    assert copied.stdout.strip().endswith("sea surface temperature"), copied.stderr
    ssh(
        address,
        key,
        f"echo result > /tmp/out.txt && AWS_DEFAULT_REGION={region} /tmp/sdk/bin/aws s3 cp /tmp/out.txt "
        f"s3://{bucket}/results/out.txt",
    )
    assert s3.get_object(Bucket=bucket, Key="results/out.txt")["Body"].read() == b"result\n"


def test_the_api_answers_only_what_is_signed_with_keys_it_issued(cloud: Cloud) -> None:
    endpoint, region = cloud.env["AWS_ENDPOINT_URL"], cloud.env["AWS_REGION"]

    def client(key: str, secret: str, token: str | None = None):
        return boto3.client(
            "ec2",
            endpoint_url=endpoint,
            region_name=region,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token,
        )

    for key, secret in (("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG"), (cloud.env["AWS_ACCESS_KEY_ID"], "wrong")):
        with pytest.raises(ClientError) as refused:
            client(key, secret).describe_instances()
        assert refused.value.response["Error"]["Code"] == "AuthFailure"
    with pytest.raises(urllib.error.HTTPError) as unsigned:
        urllib.request.urlopen(f"{endpoint}/?Action=DescribeRegions&Version=2016-11-15", timeout=10)
    assert unsigned.value.code == 403 and b"MissingAuthenticationToken" in unsigned.value.read()
    for private in ("/moto-api/reset", "/_localcloud/status"):
        with pytest.raises(urllib.error.HTTPError) as forbidden:
            urllib.request.urlopen(urllib.request.Request(f"{endpoint}{private}", method="POST"), timeout=10)
        assert forbidden.value.code == 403, private
    # Keys it issued: an IAM user's access key, and an assumed role's temporary keys.
    iam = cloud.client("iam")
    user = unique("user")
    iam.create_user(UserName=user)
    made = iam.create_access_key(UserName=user)["AccessKey"]
    assert client(made["AccessKeyId"], made["SecretAccessKey"]).describe_regions()["Regions"]
    assumed = cloud.client("sts").assume_role(RoleArn="arn:aws:iam::123456789012:role/any", RoleSessionName="test")
    keys = assumed["Credentials"]
    assert client(keys["AccessKeyId"], keys["SecretAccessKey"], keys["SessionToken"]).describe_regions()["Regions"]
    with pytest.raises(ClientError):
        client(keys["AccessKeyId"], keys["SecretAccessKey"], "not-the-session-token").describe_regions()
    mode = cloud.settings.credentials.stat().st_mode & 0o777
    assert mode == 0o600 and cloud.settings.home.stat().st_mode & 0o777 == 0o700


def test_elastic_ip_and_vcpu_quotas_are_enforced_and_reported(cloud: Cloud) -> None:
    ec2 = cloud.client()
    limit = int(
        ec2.describe_account_attributes(AttributeNames=["vpc-max-elastic-ips"])["AccountAttributes"][0][
            "AttributeValues"
        ][0]["AttributeValue"]
    )
    quotas = cloud.client("service-quotas")
    assert quotas.get_service_quota(ServiceCode="ec2", QuotaCode="L-0263D0A3")["Quota"]["Value"] == limit
    standard = int(quotas.get_service_quota(ServiceCode="ec2", QuotaCode="L-1216C47A")["Quota"]["Value"])
    gpus = int(quotas.get_service_quota(ServiceCode="ec2", QuotaCode="L-DB2E81BA")["Quota"]["Value"])
    defaults = {q["QuotaCode"]: q["Value"] for q in quotas.list_aws_default_service_quotas(ServiceCode="ec2")["Quotas"]}
    assert defaults["L-0263D0A3"] == 5 and defaults["L-1216C47A"] == 32 and defaults["L-DB2E81BA"] == 0
    held = len(ec2.describe_addresses()["Addresses"])
    allocated = []
    try:
        for _ in range(limit - held):
            allocated.append(ec2.allocate_address(Domain="vpc")["AllocationId"])
        with pytest.raises(ClientError) as refused:
            ec2.allocate_address(Domain="vpc")
        assert refused.value.response["Error"]["Code"] == "AddressLimitExceeded"
    finally:
        for allocation in allocated:
            ec2.release_address(AllocationId=allocation)
    image = cloud.base_image(ec2)["ImageId"]
    for instance_type, allowed in (("g4dn.xlarge", gpus), ("m5.24xlarge", standard)):
        with pytest.raises(ClientError) as refused:
            ec2.run_instances(ImageId=image, InstanceType=instance_type, MinCount=1, MaxCount=1)
        assert refused.value.response["Error"]["Code"] == "VcpuLimitExceeded"
        assert f"limit of {allowed} " in refused.value.response["Error"]["Message"]


def test_an_elastic_ip_waits_until_the_instance_is_no_longer_pending(cloud: Cloud) -> None:
    ec2 = cloud.client()
    instance_id = cloud.launch(ec2, wait=False)["InstanceId"]
    allocation = ec2.allocate_address(Domain="vpc")
    try:
        with pytest.raises(ClientError) as refused:
            ec2.associate_address(AllocationId=allocation["AllocationId"], InstanceId=instance_id)
        error = refused.value.response["Error"]
        assert error["Code"] == "InvalidInstanceID"
        assert f"The pending instance '{instance_id}' is not in a valid state" in error["Message"]
        cloud.wait_state(ec2, instance_id, "running")
        ec2.associate_address(AllocationId=allocation["AllocationId"], InstanceId=instance_id)
        assert cloud.describe(ec2, instance_id)["PublicIpAddress"] == allocation["PublicIp"]
    finally:
        cloud.cleanup()
        cloud.idle()
        ec2.release_address(AllocationId=allocation["AllocationId"])


def test_a_first_boot_is_busy_with_packages_until_cloud_init_says_done(cloud: Cloud) -> None:
    seconds = cloud.status()["settings"]["first_boot_seconds"]
    if seconds < 5:
        pytest.skip(f"the local cloud's first boot holds the package lock {seconds} s: too short to watch")
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    launched = time.monotonic()
    instance = cloud.launch(ec2, key_name=key_name)
    address = instance["PublicIpAddress"]
    wait_ssh(address, key)
    assert time.monotonic() - launched < seconds, "SSH answers while the first boot is still busy, as on AWS"
    assert ssh(address, key, "cloud-init status").stdout.strip() == "status: running"
    busy = ssh(address, key, "sudo apt-get -o DPkg::Lock::Timeout=0 install -y less 2>&1", check=False)
    assert busy.returncode != 0 and "Could not get lock /var/lib/dpkg/lock" in busy.stdout, busy.stdout
    waited = ssh(address, key, "cloud-init status --wait; echo rc=$?", timeout=seconds + 120).stdout
    assert waited.rstrip().endswith("status: done\nrc=0"), waited
    assert time.monotonic() - launched >= seconds - 1, "--wait returned before the job ended"
    assert ssh(address, key, "sudo apt-get -o DPkg::Lock::Timeout=0 install -y less >/dev/null 2>&1").returncode == 0
    # A reboot is not a first boot: it is done at once.
    ec2.reboot_instances(InstanceIds=[instance["InstanceId"]])
    time.sleep(3)
    wait_ssh(address, key, timeout=120)
    assert ssh(address, key, "timeout 20 cloud-init status --wait | tail -1").stdout.strip() == "status: done"
