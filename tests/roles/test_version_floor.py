"""A user's requirements file that pins jupyter_server and JupyterLab below their floors fails configure.yml.

The floors (roles/jupyterlab/defaults/main.yml, jupyterlab_version_floors) are not part of a user's
own requirements file, so the install obeys the file; the versions in the environment are then
checked, and the run stops, naming each package, its version and its floor, before the service is
installed.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from tests.localcloud_harness import Cloud, inventory_host, run_playbook, ssh, wait_ssh

pytestmark = [pytest.mark.localcloud]

REPO = Path(__file__).resolve().parents[2]
# Releases older than the floors, that PyPI still serves and that install together.
OLD = {"jupyter_server": "2.15.0", "jupyterlab": "4.4.0"}


def test_environment_below_the_floors_fails_the_run(cloud: Cloud, tmp_path: Path) -> None:
    floors = yaml.safe_load((REPO / "roles/jupyterlab/defaults/main.yml").read_text())["jupyterlab_version_floors"]
    assert set(OLD) == set(floors)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("".join(f"{name}=={version}\n" for name, version in OLD.items()))

    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    address = cloud.launch(ec2, key_name=key_name)["PublicIpAddress"]
    wait_ssh(address, key, timeout=120)
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        yaml.safe_dump({"all": {"children": {"jupyter": {"hosts": {"vm": inventory_host(address, key)}}}}})
    )
    settings = ["-e", "jupyterlab_env_manager=uv", "-e", f"jupyterlab_requirements_file={requirements}"]
    run = run_playbook("playbooks/configure.yml", inventory, *settings, timeout=1200)

    assert run.returncode != 0, run.stdout[-3000:]
    for name, version in OLD.items():
        message = f"{name} {version} in /opt/jupyterlab/env is older than its floor {floors[name]}"
        assert message in " ".join(run.stdout.split()), run.stdout[-3000:]
    assert f"Raise it in {requirements} (jupyterlab_requirements_file)" in " ".join(run.stdout.split())
    unit = ssh(
        address, key, f"sudo -n sh -c {shlex.quote('test -e /etc/systemd/system/jupyterlab.service')}", check=False
    )
    assert unit.returncode != 0, "the service was installed with the old versions"
