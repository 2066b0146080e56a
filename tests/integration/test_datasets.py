"""Datasets on the local cloud, as a researcher brings them: one from an S3 bucket (synced on the VM
with its instance profile's credentials, no keys on the VM) and one from a second machine, the
tutorial's data source computer, over SSH (rsync through this machine, whose key never reaches the
VM). One VM is launched with a data volume, both datasets and its tunnel for the module: the files
land in the data volume's datasets directory, owned by the Jupyter user and linked from the
notebooks, with no keys on the VM; a notebook kernel reads the netCDF file through the tunnel and
may write next to it; a second run of configure.yml copies nothing; after a file changes at each
source, a second launch.yml copies that file and nothing else.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.labcloud.jupyter.plugins.module_utils.jupyter_client import run_code

from tests.integration.conftest import Playbooks, Run, nothing_owned, owned, remove_everything_of
from tests.localcloud_harness import Cloud, free_port, ssh, unique, wait_ssh

pytestmark = [pytest.mark.localcloud, pytest.mark.slow]

DATA = "/data"
ROOT = f"{DATA}/datasets"
VOLUMES = json.dumps({"data_volumes": [{"size": 1, "mount_point": DATA}]})
NOTEBOOKS = "/home/admin/notebooks"
SST = [14.5, 15.25, 16.0]
SST_CHANGED = [14.5, 15.25, 16.5]
README = b"Sea surface temperature, three months.\n"
STATIONS = b"id,lat,lon\n1,-33.9,18.4\n"
CTD = "depth,temp\\n10,12.5\\n"
CTD_CHANGED = "depth,temp\\n10,12.5\\n20,11.0\\n"
ADCP_BYTES = 50000


def netcdf_bytes(values: list[float], units: str = "degC") -> bytes:
    """A netCDF classic (CDF-1) file: dimension time, float variable sst with a units attribute."""

    def name(text: str) -> bytes:
        raw = text.encode()
        return struct.pack(">i", len(raw)) + raw + b"\0" * (-len(raw) % 4)

    def header(begin: int) -> bytes:
        unit = units.encode()
        return (
            b"CDF\x01"
            + struct.pack(">i", 0)
            + struct.pack(">ii", 0x0A, 1)  # dimensions
            + name("time")
            + struct.pack(">i", len(values))
            + struct.pack(">ii", 0, 0)  # no global attributes
            + struct.pack(">ii", 0x0B, 1)  # variables
            + name("sst")
            + struct.pack(">ii", 1, 0)  # one dimension: time
            + struct.pack(">ii", 0x0C, 1)  # attributes of sst
            + name("units")
            + struct.pack(">ii", 2, len(unit))  # NC_CHAR
            + unit
            + b"\0" * (-len(unit) % 4)
            + struct.pack(">iii", 5, 4 * len(values), begin)  # NC_FLOAT, size, offset
        )

    return header(len(header(0))) + struct.pack(f">{len(values)}f", *values)


@dataclass
class Lab:
    playbooks: Playbooks
    cloud: Cloud
    owner: str
    bucket: str
    address: str
    key: Path
    source_address: str
    source_key: Path
    settings: Path
    launch: list[str]
    first: Run
    url: str

    def run(self, command: str, **options: Any) -> str:
        return ssh(self.address, self.key, command, **options).stdout

    def configure(self) -> Run:
        """configure.yml on the VM with its data volume and the datasets, as a lab admin runs it again."""
        return self.playbooks.ok(
            "configure.yml", "--limit", f"jupyter-{self.owner}", "-e", VOLUMES, "-e", f"@{self.settings}"
        )


def instance_profile(cloud: Cloud, bucket: str) -> str:
    """An instance profile whose role EC2 may assume and that may list and read the bucket."""
    iam = cloud.client("iam")
    name = unique("datasets")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    read = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{bucket}"},
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"},
        ],
    }
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName=name, PolicyName="read-datasets", PolicyDocument=json.dumps(read))
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)
    return name


def remove_profile(cloud: Cloud, name: str) -> None:
    iam = cloud.client("iam")
    iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=name)
    iam.delete_instance_profile(InstanceProfileName=name)
    iam.delete_role_policy(RoleName=name, PolicyName="read-datasets")
    iam.delete_role(RoleName=name)


def remove_bucket(cloud: Cloud, bucket: str) -> None:
    s3 = cloud.client("s3")
    for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=item["Key"])
    s3.delete_bucket(Bucket=bucket)


def copied(run: Run, host: str, name: str) -> tuple[int, int]:
    """Files and bytes the run's summary says were copied for a dataset."""
    found = re.search(rf"^{re.escape(host)}: dataset {name} \(.*\): (\d+) files, (\d+) bytes copied$", run.stdout, re.M)
    assert found, run.tail()
    return int(found.group(1)), int(found.group(2))


@pytest.fixture(scope="module")
def lab(session_cloud: Cloud, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A bucket with a few files (a netCDF file among them), an instance profile that reads it, a data
    source machine with files of its own, and the owner's VM launched with the profile and both
    datasets; everything is removed afterwards."""
    if shutil.which("rsync") is None:
        pytest.skip("rsync is not installed on this machine: datasets from other hosts go through it")
    tmp = tmp_path_factory.mktemp("datasets")
    playbooks = Playbooks(session_cloud, tmp / "keys")
    ec2, s3 = session_cloud.client(), session_cloud.client("s3")
    owner, source_owner = playbooks.owner("ds"), playbooks.owner("dsrc")
    bucket = unique("datasets")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": session_cloud.env["AWS_REGION"]})
    s3.put_object(Bucket=bucket, Key="ocean/sst.nc", Body=netcdf_bytes(SST))
    s3.put_object(Bucket=bucket, Key="ocean/README.txt", Body=README)
    s3.put_object(Bucket=bucket, Key="ocean/stations/list.csv", Body=STATIONS)
    s3.put_object(Bucket=bucket, Key="other/not-this.txt", Body=b"outside the prefix\n")
    profile = instance_profile(session_cloud, bucket)
    try:
        playbooks.ok("launch.yml", "-e", f"owner={source_owner}")
        (source_id,) = owned(ec2, source_owner)["instances"]
        source = ec2.describe_instances(InstanceIds=[source_id])["Reservations"][0]["Instances"][0]
        source_address, source_key = source["PublicIpAddress"], playbooks.key_dir / f"jupyter-{source_owner}.pem"
        wait_ssh(source_address, source_key)
        ssh(source_address, source_key, "cloud-init status --wait >/dev/null", timeout=300)
        ssh(
            source_address,
            source_key,
            "sudo apt-get -o DPkg::Lock::Timeout=300 update -qq && sudo DEBIAN_FRONTEND=noninteractive"
            " apt-get -o DPkg::Lock::Timeout=300 install -y -qq rsync >/dev/null"
            f" && mkdir -p field/day1 && printf '{CTD}' > field/day1/ctd.csv"
            f" && head -c {ADCP_BYTES} /dev/urandom > field/day1/adcp.bin",
            timeout=600,
        )
        host_key = ssh(source_address, source_key, "cat /etc/ssh/ssh_host_ed25519_key.pub").stdout.split()[:2]
        known_hosts = tmp / "source_known_hosts"
        known_hosts.write_text(f"{source_address} {' '.join(host_key)}\n")
        settings = tmp / "datasets.yml"
        settings.write_text(
            "---\n"
            "datasets_list:\n"
            f"  - {{name: ocean, source: 's3://{bucket}/ocean'}}\n"
            f"  - {{name: field, source: 'admin@{source_address}:field'}}\n"
            f"datasets_ssh_key_file: {source_key}\n"
            f"datasets_ssh_known_hosts_file: {known_hosts}\n"
            f"datasets_cache_dir: {tmp / 'cache'}\n"
        )
        launch = [
            "-e", f"owner={owner}",
            "-e", "configure=true",
            "-e", VOLUMES,
            "-e", f"ec2_instance_instance_profile={profile}",
            "-e", f"@{settings}",
        ]  # fmt: skip
        port = free_port()
        first = playbooks.ok("launch.yml", *launch, "-e", "tunnel=true", "-e", f"tunnel_local_port={port}")
        url = re.search(rf"http://localhost:{port}/lab\?token=[0-9a-f]+", first.stdout)
        assert url, first.tail()
        (instance_id,) = owned(ec2, owner)["instances"]
        vm = ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]
        yield Lab(
            playbooks,
            session_cloud,
            owner,
            bucket,
            vm["PublicIpAddress"],
            playbooks.key_dir / f"jupyter-{owner}.pem",
            source_address,
            source_key,
            settings,
            launch,
            first,
            url.group(0),
        )
    finally:
        playbooks.run("tunnel.yml", "-e", f"owner={owner}", "-e", "tunnel_state=closed")
        for name in (owner, source_owner):
            try:
                remove_everything_of(ec2, name)
            except Exception as exc:
                print(f"cleanup of {name}: {exc}")
        remove_bucket(session_cloud, bucket)
        remove_profile(session_cloud, profile)


def test_bad_datasets_are_refused_before_anything_is_launched(playbooks: Playbooks, tmp_path: Path) -> None:
    owner = playbooks.owner("ds")
    settings = tmp_path / "bad.yml"
    settings.write_text(
        "---\n"
        "datasets_list:\n"
        "  - {name: ocean, source: 'ftp://example.org/ocean'}\n"
        "  - {name: ../etc, source: 's3://bucket/x'}\n"
        "  - {name: twice, source: 'source.example.org:/data'}\n"
        "  - {name: twice, source: 's3://bucket/y'}\n"
    )
    refused = playbooks.run("launch.yml", "-e", f"owner={owner}", "-e", "configure=true", "-e", f"@{settings}")
    assert refused.returncode != 0, refused.tail()
    said = " ".join(refused.output.replace("\\", "").replace('"', "").split())
    assert "dataset ocean: source ftp://example.org/ocean is neither s3://bucket/prefix nor host:path" in said
    assert "dataset name ../etc is not a plain directory name" in said
    assert "dataset name twice is given 2 times" in said
    assert nothing_owned(playbooks.cloud.client(), owner)
    missing = playbooks.run(
        "launch.yml", "-e", f"owner={owner}", "-e", "ec2_instance_instance_profile=no-such-profile-" + unique("p")
    )
    assert missing.returncode != 0 and "no such IAM instance profile" in missing.output, missing.tail()
    assert nothing_owned(playbooks.cloud.client(), owner)


def test_both_datasets_land_owned_by_the_jupyter_user_and_linked_without_keys_on_the_vm(lab: Lab) -> None:
    host = f"jupyter-{lab.owner}"
    assert copied(lab.first, host, "ocean") == (3, len(netcdf_bytes(SST)) + len(README) + len(STATIONS))
    assert copied(lab.first, host, "field") == (2, len(CTD.replace("\\n", "\n")) + ADCP_BYTES)
    listed = lab.run(f"cd {ROOT} && find . -type f | sort").split()
    assert listed == [
        "./field/day1/adcp.bin",
        "./field/day1/ctd.csv",
        "./ocean/README.txt",
        "./ocean/sst.nc",
        "./ocean/stations/list.csv",
    ]
    jupyter_user = lab.run(f"stat -c %U {NOTEBOOKS}").strip()
    owners = set(lab.run(f"sudo find {ROOT} -printf '%u\\n'").split())
    assert owners == {jupyter_user}
    assert lab.run(f"stat -c %F {NOTEBOOKS}/datasets").strip() == "symbolic link"
    assert lab.run(f"readlink {NOTEBOOKS}/datasets").strip() == ROOT
    assert lab.run(f"cat {NOTEBOOKS}/datasets/field/day1/ctd.csv") == CTD.replace("\\n", "\n")
    # No AWS keys on the VM: none where the SDKs look (~/.aws, the environment), none in what the role
    # wrote, and neither the controller's keys nor the data source's private key anywhere.
    assert lab.run("sudo ls -d /root/.aws /home/*/.aws 2>/dev/null; true").strip() == ""
    assert "AWS_ACCESS_KEY_ID" not in lab.run(f"sudo -u {jupyter_user} env")
    assert lab.run(f"sudo grep -rlIE '(AKIA|ASIA)[A-Z0-9]{{16}}' {ROOT} /usr/local/lib/labcloud; true").strip() == ""
    # A line from the middle of the source's key (its first lines are the same in every OpenSSH key).
    key_lines = lab.source_key.read_text().splitlines()[1:-1]
    source_key_material = key_lines[len(key_lines) // 2]
    secrets = (
        lab.cloud.env["AWS_ACCESS_KEY_ID"],
        lab.cloud.env["AWS_SECRET_ACCESS_KEY"],
        source_key_material,
    )
    for secret in secrets:
        found = lab.run(
            f"sudo grep -rlIF -e '{secret}' /etc /root /home /srv /usr/local /var/lib/labcloud /tmp /var/tmp /run"
            " 2>/dev/null; true",
            timeout=300,
        )
        assert found.strip() == "", (secret[:8], found)


def test_a_second_run_copies_nothing(lab: Lab) -> None:
    host = f"jupyter-{lab.owner}"
    again = lab.configure()
    assert again.recap[host]["changed"] == 0, again.ran_on(host, "changed")
    assert copied(again, host, "ocean") == (0, 0)
    assert copied(again, host, "field") == (0, 0)


def test_a_notebook_kernel_reads_the_netcdf_file_from_the_data_volume_through_the_tunnel(lab: Lab) -> None:
    # The link in the notebooks leads to the data volume, and the kernel (in the service's sandbox)
    # may write there too: results next to the data.
    code = (
        "import xarray as xr\n"
        f"ds = xr.open_dataset('{NOTEBOOKS}/datasets/ocean/sst.nc')\n"
        "print(ds.sst.attrs['units'], [float(v) for v in ds.sst.values])\n"
        f"open('{ROOT}/ocean-mean.txt', 'w').write(str(float(ds.sst.mean())))\n"
    )
    answer = run_code(lab.url, code, timeout=180)
    assert answer["stdout"].strip() == f"degC {SST}", answer
    assert lab.run(f"cat {ROOT}/ocean-mean.txt") == str(sum(SST) / len(SST))
    assert lab.run(f"findmnt -n -o TARGET --target {ROOT}/ocean/sst.nc").strip() == DATA
    lab.run(f"rm {ROOT}/ocean-mean.txt")


def test_a_changed_file_at_each_source_is_copied_again_by_a_second_launch(lab: Lab) -> None:
    host = f"jupyter-{lab.owner}"
    # Same size, newer object: S3 says so by its time. The source's file grows.
    lab.cloud.client("s3").put_object(Bucket=lab.bucket, Key="ocean/sst.nc", Body=netcdf_bytes(SST_CHANGED))
    ssh(lab.source_address, lab.source_key, f"printf '{CTD_CHANGED}' > field/day1/ctd.csv")
    # launch.yml on the VM that exists configures it as configure.yml would: the datasets are synced.
    again = lab.playbooks.ok("launch.yml", *lab.launch)
    assert copied(again, host, "ocean") == (1, len(netcdf_bytes(SST_CHANGED)))
    assert copied(again, host, "field") == (1, len(CTD_CHANGED.replace("\\n", "\n")))
    assert again.recap[host]["changed"] > 0, again.tail()
    on_vm = lab.run(f"sha256sum {ROOT}/ocean/sst.nc").split()[0]
    assert on_vm == hashlib.sha256(netcdf_bytes(SST_CHANGED)).hexdigest()
    assert lab.run(f"cat {ROOT}/field/day1/ctd.csv") == CTD_CHANGED.replace("\\n", "\n")
