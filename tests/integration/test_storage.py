"""Role storage through launch.yml, on one local-cloud VM with two EBS data volumes and an instance-store disk.

launch.yml creates the data volumes it is asked for (gp3, encrypted, tagged, kept on termination),
configure.yml formats them only when blank, mounts them by UUID with nofail, and makes the instance
store ready at every boot; data survives stop/start, the instance store comes back empty but mounted
with its README, second runs change nothing, a volume holding data is never reformatted, and bad
input fails with its message and changes nothing.
"""

from __future__ import annotations

import json

import pytest

from tests.integration.conftest import Playbooks, nothing_owned, owned
from tests.localcloud_harness import ssh

pytestmark = [pytest.mark.localcloud, pytest.mark.slow]

# c5d.large: one 50 GB instance-store disk (moto's INSTANCE_TYPES, which the local cloud follows).
INSTANCE_TYPE = "c5d.large"
DATA_VOLUMES = [
    {"size": 2, "mount_point": "/data"},
    {"size": 1, "mount_point": "/archive", "fstype": "xfs", "mode": "0750"},
    {"instance_store": "all", "mount_point": "/scratch"},
]


def extra(variables: dict) -> list[str]:
    return ["-e", json.dumps(variables)]


def test_bad_data_volumes_are_refused_before_anything_is_launched(playbooks: Playbooks) -> None:
    ec2 = playbooks.cloud.client()
    owner = playbooks.owner("stbad")
    for volumes, message in [
        ([{"size": 1, "mount_point": "/etc"}], "mount_point /etc is a system directory"),
        ([{"size": 1, "mount_point": "/d"}, {"size": 1, "mount_point": "/d"}], "mount_point /d is also volume 1's"),
        ([{"size": 1, "mount_point": "/d", "fstype": "ntfs"}], "fstype must be one of ext4, xfs"),
    ]:
        refused = playbooks.run(
            "launch.yml", "-e", f"owner={owner}", "-e", "configure=true", *extra({"data_volumes": volumes})
        )
        assert refused.returncode != 0 and message in refused.output, refused.tail()
        assert nothing_owned(ec2, owner), owned(ec2, owner)
    refused = playbooks.run(
        "launch.yml", "-e", f"owner={owner}", "-e", "configure=true",
        *extra({"storage_volumes": [{"volume_id": "vol-0123456789abcdef0", "mount_point": "/"}]}),
    )  # fmt: skip
    assert refused.returncode != 0 and "mount_point / is a system directory" in refused.output, refused.tail()
    assert nothing_owned(ec2, owner), owned(ec2, owner)


def test_data_volumes_and_instance_store_through_their_life(playbooks: Playbooks) -> None:
    ec2 = playbooks.cloud.client()
    owner = playbooks.owner("stor")
    name = f"jupyter-{owner}"
    key = playbooks.key_dir / f"{name}.pem"
    launch = ["-e", f"owner={owner}", "-e", f"ec2_instance_type={INSTANCE_TYPE}", "-e", "configure=true"]
    launch += extra({"data_volumes": DATA_VOLUMES})

    launched = playbooks.ok("launch.yml", *launch)
    [instance_id] = owned(ec2, owner)["instances"]
    instance = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
    address = instance["PublicIpAddress"]
    mappings = {m["DeviceName"]: m["Ebs"] for m in instance["BlockDeviceMappings"]}
    data_ids = [mappings["/dev/sdf"]["VolumeId"], mappings["/dev/sdg"]["VolumeId"]]
    assert not mappings["/dev/sdf"]["DeleteOnTermination"] and not mappings["/dev/sdg"]["DeleteOnTermination"]
    volumes = {v["VolumeId"]: v for v in ec2.describe_volumes(VolumeIds=data_ids)["Volumes"]}
    assert [(volumes[i]["Size"], volumes[i]["VolumeType"], volumes[i]["Encrypted"]) for i in data_ids] == [
        (2, "gp3", True),
        (1, "gp3", True),
    ]
    for volume in volumes.values():
        tags = {t["Key"]: t["Value"] for t in volume["Tags"]}
        assert tags["Owner"] == owner and tags["ManagedBy"] == "labcloud.jupyter" and tags["Name"] == name
    # The summary names each volume with its free space.
    for mount_point, what in (("/data", data_ids[0]), ("/archive", data_ids[1]), ("/scratch", "instance store")):
        assert f"{name}: {mount_point} " in launched.stdout and f"({what}" in launched.stdout, launched.tail()
    assert " free of " in launched.stdout

    # Formatted, mounted by UUID with nofail, owned as asked; the instance store with its README.
    mounts = ssh(address, key, "findmnt -rn -o TARGET,FSTYPE -T /data; findmnt -rn -o TARGET,FSTYPE -T /archive").stdout
    assert mounts.split("\n")[:2] == ["/data ext4", "/archive xfs"]
    fstab = ssh(address, key, "cat /etc/fstab").stdout
    for mount_point, fstype in (("/data", "ext4"), ("/archive", "xfs")):
        uuid = ssh(
            address, key, f"sudo -n blkid -p -s UUID -o value $(findmnt -rn -o SOURCE -T {mount_point})"
        ).stdout.strip()
        assert uuid
        assert f"UUID={uuid} {mount_point} {fstype} defaults,nofail 0 2" in fstab.splitlines()
    assert "/scratch" not in fstab, "the instance store is mounted by its boot-time unit, not fstab"
    assert ssh(address, key, "stat -c %a /archive").stdout.strip() == "750"
    assert "LOST" in ssh(address, key, "cat /scratch/README").stdout
    ssh(
        address,
        key,
        "echo precious | sudo -n tee /data/kept >/dev/null && echo gone | sudo -n tee /scratch/t >/dev/null && sync",
    )

    # A second launch makes no second volume and changes nothing on the VM; the data is still there.
    again = playbooks.ok("launch.yml", *launch)
    assert again.recap[name]["changed"] == 0, again.tail()
    assert sorted(owned(ec2, owner)["volumes"]) == sorted([*data_ids, mappings["/dev/xvda"]["VolumeId"]])
    assert ssh(address, key, "cat /data/kept").stdout.strip() == "precious"

    # Data survives stop/start; the instance store comes back blank, formatted and mounted again at boot.
    playbooks.ok("lifecycle.yml", "-e", f"owner={owner}", "-e", "state=stopped")
    playbooks.ok("lifecycle.yml", "-e", f"owner={owner}", "-e", "state=running")
    assert ssh(address, key, "cat /data/kept").stdout.strip() == "precious"
    scratch = ssh(address, key, "findmnt -rn -o FSTYPE -T /scratch; sudo -n ls /scratch").stdout.split()
    assert scratch == ["ext4", "README", "lost+found"], scratch
    assert "formatted and mounted" in ssh(address, key, "sudo -n journalctl -b -u labcloud-instance-store").stdout
    after_restart = playbooks.ok("launch.yml", *launch)
    assert after_restart.recap[name]["changed"] == 0, after_restart.tail()

    # Bad input on the VM fails with its message and changes nothing.
    before = ssh(address, key, "md5sum /etc/fstab; findmnt -rn -o TARGET,SOURCE,FSTYPE | sort").stdout
    for volumes, message in [
        ([{"volume_id": "vol-0123456789abcdef0", "mount_point": "/more"}], "vol-0123456789abcdef0 is not attached"),
        ([{"volume_id": data_ids[1], "mount_point": "/archive"}], "holds a xfs file system, not ext4"),
        ([{"device_name": "/dev/sdf", "mount_point": "/elsewhere"}], "is mounted at /data already"),
        ([{"volume_id": data_ids[0], "mount_point": "/data"}, {"instance_store": 1, "mount_point": "/s1"}],
         "no instance-store disk 1"),
    ]:  # fmt: skip
        refused = playbooks.run("launch.yml", *launch, *extra({"storage_volumes": volumes}))
        assert refused.returncode != 0 and message in refused.output, refused.tail()
        assert "Nothing was changed" in refused.output
    assert ssh(address, key, "md5sum /etc/fstab; findmnt -rn -o TARGET,SOURCE,FSTYPE | sort").stdout == before
    assert ssh(address, key, "test ! -e /more && test ! -e /elsewhere && test ! -e /s1", check=False).returncode == 0

    # Termination keeps the data volumes (and says so); cleanup.yml reports them.
    terminated = playbooks.ok("lifecycle.yml", "-e", f"owner={owner}", "-e", "state=terminated", "-e", "force=true")
    assert f"volume {data_ids[0]}, {data_ids[1]} KEPT" in terminated.stdout, terminated.tail()
    left = {v["VolumeId"]: v["State"] for v in ec2.describe_volumes(VolumeIds=data_ids)["Volumes"]}
    assert left == dict.fromkeys(data_ids, "available")
    listed = playbooks.ok("cleanup.yml")
    assert data_ids[0] in listed.stdout and data_ids[1] in listed.stdout, listed.tail()
