"""The run's region as AWS users set it, against the local cloud's EC2 API: `-e region=` wins over
AWS_REGION in lifecycle.yml and tunnel.yml; with neither AWS_REGION nor AWS_DEFAULT_REGION, the region
of the AWS profile (AWS_CONFIG_FILE, AWS_PROFILE) is used, as by the AWS CLI; with no region anywhere, a
run fails saying how to set one, before anything is created or changed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import boto3
from owner_cloud import REGION, instance_state, make_private_key, owner_tags, wait_for_state

from tests.modules.conftest import ACCOUNT_A_CREDENTIALS, REPO, module_env

PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
OWNER = "ada"
# A region other than the one the tests' environment sets in AWS_REGION and AWS_DEFAULT_REGION.
OTHER = "eu-west-1"
assert OTHER != REGION


def ec2(endpoint: str, region: str):
    """An EC2 client of account A in a region."""
    return boto3.client(
        "ec2",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=ACCOUNT_A_CREDENTIALS.access_key,
        aws_secret_access_key=ACCOUNT_A_CREDENTIALS.secret_key,
    )


def owners_instance(endpoint: str, region: str) -> str:
    """The owner's running instance, as launch.yml tags it, in a region."""
    client = ec2(endpoint, region)
    image_id = client.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    tags = [{"Key": k, "Value": v} for k, v in {**owner_tags(OWNER), "LoginUser": "admin"}.items()]
    instance_id = client.run_instances(
        ImageId=image_id, MinCount=1, MaxCount=1, InstanceType="t3.micro",
        TagSpecifications=[{"ResourceType": "instance", "Tags": tags}],
    )["Instances"][0]["InstanceId"]  # fmt: skip
    wait_for_state(Regional(client), instance_id, "running")
    return instance_id


class Regional:
    """The `aws` shape owner_cloud's helpers take, for one client."""

    def __init__(self, client):
        self.ec2 = client


def playbook(endpoint: str, home: Path, name: str, *extra: str, env: dict[str, str] | None = None, unset=()) -> str:
    """Run a playbook as a user does (HOME in home); return its output, asserting nothing about success."""
    environment = module_env(endpoint, {"HOME": str(home), **(env or {})})
    environment.pop("ANSIBLE_STDOUT_CALLBACK")
    for name_ in unset:
        environment.pop(name_)
    result = subprocess.run(
        [str(PLAYBOOK), f"playbooks/{name}", *extra],
        cwd=REPO, env=environment, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    return " ".join((result.stdout + result.stderr).split()) + f" rc={result.returncode}"


def profile_only(tmp_path: Path, region: str) -> dict[str, str]:
    """An environment whose only region is the default profile's in an AWS CLI config file."""
    config = tmp_path / "aws-config"
    config.write_text(f"[default]\nregion = {region}\n")
    return {"AWS_CONFIG_FILE": str(config)}


def test_lifecycle_looks_in_the_region_given_not_in_aws_region(endpoint, tmp_path):
    here = owners_instance(endpoint, REGION)

    elsewhere = playbook(endpoint, tmp_path, "lifecycle.yml", "-e", f"owner={OWNER}", "-e", "state=stopped",
                         "-e", f"region={OTHER}")  # fmt: skip
    assert f"No instance jupyter-{OWNER} in {OTHER}" in elsewhere
    assert elsewhere.endswith("rc=2")
    assert instance_state(Regional(ec2(endpoint, REGION)), here) == "running", "AWS_REGION's instance untouched"

    there = owners_instance(endpoint, OTHER)
    stopped = playbook(endpoint, tmp_path, "lifecycle.yml", "-e", f"owner={OWNER}", "-e", "state=stopped",
                       "-e", f"region={OTHER}")  # fmt: skip
    assert stopped.endswith("rc=0"), stopped[-3000:]
    assert instance_state(Regional(ec2(endpoint, OTHER)), there) == "stopped"
    assert instance_state(Regional(ec2(endpoint, REGION)), here) == "running"


def test_tunnel_looks_in_the_region_given_not_in_aws_region(endpoint, tmp_path):
    make_private_key(tmp_path / ".labcloud/keys" / f"jupyter-{OWNER}.pem")
    owners_instance(endpoint, REGION)

    elsewhere = playbook(endpoint, tmp_path, "tunnel.yml", "-e", f"owner={OWNER}", "-e", f"region={OTHER}", "--check")
    assert f"No running JupyterLab server for {OWNER}" in elsewhere
    assert elsewhere.endswith("rc=2")

    owners_instance(endpoint, OTHER)
    # Check mode: no machine answers behind the API alone, and nothing is sent to the instance's address.
    there = playbook(endpoint, tmp_path, "tunnel.yml", "-e", f"owner={OWNER}", "-e", f"region={OTHER}", "--check")
    assert there.endswith("rc=0"), there[-3000:]
    assert f"changed: [owner-{OWNER}]" in there.split("Set the tunnel to open")[1], "the tunnel would be opened"


def test_the_profile_region_is_used_without_aws_region(endpoint, tmp_path):
    there = owners_instance(endpoint, OTHER)
    here = owners_instance(endpoint, REGION)
    env = profile_only(tmp_path, OTHER)

    stopped = playbook(endpoint, tmp_path, "lifecycle.yml", "-e", f"owner={OWNER}", "-e", "state=stopped",
                       env=env, unset=("AWS_REGION", "AWS_DEFAULT_REGION"))  # fmt: skip
    assert stopped.endswith("rc=0"), stopped[-3000:]
    assert instance_state(Regional(ec2(endpoint, OTHER)), there) == "stopped"
    assert instance_state(Regional(ec2(endpoint, REGION)), here) == "running"

    cleaned = playbook(endpoint, tmp_path, "cleanup.yml", "-e", "stopped_days=0", env=env,
                       unset=("AWS_REGION", "AWS_DEFAULT_REGION"))  # fmt: skip
    assert cleaned.endswith("rc=0"), cleaned[-3000:]
    assert f"No zombie among the collection's resources in {OTHER}." in cleaned


def test_no_region_anywhere_fails_before_anything_changes(endpoint, tmp_path):
    there = owners_instance(endpoint, OTHER)
    unset = ("AWS_REGION", "AWS_DEFAULT_REGION")
    how = "give -e region=<region> (for example -e region=us-east-1), export AWS_REGION=<region>"

    stopped = playbook(endpoint, tmp_path, "lifecycle.yml", "-e", f"owner={OWNER}", "-e", "state=stopped", unset=unset)
    assert "No AWS region is set" in stopped and how in stopped, stopped[-3000:]
    assert stopped.endswith("rc=2")
    assert instance_state(Regional(ec2(endpoint, OTHER)), there) == "running"

    launched = playbook(endpoint, tmp_path, "launch.yml", "-e", "owner=grace", "-e", "ssh_cidr=203.0.113.7/32",
                        "-e", "configure=false", unset=unset)  # fmt: skip
    assert "No AWS region is set" in launched and how in launched, launched[-3000:]
    assert not (tmp_path / ".labcloud/keys/jupyter-grace.pem").exists(), "no key was made"
    for region in (REGION, OTHER):
        client = ec2(endpoint, region)
        assert not client.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["jupyter-grace"]}])["KeyPairs"]
        assert not [g for g in client.describe_security_groups()["SecurityGroups"] if g["GroupName"] == "jupyter-grace"]


def test_a_bad_region_is_named_with_where_it_came_from(endpoint, tmp_path):
    result = playbook(endpoint, tmp_path, "lifecycle.yml", "-e", f"owner={OWNER}", "-e", "state=stopped",
                      env={"AWS_REGION": "Frankfurt"})  # fmt: skip
    assert "Region Frankfurt is not a region name" in result, result[-3000:]
    assert "(It came from AWS_REGION.)" in result
    assert result.endswith("rc=2")
