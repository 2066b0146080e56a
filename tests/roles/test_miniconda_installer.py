"""How the miniconda role handles its installer, on a local-cloud machine, without a conda channel.

The real Miniforge installer cannot be downloaded here (tests/roles/test_conda.py runs the whole
conda path where it can). These tests give the role a small installer of their own, made in the
test, that takes Miniforge's command line (`-b -p PREFIX`) and lays out `bin/conda`,
`bin/mamba` and `etc/profile.d/conda.sh`: that is enough to check what the role itself does with
an installer, from a file on the controller and from a URL on the VM (file://, as a mirror would
be): the SHA-256 check that refuses a wrong installer before running it, the installation made
once, the channel settings, conda and mamba in a login shell, and a second run that changes
nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.localcloud_harness import Cloud, ssh, wait_ssh

pytestmark = [pytest.mark.localcloud]

REPO = Path(__file__).resolve().parents[2]
INSTALLER = """#!/bin/bash
# Takes Miniforge's installer options (-b batch, -p prefix) and lays out what the role relies on.
set -eu
prefix=""
while getopts "bp:" option; do
  case "$option" in b) ;; p) prefix=$OPTARG ;; *) exit 2 ;; esac
done
[ -n "$prefix" ] && [ ! -e "$prefix" ] || { echo "prefix missing or exists already" >&2; exit 1; }
mkdir -p "$prefix/bin" "$prefix/etc/profile.d" "$prefix/condabin"
printf '#!/bin/sh\\necho "conda 25.3.1 ($0)"\\n' > "$prefix/bin/conda"
printf '#!/bin/sh\\necho "mamba 2.1.1"\\n' > "$prefix/bin/mamba"
chmod 755 "$prefix/bin/conda" "$prefix/bin/mamba"
printf 'conda() { "%s/bin/conda" "$@"; }\\n' "$prefix" > "$prefix/etc/profile.d/conda.sh"
echo installed >> /var/tmp/installer-runs
"""
PLAYBOOK = """- name: Install Miniforge
  hosts: all
  become: true
  gather_facts: false
  roles:
    - role: labcloud.jupyter.miniconda
"""


@pytest.fixture(scope="module")
def machine(session_cloud: Cloud) -> dict:
    ec2 = session_cloud.client()
    key_name, key = session_cloud.key_pair(ec2)
    instance = session_cloud.launch(ec2, key_name=key_name)
    wait_ssh(instance["PublicIpAddress"], key, timeout=120)
    yield {"address": instance["PublicIpAddress"], "key": key, "tmp": session_cloud.tmp, "env": session_cloud.env}
    session_cloud.cleanup()
    ec2.delete_key_pair(KeyName=key_name)


def apply_role(machine: dict, name: str, **role_vars: object) -> subprocess.CompletedProcess:
    inventory = machine["tmp"] / f"{name}-hosts.yml"
    host = {
        "ansible_host": machine["address"],
        "ansible_user": "admin",
        "ansible_ssh_private_key_file": str(machine["key"]),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        **role_vars,
    }
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {name: host}}}))
    playbook = machine["tmp"] / "miniconda.yml"
    playbook.write_text(PLAYBOOK)
    return subprocess.run(
        [str(REPO / ".venv/bin/ansible-playbook"), "-i", str(inventory), str(playbook)],
        cwd=REPO,
        env=dict(os.environ, **machine["env"], ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1"),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def installer(machine: dict) -> tuple[Path, str]:
    path = machine["tmp"] / "Miniforge3-test.sh"
    path.write_text(INSTALLER)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def installed(machine: dict, prefix: str) -> bool:
    return ssh(machine["address"], machine["key"], f"test -x {prefix}/bin/conda", check=False).returncode == 0


def test_wrong_checksum_is_refused_before_the_installer_runs(machine: dict, installer: tuple[Path, str]) -> None:
    path, _ = installer
    result = apply_role(
        machine, "wrong", miniconda_installer_src=str(path), miniconda_installer_sha256={"x86_64": "0" * 64}
    )
    assert result.returncode != 0
    assert f"has SHA-256 {hashlib.sha256(path.read_bytes()).hexdigest()}, not {'0' * 64}" in result.stdout
    assert not installed(machine, "/opt/miniforge3")
    assert ssh(machine["address"], machine["key"], "ls /tmp | grep -c miniforge", check=False).stdout.strip() == "0"


def test_installer_from_the_controller_runs_once(machine: dict, installer: tuple[Path, str]) -> None:
    path, checksum = installer
    settings = {
        "miniconda_installer_src": str(path),
        "miniconda_installer_sha256": {"x86_64": checksum},
        "miniconda_channels": ["conda-forge", "https://mirror.example.org/conda/bioconda"],
    }
    first = apply_role(machine, "copy", **settings)
    assert first.returncode == 0, first.stdout[-3000:]
    second = apply_role(machine, "copy", **settings)
    assert re.search(r"copy\s+: ok=\d+\s+changed=0 ", second.stdout), second.stdout[-3000:]
    address, key = machine["address"], machine["key"]
    assert ssh(address, key, "cat /var/tmp/installer-runs").stdout.split() == ["installed"]
    condarc = yaml.safe_load(ssh(address, key, "cat /opt/miniforge3/.condarc").stdout)
    assert condarc["channels"] == settings["miniconda_channels"]
    assert condarc["channel_priority"] == "strict"
    assert ssh(address, key, "stat -c %U /opt/miniforge3/bin/conda").stdout.strip() == "root"
    login = ssh(address, key, "bash -lc 'conda --version && mamba --version'")
    assert "conda 25.3.1" in login.stdout
    assert "mamba 2.1.1" in login.stdout


def test_installer_from_a_url_on_the_vm(machine: dict, installer: tuple[Path, str]) -> None:
    path, checksum = installer
    address, key = machine["address"], machine["key"]
    options = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    subprocess.run(
        ["scp", "-q", "-i", str(key), *options, str(path), f"admin@{address}:/tmp/Miniforge3-test.sh"], check=True
    )
    settings = {
        "miniconda_prefix": "/opt/mirrored-forge",
        "miniconda_installer_url": "file:///tmp/Miniforge3-{version}-{arch}.sh",
        "miniconda_version": "test",
        "miniconda_installer_sha256": {"x86_64": checksum},
        "miniconda_shell_integration": False,
    }
    ssh(address, key, "mv /tmp/Miniforge3-test.sh /tmp/Miniforge3-test-x86_64.sh")
    first = apply_role(machine, "url", **settings)
    assert first.returncode == 0, first.stdout[-3000:]
    assert installed(machine, "/opt/mirrored-forge")
    assert ssh(address, key, "test -e /etc/profile.d/miniforge.sh", check=False).returncode != 0
    second = apply_role(machine, "url", **settings)
    assert re.search(r"url\s+: ok=\d+\s+changed=0 ", second.stdout), second.stdout[-3000:]
