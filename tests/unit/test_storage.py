"""The disks of a VM: the storage filters, the device finding of labcloud.jupyter.block_devices, and the
boot-time program of the role storage that makes instance-store disks ready."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.labcloud.jupyter.plugins.filter.storage import FilterModule
from ansible_collections.labcloud.jupyter.plugins.modules import block_devices

FILTERS = FilterModule().filters()
problems = FILTERS["storage_problems"]
device_problems = FILTERS["storage_device_problems"]
mappings = FILTERS["data_volume_mappings"]
mounts = FILTERS["data_volume_mounts"]

SCRIPT = Path(__file__).resolve().parents[2] / "roles/storage/files/usr/local/lib/labcloud/instance_store.py"
spec = importlib.util.spec_from_file_location("instance_store", SCRIPT)
instance_store = importlib.util.module_from_spec(spec)
sys.modules["instance_store"] = instance_store
spec.loader.exec_module(instance_store)

VOL = "vol-0123456789abcdef0"


class TestStorageProblems:
    def test_good_volumes_have_none(self):
        assert problems([]) == []
        assert (
            problems(
                [
                    {"volume_id": VOL, "mount_point": "/data"},
                    {"device_name": "/dev/sdg", "mount_point": "/data/more", "fstype": "xfs", "mode": "0750"},
                    {"instance_store": "all", "mount_point": "/scratch", "options": "defaults,noatime"},
                    {"volume_id": "vol-0123abcd", "mount_point": "/srv/lab", "owner": "jupyter", "group": "jupyter"},
                ]
            )
            == []
        )

    @pytest.mark.parametrize(
        "mount_point",
        ["/", "/etc", "/usr", "/boot", "/var", "/home", "/tmp", "/etc/x", "/usr/local", "/proc/1", "/run/x"],
    )
    def test_system_directories_are_refused(self, mount_point):
        [problem] = problems([{"volume_id": VOL, "mount_point": mount_point}])
        assert "system directory" in problem and mount_point in problem

    @pytest.mark.parametrize("mount_point", ["data", "/data/", "/data/../etc", "//data", "/my data", None])
    def test_mount_points_must_be_plain_absolute_paths(self, mount_point):
        assert problems([{"volume_id": VOL, "mount_point": mount_point}])

    def test_home_itself_is_refused_but_a_directory_in_it_is_not(self):
        assert problems([{"volume_id": VOL, "mount_point": "/home"}])
        assert problems([{"volume_id": VOL, "mount_point": "/home/data"}]) == []

    def test_duplicate_mount_points_and_volumes(self):
        found = problems(
            [{"volume_id": VOL, "mount_point": "/data"}, {"device_name": "/dev/sdf", "mount_point": "/data"}]
        )
        assert found == ["volume 2: mount_point /data is also volume 1's"]
        found = problems([{"volume_id": VOL, "mount_point": "/a"}, {"volume_id": VOL, "mount_point": "/b"}])
        assert found == [f"volume 2: volume_id {VOL} is also volume 1's"]
        assert problems([{"instance_store": "all", "mount_point": "/a"}, {"instance_store": 0, "mount_point": "/b"}])

    @pytest.mark.parametrize(
        "volume,words",
        [
            ({"mount_point": "/data"}, "exactly one of"),
            ({"volume_id": VOL, "device_name": "/dev/sdf", "mount_point": "/data"}, "exactly one of"),
            ({"volume_id": "vol-xyz", "mount_point": "/data"}, "volume_id must look like"),
            ({"device_name": "/dev/nvme1n1", "mount_point": "/data"}, "device_name must be"),
            ({"instance_store": "some", "mount_point": "/data"}, "instance_store must be all"),
            ({"instance_store": True, "mount_point": "/data"}, "instance_store must be all"),
            ({"volume_id": VOL, "mount_point": "/data", "fstype": "ntfs"}, "fstype must be one of ext4, xfs"),
            ({"volume_id": VOL, "mount_point": "/data", "mode": "rwx"}, "mode must be octal"),
            ({"volume_id": VOL, "mount_point": "/data", "options": "defaults, noatime"}, "options must be"),
            ({"volume_id": VOL, "mount_point": "/data", "owner": "Bad User"}, "owner must be"),
        ],
    )
    def test_bad_volumes(self, volume, words):
        [problem] = problems([volume])
        assert problem.startswith("volume 1: ") and words in problem

    def test_not_a_list(self):
        assert problems({"volume_id": VOL}) == [f"storage_volumes must be a list, not {{'volume_id': '{VOL}'}}"]
        assert problems(["x"]) == ["volume 1: must be a dictionary, not 'x'"]


def found(**kwargs):
    device = {
        "index": 0,
        "kind": "ebs",
        "volume_id": VOL,
        "device_name": "",
        "disk": None,
        "mount_point": "/data",
        "device": "/dev/nvme1n1",
        "fstype": "",
        "uuid": "",
        "mounted_at": [],
        "mount_point_taken": False,
    }
    device.update(kwargs)
    return device


ENTRIES = [{"volume_id": VOL, "mount_point": "/data", "fstype": "ext4"}]


class TestStorageDeviceProblems:
    def test_blank_and_mounted_devices_are_fine(self):
        assert device_problems([found()], ENTRIES) == []
        assert device_problems([found(fstype="ext4", uuid="u", mounted_at=["/data"])], ENTRIES) == []

    def test_a_volume_not_attached(self):
        assert device_problems([found(device="")], ENTRIES) == [f"/data: volume {VOL} is not attached to this VM"]
        entries = [{"device_name": "/dev/sdf", "mount_point": "/data", "fstype": "ext4"}]
        assert device_problems([found(device="", volume_id="", device_name="/dev/sdf")], entries) == [
            "/data: the volume attached as /dev/sdf is not attached to this VM"
        ]

    def test_no_instance_store(self):
        entries = [{"instance_store": "all", "mount_point": "/scratch", "fstype": "ext4"}]
        assert device_problems([found(kind="instance_store", disk=0, device="", mount_point="/scratch")], entries) == [
            "/scratch: this instance has no instance-store disk (see its type)"
        ]
        entries = [{"instance_store": "2", "mount_point": "/scratch", "fstype": "ext4"}]
        assert device_problems([found(kind="instance_store", disk=2, device="", mount_point="/scratch")], entries) == [
            "/scratch: this instance has no instance-store disk 2 (see its type)"
        ]

    def test_another_file_system_is_never_reformatted(self):
        [problem] = device_problems([found(fstype="xfs", uuid="u")], ENTRIES)
        assert "holds a xfs file system, not ext4" in problem and "never reformatted" in problem

    def test_taken_mount_point_elsewhere_mounted_and_twice_the_same_device(self):
        assert device_problems([found(mount_point_taken=True)], ENTRIES) == ["/data: another device is mounted there"]
        [problem] = device_problems([found(fstype="ext4", mounted_at=["/mnt"])], ENTRIES)
        assert "is mounted at /mnt already" in problem
        entries = [*ENTRIES, {"device_name": "/dev/sdf", "mount_point": "/other", "fstype": "ext4"}]
        two = [found(), found(index=1, volume_id="", device_name="/dev/sdf", mount_point="/other")]
        assert device_problems(two, entries) == [
            "/other: the volume attached as /dev/sdf is the device of /data too (/dev/nvme1n1)"
        ]


class TestDataVolumes:
    VOLUMES = (
        {"size": 20, "mount_point": "/data"},
        {"size": "5", "mount_point": "/data2", "type": "io2", "delete_on_termination": True, "fstype": "xfs"},
        {"instance_store": "all", "mount_point": "/scratch"},
    )

    def test_mappings_are_gp3_and_kept_at_termination_by_default(self):
        assert mappings(self.VOLUMES) == [
            {"device_name": "/dev/sdf", "size": 20, "type": "gp3", "delete_on_termination": False},
            {"device_name": "/dev/sdg", "size": 5, "type": "io2", "delete_on_termination": True},
        ]
        assert mappings(None) == [] and mappings([]) == []

    def test_device_names_given_are_kept_and_not_given_twice(self):
        volumes = [{"size": 1, "mount_point": "/a"}, {"size": 1, "mount_point": "/b", "device_name": "/dev/sdf"}]
        assert [m["device_name"] for m in mappings(volumes)] == ["/dev/sdg", "/dev/sdf"]

    def test_mounts_by_device_name_or_by_volume_id(self):
        assert mounts(self.VOLUMES) == [
            {"mount_point": "/data", "device_name": "/dev/sdf"},
            {"mount_point": "/data2", "fstype": "xfs", "device_name": "/dev/sdg"},
            {"instance_store": "all", "mount_point": "/scratch"},
        ]
        bdm = [
            {"device_name": "/dev/xvda", "ebs": {"volume_id": "vol-00000000000000001"}},
            {"device_name": "/dev/sdf", "ebs": {"volume_id": VOL}},
        ]
        assert mounts(self.VOLUMES, bdm)[0] == {"mount_point": "/data", "volume_id": VOL}
        assert mounts(self.VOLUMES, bdm)[1]["device_name"] == "/dev/sdg"

    @pytest.mark.parametrize(
        "volumes,words",
        [
            ([{"size": 0, "mount_point": "/data"}], "size must be a whole number"),
            ([{"size": "big", "mount_point": "/data"}], "size must be a whole number"),
            ([{"size": 1, "mount_point": "/etc"}], "system directory"),
            ([{"size": 1, "mount_point": "/d"}, {"size": 1, "mount_point": "/d"}], "also volume 1's"),
            ([{"size": 1, "mount_point": "/d", "fstype": "zfs"}], "fstype must be"),
            ([{"size": 1, "mount_point": "/d", "sise": 2}], "unknown keys ['sise']"),
            ([{"size": 1, "mount_point": "/d", "volume_id": VOL}], "a size asks for a new EBS volume"),
            ("20G", "must be a list"),
        ],
    )
    def test_bad_data_volumes_fail_with_what_is_wrong(self, volumes, words):
        with pytest.raises(AnsibleFilterError, match=None) as error:
            mappings(volumes)
        assert words in str(error.value)


class TestBlockDevices:
    def test_letters(self):
        assert [block_devices.letter_of(n) for n in ("/dev/sdf", "sdf", "/dev/xvdf", "xvdg", "/dev/nvme1n1", None)] == [
            "f",
            "f",
            "f",
            "g",
            "",
            "",
        ]

    def test_vendor_data_names_the_device(self):
        data = bytearray(4096)
        data[3072 : 3072 + 8] = b"/dev/sdh"
        assert block_devices.vendor_device_name(bytes(data)) == "/dev/sdh"
        data[3072 : 3072 + 8] = b"sdh\0\0\0\0\0"
        assert block_devices.vendor_device_name(bytes(data)) == "sdh"

    def test_the_identify_command_is_the_kernel_struct(self):
        import struct

        assert struct.calcsize("=BBHIIIQQII6III") == 72 and block_devices.NVME_IOCTL_ADMIN_CMD & 0x3FFF0000 == 72 << 16

    def test_device_name_through_the_controller_data(self):
        namespaces = [
            {"device": "/dev/nvme0n1", "model": "Amazon Elastic Block Store", "serial": "vol0aaa"},
            {"device": "/dev/nvme1n1", "model": "Amazon EC2 NVMe Instance Storage", "serial": "AWS1"},
            {"device": "/dev/nvme2n1", "model": "Amazon Elastic Block Store", "serial": "vol0bbb"},
        ]
        names = {"/dev/nvme0n1": b"/dev/xvda", "/dev/nvme2n1": b"sdf"}

        def identify(device):
            assert device != "/dev/nvme1n1", "only EBS controllers are asked"
            data = bytearray(4096)
            data[3072 : 3072 + len(names[device])] = names[device]
            return bytes(data)

        assert block_devices.find_by_device_name("/dev/sdf", namespaces, identify) == "/dev/nvme2n1"
        assert block_devices.find_by_device_name("/dev/xvdf", namespaces, identify) == "/dev/nvme2n1"
        assert block_devices.find_by_volume_id("vol-0bbb", namespaces) == "/dev/nvme2n1"
        assert block_devices.find_by_volume_id("vol-0ccc", namespaces) == ""

    def test_mountinfo(self):
        text = (
            "22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/root rw\n"
            "40 22 259:3 / /data rw,relatime shared:2 - ext4 /dev/nvme1n1 rw\n"
            "41 22 259:3 / /my\\040data rw - ext4 /dev/nvme1n1 rw\n"
        )
        by_device, by_mount_point = block_devices.parse_mountinfo(text)
        assert by_device["259:3"] == ["/data", "/my data"] and by_mount_point["/"] == "259:1"

    def test_instance_store_requests(self):
        volumes = [{"instance_store": "all", "mount_point": "/scratch"}, {"instance_store": "3", "mount_point": "/x"}]
        found = block_devices.requests_of(volumes, [], ["/dev/nvme1n1", "/dev/nvme2n1"])
        assert [(f[3], f[4], f[5]) for f in found] == [
            (0, "/scratch", "/dev/nvme1n1"),
            (1, "/scratch1", "/dev/nvme2n1"),
            (3, "/x", ""),
        ]
        assert [(f[3], f[5]) for f in block_devices.requests_of(volumes[:1], [], [])] == [(0, "")]
        assert block_devices.natural_key("/dev/nvme10n1") > block_devices.natural_key("/dev/nvme2n1")


class TestInstanceStoreProgram:
    def test_plan_and_what_is_missing(self):
        volumes = [{"instance_store": "all", "mount_point": "/scratch"}, {"instance_store": 2, "mount_point": "/x"}]
        ready, missing = instance_store.plan(volumes, ["/dev/nvme1n1", "/dev/nvme2n1"])
        assert [(v["device"], v["mount_point"]) for v in ready] == [
            ("/dev/nvme1n1", "/scratch"),
            ("/dev/nvme2n1", "/scratch1"),
        ]
        assert missing == ["/x: no instance-store disk 2 (found 2)"]
        assert instance_store.plan(volumes[:1], [])[1] == ["/scratch: this instance has no instance-store disk"]
        assert instance_store.needed(volumes) == 3 and instance_store.needed([]) == 0

    def test_a_disk_with_another_file_system_is_left_alone(self, monkeypatch):
        monkeypatch.setattr(instance_store, "file_system", lambda device: "xfs")
        calls = []
        monkeypatch.setattr(instance_store.subprocess, "run", lambda *a, **k: calls.append(a))
        volume = {
            "device": "/dev/nvme1n1",
            "mount_point": "/scratch",
            "fstype": "ext4",
            "options": "defaults",
            "owner": "root",
            "group": "root",
            "mode": "0755",
        }
        with pytest.raises(RuntimeError, match="holds a xfs file system, not ext4"):
            instance_store.make_ready(volume, {}, "readme")
        assert calls == []
        with pytest.raises(RuntimeError, match="another device"):
            instance_store.make_ready(volume, {"/scratch": "/dev/nvme9n1"}, "readme")
