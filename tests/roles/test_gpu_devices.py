"""On a VM with an NVIDIA device node, JupyterLab's sandbox keeps it visible and hides the other devices.

The local cloud's machines have no GPU: the test makes the node the driver would (/dev/nvidia0, a
character device 195:0), lets the jupyter_service role's look at the host find it, renders the unit
the role would write for that answer, and runs a command on the VM with the unit's sandbox settings
(systemd-run with the same properties): it sees /dev/nvidia0 and /dev/nvidiactl, and neither /dev/mem
nor any disk. Without the node, the same look finds nothing and the unit adds no device.

Inside the local cloud's machines (systemd-nspawn containers) systemd does not enforce device
policies: opening the node gives ENXIO (no driver) with or without DeviceAllow=. That the allow list
is needed on a VM (PrivateDevices=yes implies DevicePolicy=closed) is not shown here, only that the
node is there and everything else is not.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import yaml

from tests.localcloud_harness import Cloud, inventory_host, run_playbook, ssh, wait_ssh
from tests.unit.test_jupyter_service_unit import unit

pytestmark = [pytest.mark.localcloud]

ROLE = Path(__file__).resolve().parents[2] / "roles/jupyter_service"

# The role's look at the host, as its tasks make it, and the nodes it derives from the answer.
LOOK = """
- name: Look at the host as the jupyter_service role does
  hosts: vm
  become: true
  gather_facts: false
  vars_files: ["{role}/defaults/main.yml", "{role}/vars/main.yml"]
  tasks:
    - name: Look at the host
      labcloud.jupyter.host_facts:
        requests: ["{{ jupyter_service_look }}"]

    - name: Report
      ansible.builtin.copy:
        content: "{{ {'found': jupyter_service_gpu_found, 'nodes': jupyter_service_gpu_nodes} | to_json }}"
        dest: "{answer}"
        mode: "0600"
      delegate_to: localhost
      become: false
"""
# The unit's settings that make the sandbox (the rest names the program, its user, paths and limits).
NOT_SANDBOX = (
    "Type=",
    "User=",
    "Group=",
    "WorkingDirectory=",
    "ExecStart=",
    "Environment=",
    "Restart",
    "TimeoutStopSec=",
    "RuntimeDirectory",
    "StateDirectory",
    "UMask=",
    "MemoryMax=",
    "TasksMax=",
    "ReadWritePaths=",
)


def look(tmp_path: Path, address: str, key: Path) -> dict:
    """What the role's look finds on the VM: the NVIDIA nodes, and those the unit would add."""
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"vm": inventory_host(address, key)}}}))
    playbook = tmp_path / "look.yml"
    answer = tmp_path / "answer.json"
    answer.unlink(missing_ok=True)
    playbook.write_text(LOOK.replace("{role}", str(ROLE)).replace("{answer}", str(answer)))
    run = run_playbook(playbook, inventory, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(answer.read_text())


def sandbox_properties(nodes: list[str]) -> list[str]:
    """The unit's sandbox settings for these nodes, as systemd-run properties."""
    section = False
    properties = []
    for line in unit(devices=nodes):
        if line.startswith("["):
            section = line == "[Service]"
        elif section and line and not line.startswith("#") and not line.startswith(NOT_SANDBOX):
            properties.append(line)
    return properties


def test_the_sandbox_keeps_the_gpu_node_and_hides_the_other_devices(cloud: Cloud, tmp_path: Path) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    address = cloud.launch(ec2, key_name=key_name)["PublicIpAddress"]
    wait_ssh(address, key, timeout=120)

    def as_root(command: str, check: bool = True):
        return ssh(address, key, f"sudo -n sh -c {shlex.quote(command)}", check=check, timeout=300)

    as_root("cloud-init status --wait >/dev/null || true")
    assert look(tmp_path, address, key) == {"found": [], "nodes": []}, "a VM without a GPU adds no device"

    made = as_root("mknod -m 0666 /dev/nvidia0 c 195 0 && mknod -m 0666 /dev/nvidiactl c 195 255", check=False)
    if made.returncode != 0:
        pytest.skip(
            f"a device node cannot be made inside the local cloud's machines ({made.stderr.strip()}): "
            "tests/unit/test_jupyter_service_unit.py and test_host_facts.py cover the rendering and the detection"
        )
    found = look(tmp_path, address, key)
    assert found["found"] == ["/dev/nvidia0", "/dev/nvidiactl"]
    assert {"/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"} <= set(found["nodes"])

    properties = " ".join(f"-p {shlex.quote(p)}" for p in sandbox_properties(found["nodes"]))
    seen = as_root(f"systemd-run --quiet --wait --pipe -p User=nobody {properties} /bin/ls -l /dev", check=False)
    assert seen.returncode == 0, seen.stderr
    names = {line.split()[-1] for line in seen.stdout.splitlines() if line and not line.startswith("total")}
    assert {"nvidia0", "nvidiactl", "null", "urandom"} <= names, seen.stdout
    assert not names & {"mem", "kmem", "port", "sda", "vda", "xvda", "nvme0n1", "loop0"}, seen.stdout
    assert "nvidia-uvm" not in names, "a node missing when the service starts is skipped"
    # Without the bindings (the unit before GPUs were found), the node is hidden like every other device.
    without = " ".join(f"-p {shlex.quote(p)}" for p in sandbox_properties([]))
    hidden = as_root(f"systemd-run --quiet --wait --pipe -p User=nobody {without} /bin/ls /dev", check=False)
    assert hidden.returncode == 0 and "nvidia0" not in hidden.stdout.split(), hidden.stdout + hidden.stderr
