"""playbooks/share.yml against the local cloud's EC2 API: the owner's newest image is found by its
tags, shared with accounts given as the tutorial gives them (12-digit IDs), exactly or not at all;
bad input stops the run before any change; an image on the AWS-managed key is shared through a
copy under the lab's key, with the accounts granted that key."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.modules.conftest import REPO, module_env
from tests.modules.test_ami_share import (
    ACCOUNT_B,
    ACCOUNT_C,
    EMPTY_LAUNCH,
    aws_managed_ebs_key,
    encrypt_image_snapshot,
    grants_on,
    state,
)

PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
OWNER = "hedylamarr"


def run_share(endpoint: str, *extra: str, playbook: str = "share.yml") -> subprocess.CompletedProcess:
    env = module_env(endpoint)
    # The playbook's output as a user reads it, with the collection's summary.
    env.pop("ANSIBLE_STDOUT_CALLBACK")
    return subprocess.run(
        [str(PLAYBOOK), f"playbooks/{playbook}", *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def changed(result: subprocess.CompletedProcess) -> int:
    return sum(int(n) for n in re.findall(r"changed=(\d+)", result.stdout))


def owners_image(aws: Any, name: str, version: str, **more: str) -> str:
    """An image as image.yml leaves it: named and tagged for the owner."""
    image_id = aws.ec2.register_image(Name=name, Description="JupyterLab image")["ImageId"]
    tags = {"Owner": OWNER, "ManagedBy": "labcloud.jupyter", "Project": "ocean", "Version": version, **more}
    aws.ec2.create_tags(Resources=[image_id], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
    return image_id


def test_the_owners_newest_image_is_shared_exactly_then_unshared(endpoint, aws):
    older = owners_image(aws, f"jupyter-{OWNER}-ocean-v1", "v1")
    newer = owners_image(aws, f"jupyter-{OWNER}-ocean-v2", "v2")
    # A copy made for sharing is not the owner's newest image.
    owners_image(aws, f"jupyter-{OWNER}-ocean-v2-shared", "v2", CopyOf=newer)

    shared = run_share(endpoint, "-e", f"owner={OWNER}", "-e", f"accounts={ACCOUNT_B},{ACCOUNT_C}")
    assert shared.returncode == 0, shared.stdout[-3000:]
    assert state(aws.ec2, newer)["launch"]["account_ids"] == [ACCOUNT_B, ACCOUNT_C]
    assert state(aws.ec2, newer)["snapshot"]["account_ids"] == [ACCOUNT_B, ACCOUNT_C], "they can copy it too"
    assert state(aws.ec2, older)["launch"] == EMPTY_LAUNCH
    assert f"{newer}: shared" in shared.stdout
    assert f"may launch it: {ACCOUNT_B}, {ACCOUNT_C}" in shared.stdout
    assert f"-e image={newer}" in shared.stdout

    again = run_share(endpoint, "-e", f"owner={OWNER}", "-e", f"accounts={ACCOUNT_B},{ACCOUNT_C}")
    assert again.returncode == 0 and changed(again) == 0, again.stdout[-3000:]
    assert f"{newer}: nothing to change" in again.stdout

    exact = run_share(
        endpoint, "-e", f"owner={OWNER}", "-e", "version=v2", "-e", f"accounts={ACCOUNT_B}", "-e", "purge=true"
    )
    assert exact.returncode == 0, exact.stdout[-3000:]
    assert state(aws.ec2, newer)["launch"]["account_ids"] == [ACCOUNT_B]
    assert state(aws.ec2, newer)["snapshot"]["account_ids"] == [ACCOUNT_B]

    removed = run_share(endpoint, "-e", f"image_id={newer}", "-e", f"accounts={ACCOUNT_B}", "-e", "state=absent")
    assert removed.returncode == 0, removed.stdout[-3000:]
    assert state(aws.ec2, newer)["launch"] == EMPTY_LAUNCH
    assert "may launch it: only this account" in removed.stdout

    # An image by its name, and an older version by its tag.
    named = run_share(endpoint, "-e", f"image_id=jupyter-{OWNER}-ocean-v2", "-e", f"accounts={ACCOUNT_C}")
    assert named.returncode == 0 and state(aws.ec2, newer)["launch"]["account_ids"] == [ACCOUNT_C]
    old = run_share(endpoint, "-e", f"owner={OWNER}", "-e", "version=v1", "-e", f"accounts={ACCOUNT_C}")
    assert old.returncode == 0 and state(aws.ec2, older)["launch"]["account_ids"] == [ACCOUNT_C]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["-e", f"owner={OWNER}", "-e", "accounts=12345"],
            'account_ids: "12345" has 5 digits, an AWS account ID has exactly 12',
        ),
        (["-e", f"owner={OWNER}"], "Give the accounts to share with"),
        (["-e", f"owner={OWNER}", "-e", "image_id=ami-0123456789abcdef0", "-e", f"accounts={ACCOUNT_B}"], "not both"),
        (["-e", "owner=Hedy", "-e", f"accounts={ACCOUNT_B}"], "Invalid owner 'Hedy'"),
        (["-e", "image_id=jupyter-nobody-v1", "-e", f"accounts={ACCOUNT_B}"], "is named jupyter-nobody-v1"),
        (
            ["-e", f"owner={OWNER}", "-e", f"accounts={ACCOUNT_B}", "-e", "state=shared"],
            "value of share_state must be one of: present, absent, got: shared",
        ),
        (
            ["-e", f"owner={OWNER}", "-e", "version=v9", "-e", f"accounts={ACCOUNT_B}"],
            "has no available image of version v9",
        ),
    ],
)
def test_bad_input_stops_before_any_change(endpoint, aws, extra, message):
    image = owners_image(aws, f"jupyter-{OWNER}-ocean-v1", "v1")
    result = run_share(endpoint, *extra)
    assert result.returncode != 0
    assert message in result.stdout, result.stdout[-3000:]
    assert state(aws.ec2, image)["launch"] == EMPTY_LAUNCH


def test_public_is_explicit_and_warned(endpoint, aws):
    image = owners_image(aws, f"jupyter-{OWNER}-ocean-v1", "v1")
    result = run_share(endpoint, "-e", f"image_id={image}", "-e", "public=true")
    assert result.returncode == 0, result.stdout[-3000:]
    assert "WARNING: public=true lets every AWS account launch" in result.stdout
    assert state(aws.ec2, image)["launch"]["public"] is True
    assert state(aws.ec2, image)["snapshot"]["public"] is False


def test_an_image_on_the_aws_managed_key_is_shared_through_a_copy_with_the_accounts_granted(endpoint, aws):
    image = owners_image(aws, f"jupyter-{OWNER}-ocean-v1", "v1")
    encrypt_image_snapshot(aws, image, aws_managed_ebs_key(aws))
    refused = run_share(endpoint, "-e", f"owner={OWNER}", "-e", f"accounts={ACCOUNT_B}")
    assert refused.returncode != 0 and "AWS-managed key" in refused.stdout, refused.stdout[-3000:]

    lab_key = aws.kms.create_key(Description="lab images")["KeyMetadata"]["Arn"]
    aws.kms.create_alias(AliasName="alias/lab-images", TargetKeyId=lab_key)
    shared = run_share(endpoint, "-e", f"owner={OWNER}", "-e", f"accounts={ACCOUNT_B}", "-e", "key=alias/lab-images")
    assert shared.returncode == 0, shared.stdout[-3000:]
    (copy,) = aws.ec2.describe_images(Owners=["self"], Filters=[{"Name": "tag:CopyOf", "Values": [image]}])["Images"]
    assert state(aws.ec2, copy["ImageId"])["launch"]["account_ids"] == [ACCOUNT_B]
    assert f"{copy['ImageId']} (the copy of {image} with the key alias/lab-images, made now)" in shared.stdout
    assert f"key grants (launching needs them): {ACCOUNT_B}" in shared.stdout
    assert f"arn:aws:iam::{ACCOUNT_B}:root" in grants_on(aws, lab_key)

    # The owner's newest image is still the one image.yml made; the run finds its copy again.
    again = run_share(endpoint, "-e", f"owner={OWNER}", "-e", f"accounts={ACCOUNT_B}", "-e", "key=alias/lab-images")
    assert again.returncode == 0 and changed(again) == 0, again.stdout[-3000:]
    assert "made earlier" in again.stdout


def test_image_yml_refuses_bad_accounts_before_it_looks_at_any_vm(endpoint, aws, fault_proxy):
    extra = ("-e", f"owner={OWNER}", "-e", "accounts=111122223333,0123")
    result = run_share(fault_proxy.endpoint, *extra, playbook="image.yml")
    assert result.returncode != 0
    assert 'account_ids: "0123" has 4 digits' in result.stdout, result.stdout[-3000:]
    assert fault_proxy.calls == [], "no AWS call was made"
