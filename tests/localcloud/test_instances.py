"""Instance life cycle on the local cloud: every state change has a real machine behind it."""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from tests.localcloud_harness import REPO, Cloud, ssh, wait_ssh


def boot_id(address: str, key) -> str:
    return ssh(address, key, "cat /proc/sys/kernel/random/boot_id").stdout.strip()


def test_run_instances_gives_a_machine_that_answers_ssh_with_the_key(cloud: Cloud) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    instance = cloud.launch(ec2, key_name=key_name, UserData="#!/bin/sh\necho from-user-data > /root/user-data-ran\n")
    address = instance["PublicIpAddress"]
    assert address.startswith("198.51.100."), "public addresses come from the local cloud's own pool"
    wait_ssh(address, key)
    state = ssh(address, key, "systemctl is-system-running --wait", check=False).stdout.strip()
    assert state == "running", ssh(address, key, "systemctl --failed", check=False).stdout
    assert ssh(address, key, "hostname").stdout.strip() == "ip-" + instance["PrivateIpAddress"].replace(".", "-")
    assert ssh(address, key, "sudo -n cat /root/user-data-ran").stdout.strip() == "from-user-data"
    assert ssh(address, key, "sudo -n id -u").stdout.strip() == "0", "the default user has passwordless sudo"
    _other_name, other_key = cloud.key_pair(ec2)
    assert ssh(address, other_key, "true", check=False).returncode != 0, "only the instance's own key pair logs in"


def test_stop_start_keeps_the_disk_and_changes_the_public_address(cloud: Cloud) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    instance = cloud.launch(ec2, key_name=key_name)
    first = instance["PublicIpAddress"]
    wait_ssh(first, key)
    ssh(first, key, "echo kept > ~/before-stop && sync")
    ec2.stop_instances(InstanceIds=[instance["InstanceId"]])
    assert cloud.describe(ec2, instance["InstanceId"])["State"]["Name"] in ("stopping", "stopped")
    stopped = cloud.wait_state(ec2, instance["InstanceId"], "stopped")
    assert "PublicIpAddress" not in stopped, "a stopped instance without an Elastic IP has no public address"
    assert ssh(first, key, "true", check=False, timeout=20).returncode != 0, "the machine is really off"
    ec2.start_instances(InstanceIds=[instance["InstanceId"]])
    started = cloud.wait_state(ec2, instance["InstanceId"], "running")
    second = started["PublicIpAddress"]
    assert second != first
    wait_ssh(second, key)
    assert ssh(second, key, "cat ~/before-stop").stdout.strip() == "kept"


def test_an_elastic_ip_survives_stop_start_and_answers_ssh(cloud: Cloud) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    instance = cloud.launch(ec2, key_name=key_name)
    allocation = ec2.allocate_address(Domain="vpc")
    try:
        ec2.associate_address(AllocationId=allocation["AllocationId"], InstanceId=instance["InstanceId"])
        assert cloud.describe(ec2, instance["InstanceId"])["PublicIpAddress"] == allocation["PublicIp"]
        wait_ssh(allocation["PublicIp"], key)
        ec2.stop_instances(InstanceIds=[instance["InstanceId"]])
        cloud.wait_state(ec2, instance["InstanceId"], "stopped")
        ec2.start_instances(InstanceIds=[instance["InstanceId"]])
        started = cloud.wait_state(ec2, instance["InstanceId"], "running")
        assert started["PublicIpAddress"] == allocation["PublicIp"]
        wait_ssh(allocation["PublicIp"], key)
    finally:
        cloud.cleanup()
        cloud.idle()
        ec2.release_address(AllocationId=allocation["AllocationId"])


def test_reboot_restarts_the_machine(cloud: Cloud) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    instance = cloud.launch(ec2, key_name=key_name)
    address = instance["PublicIpAddress"]
    wait_ssh(address, key)
    before = boot_id(address, key)
    ec2.reboot_instances(InstanceIds=[instance["InstanceId"]])
    deadline = time.monotonic() + 60
    after = before
    while after == before and time.monotonic() < deadline:
        time.sleep(0.5)
        result = ssh(address, key, "cat /proc/sys/kernel/random/boot_id", check=False, timeout=20)
        after = result.stdout.strip() or before
    assert after != before, "the machine booted again"
    assert cloud.describe(ec2, instance["InstanceId"])["State"]["Name"] == "running"


def test_terminate_deletes_the_disk(cloud: Cloud) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    instance = cloud.launch(ec2, key_name=key_name)
    root = instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    wait_ssh(instance["PublicIpAddress"], key)
    assert (cloud.settings.volumes / root).is_dir()
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    cloud.wait_state(ec2, instance["InstanceId"], "terminated")
    cloud.idle()
    assert not (cloud.settings.volumes / root).exists()
    assert not (cloud.settings.machines / instance["InstanceId"]).exists()
    assert instance["InstanceId"] not in {
        row["instance_id"] for row in cloud.status()["instances"] if row["machine"] == "running"
    }


HANG_AT_STOP_UNIT = """[Service]
ExecStart=/bin/sleep infinity
ExecStop=/bin/sleep 600
TimeoutStopSec=600
"""


def test_terminate_cuts_a_hung_shutdown_short(cloud: Cloud) -> None:
    """A terminated machine's disks are deleted: a shutdown that hangs does not hold the termination up."""
    from localcloud.host import machines

    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    instance = cloud.launch(ec2, key_name=key_name)
    address = instance["PublicIpAddress"]
    wait_ssh(address, key)
    ssh(address, key, f"printf '{HANG_AT_STOP_UNIT}' | sudo -n tee /etc/systemd/system/hang-at-stop.service")
    ssh(address, key, "sudo -n systemctl start hang-at-stop.service && systemctl is-active hang-at-stop.service")
    started = time.monotonic()
    ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    cloud.wait_state(ec2, instance["InstanceId"], "terminated", timeout=300)
    elapsed = time.monotonic() - started
    # The unit alone would hold an orderly shutdown for 10 minutes (and systemd's default 90 s
    # holds many a real one); a termination waits for it at most TERMINATE_TIMEOUT.
    assert elapsed < machines.TERMINATE_TIMEOUT + 30, f"terminating took {elapsed:.0f} s"
    assert elapsed >= machines.TERMINATE_TIMEOUT - 1, f"the shutdown was not waited for ({elapsed:.0f} s)"


def test_termination_protection_given_at_launch_is_kept(cloud: Cloud) -> None:
    ec2 = cloud.client()
    instance = cloud.launch(ec2, DisableApiTermination=True)
    try:
        ec2.terminate_instances(InstanceIds=[instance["InstanceId"]])
    except ec2.exceptions.ClientError as exc:
        assert "OperationNotPermitted" in str(exc)
    else:
        raise AssertionError("TerminateInstances succeeded on a protected instance")


def test_a_retried_run_instances_with_the_same_client_token_launches_one_instance(cloud: Cloud) -> None:
    ec2 = cloud.client()
    key_name, _ = cloud.key_pair(ec2)
    image = cloud.base_image(ec2)["ImageId"]
    token = f"token-{key_name}"
    first = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, KeyName=key_name, InstanceType="t3.micro", ClientToken=token
    )["Instances"][0]["InstanceId"]
    cloud.launched.append((ec2, first))
    second = ec2.run_instances(
        ImageId=image, MinCount=1, MaxCount=1, KeyName=key_name, InstanceType="t3.micro", ClientToken=token
    )["Instances"][0]["InstanceId"]
    assert first == second
    found = ec2.describe_instances(Filters=[{"Name": "key-name", "Values": [key_name]}])["Reservations"]
    assert sum(len(r["Instances"]) for r in found) == 1


def test_power_off_inside_shows_stopped_or_terminated_by_shutdown_behaviour(cloud: Cloud) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    stop_one = cloud.launch(ec2, key_name=key_name)
    gone_one = cloud.launch(ec2, key_name=key_name, InstanceInitiatedShutdownBehavior="terminate")
    for instance in (stop_one, gone_one):
        wait_ssh(instance["PublicIpAddress"], key)
        ssh(instance["PublicIpAddress"], key, "sudo -n systemd-run --on-active=1 /usr/bin/systemctl poweroff")
    stopped = cloud.wait_state(ec2, stop_one["InstanceId"], "stopped", timeout=120)
    assert stopped["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown"
    cloud.wait_state(ec2, gone_one["InstanceId"], "terminated", timeout=120)


def test_image_not_found_and_unknown_instance_type_are_refused(cloud: Cloud) -> None:
    ec2 = cloud.client()
    key_name, _ = cloud.key_pair(ec2)
    for kwargs, code in (
        ({"ImageId": "ami-0000000000000000f", "InstanceType": "t3.micro"}, "InvalidAMIID.NotFound"),
        ({"ImageId": cloud.base_image(ec2)["ImageId"], "InstanceType": "t3.mega"}, "InvalidInstanceType.NotFound"),
        (
            {
                "ImageId": cloud.base_image(ec2)["ImageId"],
                "InstanceType": "t3.micro",
                "BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 2}}],
            },
            "InvalidBlockDeviceMapping",
        ),
    ):
        try:
            reservation = ec2.run_instances(MinCount=1, MaxCount=1, KeyName=key_name, **kwargs)
        except ec2.exceptions.ClientError as exc:
            assert exc.response["Error"]["Code"] == code
        else:
            cloud.launched.append((ec2, reservation["Instances"][0]["InstanceId"]))
            raise AssertionError(f"RunInstances accepted {kwargs}")


def test_four_machines_run_at_once_without_interfering(cloud: Cloud) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        instances = list(pool.map(lambda _: cloud.launch(cloud.client(), key_name=key_name), range(4)))
    addresses = [i["PublicIpAddress"] for i in instances]
    assert len(set(addresses)) == 4
    for instance in instances:
        wait_ssh(instance["PublicIpAddress"], key)
    for instance in instances:
        reply = ssh(instance["PublicIpAddress"], key, "hostname; echo $(hostname) > ~/me; cat ~/me").stdout.split()
        assert reply[0] == reply[1] == "ip-" + instance["PrivateIpAddress"].replace(".", "-")


def test_a_region_that_does_not_exist_gets_an_ec2_error(cloud: Cloud) -> None:
    ec2 = boto3.client(
        "ec2",
        endpoint_url=cloud.env["AWS_ENDPOINT_URL"],
        region_name="us-wset-2",
        aws_access_key_id="localcloud",
        aws_secret_access_key="localcloud",
    )
    with pytest.raises(ec2.exceptions.ClientError) as error:
        ec2.describe_instances()
    assert error.value.response["Error"]["Code"] == "UnknownRegion"
    assert "us-wset-2" in error.value.response["Error"]["Message"]


def test_status_lists_the_instance_and_survives_a_reader_that_stops_early(cloud: Cloud) -> None:
    """`localcloud status | head -1` ends quietly; the full listing names a running instance."""
    instance = cloud.launch()
    listing = subprocess.run(
        [sys.executable, "-m", "localcloud", "status"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    row = next(line for line in listing.splitlines() if line.startswith(instance["InstanceId"]))
    assert " running " in row and instance["PublicIpAddress"] in row, row
    piped = subprocess.run(
        f"{sys.executable} -m localcloud status | head -c 1", shell=True, cwd=REPO, capture_output=True, text=True
    )
    assert piped.returncode == 0
    assert "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr, piped.stderr


def test_volumes_from_one_image_are_copy_on_write_and_separate(cloud: Cloud) -> None:
    """Two machines from one image: each root volume is a btrfs snapshot, and a write in one stays there."""
    from localcloud.host import disks

    if not disks.is_btrfs(cloud.settings.volumes):
        pytest.skip("skipped: the store is a plain directory here (no btrfs-progs, or mounting is not allowed)")
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    first, second = (cloud.launch(ec2, key_name=key_name) for _ in range(2))
    roots = [cloud.settings.volumes / i["BlockDeviceMappings"][0]["Ebs"]["VolumeId"] / "root" for i in (first, second)]
    assert all(disks.is_subvolume(root) for root in roots), "root volumes are btrfs snapshots of the image"
    for instance in (first, second):
        wait_ssh(instance["PublicIpAddress"], key)
    ssh(first["PublicIpAddress"], key, "echo only-here | sudo -n tee /etc/written-in-first")
    assert ssh(second["PublicIpAddress"], key, "test -e /etc/written-in-first", check=False).returncode == 1
    assert (roots[0] / "etc/written-in-first").read_text() == "only-here\n"
    assert not (roots[1] / "etc/written-in-first").exists()


def test_the_base_image_is_imported_into_the_store_once_for_every_region(cloud: Cloud) -> None:
    """The base image is in the store once (`up` queues the copy), and another region's image shares that copy."""
    from localcloud.host import disks

    if not disks.is_btrfs(cloud.settings.volumes):
        pytest.skip("skipped: the store is a plain directory here (no btrfs-progs, or mounting is not allowed)")
    imported = cloud.settings.store / "imported"

    def trees() -> list[str]:
        return sorted(p.name for p in imported.glob("*") if not p.name.endswith(".partial"))

    deadline = time.monotonic() + 120
    while not trees() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(trees()) == 1, f"expected the base image imported once, found {trees()}"
    assert disks.is_subvolume(imported / trees()[0])
    before = trees()
    west = boto3.client(
        "ec2",
        endpoint_url=cloud.env["AWS_ENDPOINT_URL"],
        region_name="us-west-2",
        aws_access_key_id=cloud.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=cloud.env["AWS_SECRET_ACCESS_KEY"],
    )
    instance = cloud.launch(west)
    root = cloud.settings.volumes / instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"] / "root"
    assert disks.is_subvolume(root), "the other region's root volume is a btrfs snapshot too"
    assert trees() == before, "another region's base image was imported again"


def test_the_store_is_nosuid_and_only_root_enters_the_state(cloud: Cloud) -> None:
    """Files a machine's root leaves on its disk are never setuid or devices on the host, and no
    other user of the host can reach them; inside the machine, setuid (sudo) still works."""
    home, store = cloud.settings.home, cloud.settings.store
    assert home.stat().st_mode & 0o777 == 0o700
    if store.is_mount():
        mounts = Path("/proc/self/mounts").read_text().splitlines()
        options = next(line.split()[3] for line in mounts if line.split()[1] == str(store))
        assert {"nosuid", "nodev"} <= set(options.split(",")), options
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    instance = cloud.launch(ec2, key_name=key_name)
    wait_ssh(instance["PublicIpAddress"], key)
    assert ssh(instance["PublicIpAddress"], key, "sudo -n id -u").stdout.strip() == "0"
