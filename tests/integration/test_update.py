"""The monthly update on the local cloud, as an admin runs it: three versions of an owner's image
exist (the oldest shared with another account); update.yml upgrades the VM's environment, restarts
JupyterLab and checks it, bakes today's version, keeps the two newest versions, removes the older
unshared one with its snapshots and keeps the shared one until force=true. Bad input stops the run
before anything changes; check mode tells what would be removed and changes nothing; the new
version is shared with another account, verified first; a second run the same day, with nothing
new to install, adopts today's image instead of making another and changes nothing on the VM.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.conftest import Playbooks
from tests.localcloud_harness import ssh

pytestmark = pytest.mark.slow

ENV = "/opt/jupyterlab/env"
UV = "/opt/jupyterlab/uv/bin/uv"
# An old release of a research package (research_packages_list), put back before the update.
OLD_UTM = "0.7.0"
OTHER_ACCOUNT = "111122223333"


@pytest.fixture
def lab_key() -> Iterator[Callable[[Playbooks, str], str]]:
    """Makes a customer-managed KMS key with an alias (images on it can be shared with another
    account); both are removed afterwards."""
    made: list[tuple[Any, str, str]] = []

    def make(playbooks: Playbooks, owner: str) -> str:
        kms = playbooks.cloud.client("kms")
        alias = f"alias/{owner}-images"
        key_id = kms.create_key(Description="lab images")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
        made.append((kms, alias, key_id))
        return alias

    yield make
    for kms, alias, key_id in made:
        kms.delete_alias(AliasName=alias)
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)


def tags(resource: dict) -> dict[str, str]:
    return {tag["Key"]: tag["Value"] for tag in resource.get("Tags", [])}


def images_of(ec2: Any, owner: str) -> dict[str, dict]:
    """The owner's images by their Version tag."""
    found = ec2.describe_images(Owners=["self"], Filters=[{"Name": "tag:Owner", "Values": [owner]}])["Images"]
    return {tags(image)["Version"]: image for image in found}


def snapshots_of(ec2: Any, owner: str) -> set[str]:
    return {
        snapshot["SnapshotId"]
        for snapshot in ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag:Owner", "Values": [owner]}])[
            "Snapshots"
        ]
    }


def snapshots_in(images: dict[str, dict]) -> set[str]:
    return {
        mapping["Ebs"]["SnapshotId"]
        for image in images.values()
        for mapping in image["BlockDeviceMappings"]
        if "Ebs" in mapping
    }


def running_vm(ec2: Any, owner: str) -> dict:
    reservations = ec2.describe_instances(
        Filters=[
            {"Name": "tag:Owner", "Values": [owner]},
            {"Name": "instance-state-name", "Values": ["running"]},
        ]
    )["Reservations"]
    (instance,) = [instance for reservation in reservations for instance in reservation["Instances"]]
    return instance


def utm_version(address: str, key: Any) -> str:
    """The version of utm in the JupyterLab environment."""
    probe = "import importlib.metadata as m; print(m.version('utm'))"
    return ssh(address, key, f'{ENV}/bin/python -c "{probe}"').stdout.strip()


def test_update_rebakes_keeps_two_versions_and_spares_the_shared_one(playbooks: Playbooks, lab_key: Any) -> None:
    ec2 = playbooks.cloud.client()
    owner = playbooks.owner("upd")
    key = playbooks.key_dir / f"jupyter-{owner}.pem"
    alias = lab_key(playbooks, owner)
    playbooks.ok(
        "launch.yml",
        "-e", f"owner={owner}",
        "-e", "configure=true",
        "-e", "ec2_instance_project=ocean",
        "-e", f"kms_key_id={alias}",
    )  # fmt: skip
    for version in ("v1", "v2", "v3"):
        playbooks.ok("image.yml", "-e", f"owner={owner}", "-e", f"version={version}")
    before = images_of(ec2, owner)
    assert sorted(before) == ["v1", "v2", "v3"]
    ec2.modify_image_attribute(ImageId=before["v1"]["ImageId"], LaunchPermission={"Add": [{"UserId": OTHER_ACCOUNT}]})
    name = f"jupyter-{owner}-ocean"

    # Bad input stops the run before anything is looked at on the VM or changed in the cloud.
    for bad, said in (("keep=0", 'got "0"'), ("keep=two", 'got "two"'), ("force=maybe", "force must be true or false")):
        refused = playbooks.run("update.yml", "-e", f"owner={owner}", "-e", bad)
        assert refused.returncode != 0 and said in refused.output, refused.tail()
        assert "Nothing was changed." in refused.output
        assert set(refused.recap) == {"localhost"}, refused.recap
    assert images_of(ec2, owner).keys() == before.keys()

    # An old release of a research package, as a month-old environment has.
    vm = running_vm(ec2, owner)
    address = vm["PublicIpAddress"]
    ssh(
        address,
        key,
        f'sudo -u "$(stat -c %U {ENV})" -H env UV_NO_PROGRESS=1 {UV} pip install --system-certs '
        f"--python {ENV}/bin/python utm=={OLD_UTM}",
    )
    assert utm_version(address, key) == OLD_UTM

    # Check mode says what would be upgraded and removed, and changes nothing.
    predicted = playbooks.run("update.yml", "-e", f"owner={owner}", "-e", "keep=2", check=True)
    assert predicted.returncode == 0, predicted.tail()
    assert predicted.changed > 0
    assert f"  would remove {name}-v2: {before['v2']['ImageId']}," in predicted.stdout, predicted.tail()
    assert f"  kept {name}-v1 ({before['v1']['ImageId']}): older, but shared with {OTHER_ACCOUNT}" in predicted.stdout
    assert images_of(ec2, owner).keys() == before.keys()
    assert utm_version(address, key) == OLD_UTM

    # The update: the environment is upgraded, JupyterLab restarted and checked, today's version
    # baked; v3 and today's are kept, v2 goes with its snapshots, v1 is shared and stays.
    today = datetime.datetime.now().strftime("%Y-%m-%d")
    # The new version is shared with another account, so it is verified first (image.yml's default).
    playbooks.owners.append(f"{owner[:25]}-verify")
    updated = playbooks.ok("update.yml", "-e", f"owner={owner}", "-e", "keep=2", "-e", f"accounts={OTHER_ACCOUNT}")
    out = updated.stdout
    upgraded = re.search(rf"^jupyter-{owner}: updated: system packages .*, environment upgraded: (.*)$", out, re.M)
    assert upgraded, updated.tail()
    assert "utm==" in upgraded.group(1) and f"utm=={OLD_UTM}" not in upgraded.group(1)
    assert re.search(r"^  jupyterlab active since .+, answered /api/status with HTTP 200$", out, re.M), out[-3000:]
    made = re.search(rf"^{name}-{today}: (ami-[0-9a-f]+) \(new, from {vm['InstanceId']}\)$", out, re.M)
    assert made, out[-3000:]
    assert f"{name}: kept the 2 newest version(s): {name}-{today}, {name}-v3" in out
    assert re.search(
        rf"^  removed {name}-v2: {before['v2']['ImageId']}, snapshots snap-[0-9a-f]+ \([0-9]+ GiB\)$", out, re.M
    ), out[-3000:]
    assert (
        f"  kept {name}-v1 ({before['v1']['ImageId']}): older, but shared with {OTHER_ACCOUNT}; "
        "force=true removes it" in out
    )
    saved = re.search(r"^  storage saved: ([0-9]+) GiB of snapshots, ([0-9.]+) USD/month at most", out, re.M)
    assert saved and int(saved.group(1)) > 0 and float(saved.group(2)) > 0, out[-3000:]
    after = images_of(ec2, owner)
    assert sorted(after) == sorted(["v1", "v3", today])
    assert after[today]["ImageId"] == made.group(1)
    assert f"{name}-{today}: verified:" in out, out[-3000:]
    assert tags(after[today])["Verified"] == "passed"
    assert f"  may launch it: {OTHER_ACCOUNT}" in out, out[-3000:]
    permissions = ec2.describe_image_attribute(ImageId=made.group(1), Attribute="launchPermission")
    assert permissions["LaunchPermissions"] == [{"UserId": OTHER_ACCOUNT}]
    assert not snapshots_in({"v2": before["v2"]}) & snapshots_of(ec2, owner), "v2's snapshots are deleted"
    assert snapshots_of(ec2, owner) == snapshots_in(after), "no snapshot without its image"
    vm = running_vm(ec2, owner)
    assert utm_version(vm["PublicIpAddress"], key) != OLD_UTM
    assert ssh(vm["PublicIpAddress"], key, "systemctl is-active jupyterlab").stdout.strip() == "active"

    # With force, the shared version goes too. Nothing was upgraded since this morning's image, so
    # that image is adopted, not made again.
    forced = playbooks.ok("update.yml", "-e", f"owner={owner}", "-e", "keep=2", "-e", "force=true")
    out = forced.stdout
    assert re.search(rf"^jupyter-{owner}: updated: system packages up to date, environment up to date$", out, re.M), (
        forced.tail()
    )
    assert f"{name}-{today}: {made.group(1)} (it existed: adopted, nothing was made)" in out, forced.tail()
    # Nothing changed on the VM: the two upgrades (JupyterLab's, the research packages') agree.
    assert forced.recap[f"jupyter-{owner}"]["changed"] == 0, out[-4000:]
    assert re.search(rf"^  removed {name}-v1: {before['v1']['ImageId']}, snapshots snap-", out, re.M), out[-3000:]
    final = images_of(ec2, owner)
    assert sorted(final) == sorted(["v3", today])
    assert snapshots_of(ec2, owner) == snapshots_in(final), "no snapshot without its image"

    # The cost report asks the VM's JupyterLab how it is: it answers; once its service is stopped, the
    # report says so.
    reports = playbooks.key_dir.parent / "reports"
    vm = running_vm(ec2, owner)
    for expected in (r"jupyterlab active since [^|]+, answered /api/status with HTTP 200", r"jupyterlab inactive"):
        playbooks.ok("report.yml", "-e", f"owner={owner}", "-e", f"report_dir={reports}", "-e", "prices=bundled")
        (report,) = reports.glob("cost-*.md")
        row = [line for line in report.read_text().splitlines() if vm["InstanceId"] in line]
        assert row and re.search(expected, row[0]), row or report.read_text()[-2000:]
        ssh(vm["PublicIpAddress"], key, "sudo systemctl stop jupyterlab")
