"""EBS volumes and instance-store disks appear inside machines the way they do on a Nitro instance."""

from __future__ import annotations

import time

from tests.localcloud_harness import Cloud, ssh, wait_ssh


def wait_volume(ec2, volume_id: str, state: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while ec2.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]["State"] != state:
        assert time.monotonic() < deadline, f"{volume_id} did not become {state}"
        time.sleep(0.2)


def wait_for(address: str, key, command: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        result = ssh(address, key, command, check=False)
        if result.returncode == 0:
            return result.stdout
        assert time.monotonic() < deadline, f"{command!r} kept failing: {result.stderr}"
        time.sleep(0.3)


def test_an_attached_volume_is_formatted_mounted_and_keeps_its_data(cloud: Cloud) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    instance = cloud.launch(ec2, key_name=key_name)
    address = instance["PublicIpAddress"]
    wait_ssh(address, key)
    volume = ec2.create_volume(AvailabilityZone=instance["Placement"]["AvailabilityZone"], Size=2, VolumeType="gp3")
    volume_id = volume["VolumeId"]
    try:
        ec2.attach_volume(VolumeId=volume_id, InstanceId=instance["InstanceId"], Device="/dev/sdf")
        by_id = f"/dev/disk/by-id/nvme-Amazon_Elastic_Block_Store_{volume_id.replace('-', '')}"
        node = wait_for(address, key, f"readlink -f {by_id}").strip()
        assert node == "/dev/nvme1n1"
        assert wait_for(address, key, "readlink -f /dev/sdf").strip() == node
        fstab_line = f"{by_id} /data ext4 defaults,nofail 0 2"
        ssh(
            address,
            key,
            f"sudo -n mkfs.ext4 -q {by_id} && sudo -n mkdir -p /data"
            f" && echo '{fstab_line}' | sudo -n tee -a /etc/fstab >/dev/null"
            " && sudo -n mount /data && echo precious | sudo -n tee /data/file >/dev/null && sync",
        )

        ec2.stop_instances(InstanceIds=[instance["InstanceId"]])
        cloud.wait_state(ec2, instance["InstanceId"], "stopped")
        ec2.start_instances(InstanceIds=[instance["InstanceId"]])
        address = cloud.wait_state(ec2, instance["InstanceId"], "running")["PublicIpAddress"]
        wait_ssh(address, key)
        assert wait_for(address, key, "cat /data/file").strip() == "precious", "fstab mounts come back at boot"

        ssh(address, key, "sudo -n umount /data")
        ec2.detach_volume(VolumeId=volume_id)
        wait_volume(ec2, volume_id, "available")
        cloud.idle()
        assert ssh(address, key, f"test -e {by_id}", check=False).returncode != 0, "the device went away"
        ec2.attach_volume(VolumeId=volume_id, InstanceId=instance["InstanceId"], Device="/dev/sdg")
        wait_for(address, key, f"test -b $(readlink -f {by_id})")
        assert wait_for(address, key, "readlink -f /dev/sdg").strip().startswith("/dev/nvme")
        # The fstab entry names the volume by ID, so it may already be mounted again.
        out = ssh(address, key, f"mountpoint -q /data || sudo -n mount {by_id} /data; cat /data/file").stdout.strip()
        assert out == "precious"
    finally:
        cloud.cleanup()
        cloud.idle()
        ec2.delete_volume(VolumeId=volume_id)
    cloud.idle()
    assert not (cloud.settings.volumes / volume_id).exists()


def test_instance_store_disks_exist_and_come_back_empty_after_stop_start(cloud: Cloud) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    instance = cloud.launch(ec2, key_name=key_name, InstanceType="m5ad.large")
    address = instance["PublicIpAddress"]
    wait_ssh(address, key)
    disks = ssh(address, key, "ls /dev/disk/by-id/ | grep Instance_Storage").stdout.split()
    assert len(disks) == 1, "m5ad.large has one instance-store disk"
    device = f"/dev/disk/by-id/{disks[0]}"
    ssh(
        address,
        key,
        f"sudo -n mkfs.ext4 -q {device} && sudo -n mkdir -p /scratch"
        f" && sudo -n mount {device} /scratch && echo temp | sudo -n tee /scratch/f >/dev/null && sync",
    )
    ec2.reboot_instances(InstanceIds=[instance["InstanceId"]])
    time.sleep(2)
    wait_ssh(address, key)
    ssh(address, key, f"sudo -n mount {device} /scratch && cat /scratch/f && sudo -n umount /scratch")
    ec2.stop_instances(InstanceIds=[instance["InstanceId"]])
    cloud.wait_state(ec2, instance["InstanceId"], "stopped")
    ec2.start_instances(InstanceIds=[instance["InstanceId"]])
    address = cloud.wait_state(ec2, instance["InstanceId"], "running")["PublicIpAddress"]
    wait_ssh(address, key)
    probe = ssh(address, key, f"sudo -n blkid {device}", check=False)
    assert probe.returncode != 0 and not probe.stdout.strip(), "the instance-store disk is blank after stop/start"
