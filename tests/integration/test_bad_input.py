"""Each kind of bad input fails before any cloud resource exists, with a message that says what to change."""

from __future__ import annotations

import re

import pytest

from tests.integration.conftest import Playbooks, nothing_owned, owned, remove_everything_of

pytestmark = [pytest.mark.localcloud]

CASES = {
    "invalid owner": ((), "Hedy_Lamarr", 'Invalid owner(s) ["Hedy_Lamarr"]'),
    "unknown instance type": (("-e", "ec2_instance_type=c5.lrage"), None, "Instance type c5.lrage does not exist"),
    "image that does not exist": (("-e", "image=ami-0123456789abcdef0"), None, "No image ami-0123456789abcdef0"),
    "image pattern that matches nothing": (
        ("-e", "image=136693071363/debian-13-*"),
        None,
        "No image 136693071363/debian-13-*",
    ),
    "region typo": (("-e", "region=us-wset-2"), None, "Region us-wset-2 does not exist or is not enabled"),
    "region that is not a region name": (("-e", "region=oregon"), None, "Region oregon is not a region name"),
    "ssh_cidr that is not a CIDR": (
        ("-e", "ssh_cidr=203.0.113.300/32"),
        None,
        "ssh_cidr '203.0.113.300/32' is not a CIDR",
    ),
    "ssh_cidr without a prefix length": (("-e", "ssh_cidr=203.0.113.7"), None, "ssh_cidr '203.0.113.7' is not a CIDR"),
    "open IPv4 CIDR without the override": (("-e", "ssh_cidr=0.0.0.0/0"), None, "opens SSH to the whole Internet"),
    "open IPv6 CIDR without the override": (("-e", "ssh_cidr=::/0"), None, "opens SSH to the whole Internet"),
    "range wider than a campus without the override": (
        ("-e", "ssh_cidr=169.254.1.1/32,10.0.0.0/8"),
        None,
        "ssh_cidr 10.0.0.0/8 admits more than a campus",
    ),
    "one of several sources not a CIDR": (
        ("-e", '{"ssh_cidr": ["169.254.1.1/32", "campus"]}'),
        None,
        "ssh_cidr 'campus' is not a CIDR",
    ),
    "root volume smaller than the image": (
        ("-e", "ec2_instance_root_size=4"),
        None,
        "Root volume of 4 GiB is smaller than the 8 GiB snapshot",
    ),
    "JupyterLab port a server without privileges cannot bind": (
        ("-e", "configure=true", "-e", "jupyter_service_port=80"),
        None,
        "jupyter_service_port must be between 1024 and 65535 (got 80)",
    ),
    "JupyterLab listening on every address without the override": (
        ("-e", "configure=true", "-e", "jupyter_service_ip=0.0.0.0"),
        None,
        "jupyter_service_ip 0.0.0.0 is not a loopback address",
    ),
    "tunnel that is not true or false": (
        ("-e", "configure=true", "-e", "tunnel=maybe"),
        None,
        'tunnel must be true or false (got "maybe")',
    ),
    "tunnel without JupyterLab": (
        ("-e", "tunnel=true"),  # the tests' launches default to configure=false
        None,
        "-e tunnel=true goes with configure=true",
    ),
    "subnet that does not exist": (
        ("-e", "ec2_instance_subnet_id=subnet-0123456789abcdef0"),
        None,
        "Subnet subnet-0123456789abcdef0 does not exist",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_before_anything_is_created(playbooks: Playbooks, case: str) -> None:
    extra, owner, message = CASES[case]
    owner = owner or playbooks.owner("bad")
    run = playbooks.run("launch.yml", "-e", f"owner={owner}", *extra)
    assert run.returncode != 0, run.tail()
    assert message in " ".join(run.output.split()), run.tail()
    assert nothing_owned(playbooks.cloud.client(), owner), owned(playbooks.cloud.client(), owner)
    assert not (playbooks.key_dir / f"jupyter-{owner}.pem").exists()


def test_missing_credentials_say_how_to_provide_them(playbooks: Playbooks, tmp_path) -> None:
    owner = playbooks.owner("nocreds")
    env = playbooks.env(
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        # botocore would otherwise ask the instance metadata service, which is not on this network.
        AWS_EC2_METADATA_DISABLED="true",
    )
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(variable, None)
    run = playbooks.run("launch.yml", "-e", f"owner={owner}", env=env)
    assert run.returncode != 0, run.tail()
    text = " ".join(run.output.split())
    assert "No usable AWS credentials" in text and "AWS_ACCESS_KEY_ID" in text and "AWS_PROFILE" in text, run.tail()
    assert nothing_owned(playbooks.cloud.client(), owner)


def test_open_cidr_with_the_override_warns(playbooks: Playbooks) -> None:
    owner = playbooks.owner("open")
    run = playbooks.ok(
        "launch.yml",
        "-e",
        f"owner={owner}",
        "-e",
        "ssh_cidr=0.0.0.0/0",
        "-e",
        "allow_ssh_from_anywhere=true",
        check=True,
    )
    assert "WARNING: SSH (22/tcp)" in " ".join(run.output.split()) and "the whole Internet" in run.output
    assert run.changed > 0
    assert nothing_owned(playbooks.cloud.client(), owner)


def test_foreign_key_pair_is_never_overwritten(playbooks: Playbooks) -> None:
    """A key pair of the owner's name that does not match the local key: refused, nothing created or replaced."""
    ec2 = playbooks.cloud.client()
    owner = playbooks.owner("clash")
    name = f"jupyter-{owner}"
    created = ec2.create_key_pair(
        KeyName=name,
        KeyType="ed25519",
        TagSpecifications=[{"ResourceType": "key-pair", "Tags": [{"Key": "Owner", "Value": owner}]}],
    )
    run = playbooks.run("launch.yml", "-e", f"owner={owner}")
    assert (
        run.returncode != 0
        and "its private key" in " ".join(run.output.split())
        and "is not on this machine" in run.output
    )
    playbooks.key_dir.mkdir(parents=True, exist_ok=True)
    other = playbooks.key_dir / f"{name}.pem"
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)], check=True)
    run = playbooks.run("launch.yml", "-e", f"owner={owner}")
    assert run.returncode != 0 and "does not match the private key" in " ".join(run.output.split()), run.tail()
    keys = ec2.describe_key_pairs(KeyNames=[name])["KeyPairs"]
    assert [k["KeyFingerprint"] for k in keys] == [created["KeyFingerprint"]]
    found = owned(ec2, owner)
    assert not found["instances"] and not found["security_groups"] and not found["addresses"], found


def test_a_class_beyond_the_elastic_ip_quota_launches_nothing(playbooks: Playbooks, tmp_path) -> None:
    """A roster needing more addresses than the account allows fails before any key pair, group, VM or
    address exists (a default account allows 5; the local cloud enforces the quota it reports)."""
    ec2 = playbooks.cloud.client()
    (attribute,) = ec2.describe_account_attributes(AttributeNames=["vpc-max-elastic-ips"])["AccountAttributes"]
    limit = int(attribute["AttributeValues"][0]["AttributeValue"])
    held = len(ec2.describe_addresses()["Addresses"])
    owners = [playbooks.owner("eip") for _ in range(limit - held + 1)]
    roster = tmp_path / "roster.yml"
    roster.write_text("---\nroster:\n" + "".join(f"  - {owner}\n" for owner in owners))
    run = playbooks.run("launch.yml", "-e", f"@{roster}")
    assert run.returncode != 0, run.tail()
    text = " ".join(run.output.split())
    assert f"Elastic IP quota: this launch needs {len(owners)} new address(es)" in text, run.tail()
    assert "L-0263D0A3" in text and "ec2_instance_elastic_ip=false" in text
    for owner in owners:
        assert nothing_owned(ec2, owner), owned(ec2, owner)
    assert not list(playbooks.key_dir.glob("*.pem"))


@pytest.mark.parametrize("configure", ["true", "false"])
def test_a_vm_that_never_lets_ssh_in_says_which_sources_its_group_admits(playbooks: Playbooks, configure: str) -> None:
    """This machine is not among the sources (a VPN, a changed address): the run says which are admitted and what
    to change, instead of a bare timeout, whether it waits to configure the VM or only for its SSH server; a re-run
    with this machine's address launches nothing more."""
    ec2 = playbooks.cloud.client()
    owner = playbooks.owner("away")
    try:
        run = playbooks.run(
            "launch.yml",
            "-e", f"owner={owner}",
            "-e", f"configure={configure}",
            "-e", "ssh_cidr=203.0.113.9/32",
            "-e", "ec2_instance_wait_timeout=15",
        )  # fmt: skip
        said = " ".join(run.output.split())
        assert run.returncode != 0, run.tail()
        assert "Its security group admits SSH only from 203.0.113.9/32." in said, run.tail()
        assert "-e ssh_cidr=<your address>/32" in said and "the VM is kept and not launched twice" in said
        # The output lists what ran, not the hosts each task skipped (the recap counts them).
        skipped = re.search(rf"^owner-{owner}\s*:.* skipped=(\d+)", run.stdout, re.M)
        assert skipped and int(skipped.group(1)) > 0 and "skipping: [" not in run.stdout, run.tail()
        (instance_id,) = owned(ec2, owner)["instances"]
        assert f"aws ec2 get-console-output --instance-id {instance_id}" in said
        # As the message says: again with this machine's address, the same VM answers.
        playbooks.ok("launch.yml", "-e", f"owner={owner}", "-e", "configure=false")
        assert owned(ec2, owner)["instances"] == [instance_id]
    finally:
        remove_everything_of(ec2, owner)
