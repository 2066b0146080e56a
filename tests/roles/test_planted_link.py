"""A link planted as the notebook directory stops playbooks/configure.yml before any root task follows it.

Notebook code can write the login user's home, so it can replace ~/notebooks with a link to a
directory of root's. configure.yml (as root) must then neither follow the link nor hand its target
to the Jupyter user: it stops, naming the link, and no file outside the home changes owner or mode.
"""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import yaml

from tests.localcloud_harness import Cloud, inventory_host, run_playbook, ssh, wait_ssh

pytestmark = [pytest.mark.localcloud]

REPO = Path(__file__).resolve().parents[2]
TARGET = "/opt/target"
# Conda channels cannot be reached from the local cloud's machines.
UV = ["-e", "jupyterlab_env_manager=uv"]
# Every file outside the login user's home and the temporary directories, with its owner, group and mode.
OWNERS = (
    "find / -xdev \\( -path /proc -o -path /sys -o -path /home/admin -o -path /tmp -o -path /var/tmp"
    " -o -path /root/.ansible \\) -prune -o -printf '%u:%g %m %p\\n' | sort"
)


def test_configure_refuses_a_planted_notebook_link_and_changes_no_owner(cloud: Cloud, tmp_path: Path) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    address = cloud.launch(ec2, key_name=key_name)["PublicIpAddress"]
    wait_ssh(address, key, timeout=120)

    def as_root(command: str) -> str:
        return ssh(address, key, f"sudo -n sh -c {shlex.quote(command)}", timeout=300).stdout

    as_root(f"cloud-init status --wait >/dev/null; install -d -m 0755 {TARGET}; touch {TARGET}/kept")
    # What notebook code running as the login user can do.
    ssh(address, key, f"rm -rf ~/notebooks && ln -s {TARGET} ~/notebooks")
    before = as_root(OWNERS)
    assert f"root:root 755 {TARGET}\n" in before

    inventory = tmp_path / "hosts.yml"
    host = inventory_host(address, key)
    inventory.write_text(yaml.safe_dump({"all": {"children": {"jupyter": {"hosts": {"vm": host}}}}}))
    run = run_playbook("playbooks/configure.yml", inventory, *UV, timeout=900)
    assert run.returncode != 0, run.stdout[-3000:]
    assert f"/home/admin/notebooks is a symbolic link to {TARGET}" in run.stdout, run.stdout[-3000:]
    assert "set jupyterlab_notebook_dir" in run.stdout
    after = as_root(OWNERS)
    changed = sorted(set(before.splitlines()) ^ set(after.splitlines()))
    assert changed == [], f"files outside the home changed owner or mode: {changed}"
    link = ssh(address, key, "readlink ~/notebooks").stdout.strip()
    assert link == TARGET, "the link is left for its owner to remove"
