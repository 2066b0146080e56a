"""The labcloud.jupyter.image_hygiene role on one local-cloud machine, over SSH as a playbook runs it.

AWS credentials planted in the login user's home fail the check and the clean entry point, which
name the file and remove nothing. Once the file is allowed, the clean entry point removes the host
keys, the authorized keys (root's too), the histories, the Jupyter runtime files and token, the
temporary files, cloud-init's state and the machine ID. The clean ends SSH logins, so what it left
is read through an SSH master connection opened before it. The machine is then stopped and started:
its new first boot makes new host keys (read with ssh-keyscan, no login needed) and, as cloud-init
does, adds the key pair's key again, which the test logs in with.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.localcloud_harness import SSH_OPTIONS, Cloud, inventory_host, run_playbook, ssh, wait_ssh

pytestmark = [pytest.mark.localcloud]

REPO = Path(__file__).resolve().parents[2]
CREDENTIALS = "/home/admin/.aws/credentials"
TOKEN = "/var/lib/jupyterlab/token"
# What every image loses, planted as a configured VM would hold it.
PLANTED = [
    TOKEN,
    "/root/.bash_history",
    "/home/admin/.bash_history",
    "/home/admin/.python_history",
    "/home/admin/.ipython/profile_default/history.sqlite",
    "/home/admin/.local/share/jupyter/runtime/jpserver-4242.json",
    "/home/admin/.local/share/jupyter/runtime/jupyter_cookie_secret",
    "/tmp/build.log",
    "/var/tmp/pip-cache.bin",
    "/root/.ssh/authorized_keys",
    "/home/admin/.ssh/authorized_keys",
]
PLANT = f"""set -e
install -d -m 0700 -o admin -g admin /home/admin/.aws
printf '[default]\\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG\\n' \\
  > {CREDENTIALS}
install -d -m 0700 /var/lib/jupyterlab /root/.ssh
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > {TOKEN}
echo 'aws configure' > /root/.bash_history
echo 'git push' > /home/admin/.bash_history
echo 'import os' > /home/admin/.python_history
install -d /home/admin/.ipython/profile_default /home/admin/.local/share/jupyter/runtime
echo history > /home/admin/.ipython/profile_default/history.sqlite
echo '{{"token": "x"}}' > /home/admin/.local/share/jupyter/runtime/jpserver-4242.json
echo secret > /home/admin/.local/share/jupyter/runtime/jupyter_cookie_secret
echo log > /tmp/build.log
echo cache > /var/tmp/pip-cache.bin
cp /home/admin/.ssh/authorized_keys /root/.ssh/authorized_keys
"""

CHECK_PLAY = """\
- name: Check the VM for secrets
  hosts: vm
  gather_facts: false
  roles:
    - role: labcloud.jupyter.image_hygiene
"""
CLEAN_PLAY = """\
- name: Clean the VM for its image
  hosts: vm
  gather_facts: false
  tasks:
    - name: Clean it
      ansible.builtin.include_role:
        name: labcloud.jupyter.image_hygiene
        tasks_from: clean

    - name: Keep the result on the controller
      ansible.builtin.copy:
        content: "{{ image_hygiene_clean | to_json }}"
        dest: "{{ result_file }}"
        mode: "0600"
      delegate_to: localhost
"""


def playbook(tmp: Path, play: str, inventory: Path, *extra: str) -> subprocess.CompletedProcess:
    """Run a play on the machine, as a user runs ansible-playbook from the checkout."""
    path = tmp / "play.yml"
    path.write_text(play)
    return run_playbook(path, inventory, *extra)


def present(run: Callable[[str], str], paths: list[str]) -> list[str]:
    """Which of the paths exist on the machine (run: a command runner as root)."""
    listing = run("for p in " + " ".join(paths) + '; do [ -e "$p" ] && echo "$p"; done; true')
    return listing.split()


def host_keys(address: str) -> set[str]:
    """The machine's SSH host keys, as ssh-keyscan sees them (no login), once sshd answers."""
    deadline = time.monotonic() + 120
    while True:
        scan = subprocess.run(["ssh-keyscan", "-T", "3", address], capture_output=True, text=True, check=False)
        keys = {" ".join(line.split()[1:3]) for line in scan.stdout.splitlines() if line and not line.startswith("#")}
        if keys:
            return keys
        if time.monotonic() > deadline:
            raise AssertionError(f"ssh-keyscan {address} found no host key: {scan.stderr.strip()}")
        time.sleep(1)


@pytest.fixture
def master(tmp_path: Path) -> Iterator[dict]:
    """An SSH master connection, opened by the test before the clean and closed at the end."""
    state: dict = {"socket": tmp_path / "master.sock"}
    yield state
    if "address" in state:
        subprocess.run(
            ["ssh", "-S", str(state["socket"]), "-O", "exit", f"admin@{state['address']}"],
            capture_output=True,
            check=False,
        )


def test_role_refuses_credentials_then_cleans_what_an_image_must_not_carry(
    cloud: Cloud, master: dict, tmp_path: Path
) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    machine = cloud.launch(ec2, key_name=key_name)
    address = machine["PublicIpAddress"]
    wait_ssh(address, key, timeout=120)
    ssh(address, key, "cloud-init status --wait >/dev/null")
    subprocess.run(
        ["ssh", "-i", str(key), *SSH_OPTIONS, f"admin@{address}", "sudo -n sh -s"],
        input=PLANT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    def as_root(command: str) -> str:
        return ssh(address, key, f"sudo -n sh -c {shlex.quote(command)}").stdout

    old_keys = host_keys(address)
    old_machine_id = as_root("cat /etc/machine-id").strip()
    assert old_machine_id and len(old_keys) >= 2
    assert present(as_root, [*PLANTED, CREDENTIALS]) == [*PLANTED, CREDENTIALS]

    inventory = tmp_path / "hosts.yml"
    host = inventory_host(address, key)
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {"vm": host}}}))
    result_file = tmp_path / "clean.json"

    # The check fails, naming the file; so does the clean entry point, which then removes nothing.
    checked = playbook(tmp_path, CHECK_PLAY, inventory)
    assert checked.returncode != 0 and CREDENTIALS in checked.stdout, checked.stdout[-4000:]
    assert "aws_access_key_id on line 2" in checked.stdout and "AKIA" not in checked.stdout
    refused = playbook(tmp_path, CLEAN_PLAY, inventory, "-e", f"result_file={result_file}")
    assert refused.returncode != 0 and CREDENTIALS in refused.stdout and "Nothing was removed" in refused.stdout
    assert present(as_root, [*PLANTED, CREDENTIALS]) == [*PLANTED, CREDENTIALS], "a refused clean removes nothing"
    assert host_keys(address) == old_keys

    # Allowed, the check passes; the clean in check mode predicts without removing anything.
    allow = json.dumps({"image_hygiene_allow": [CREDENTIALS], "result_file": str(result_file)})
    assert playbook(tmp_path, CHECK_PLAY, inventory, "-e", allow).returncode == 0
    predicted = playbook(tmp_path, CLEAN_PLAY, inventory, "-e", allow, "--check", "--diff")
    assert predicted.returncode == 0, predicted.stdout[-4000:]
    assert "changed: [vm]" in predicted.stdout and "/etc/ssh/ssh_host_ed25519_key (ssh_host_key)" in predicted.stdout
    assert present(as_root, PLANTED) == PLANTED, "check mode removes nothing"

    # The clean, watched through a master connection opened before it.
    master["address"] = address
    # -f puts it in the background once logged in; its output goes nowhere, so nothing waits on it.
    options = ["-M", "-S", str(master["socket"]), "-o", "ControlPersist=yes", "-fN"]
    subprocess.run(
        ["ssh", "-i", str(key), *SSH_OPTIONS, *options, f"admin@{address}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        timeout=60,
    )

    def through_master(command: str) -> str:
        done = subprocess.run(
            ["ssh", "-S", str(master["socket"]), f"admin@{address}", f"sudo -n sh -c {shlex.quote(command)}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout

    cleaned = playbook(tmp_path, CLEAN_PLAY, inventory, "-e", allow)
    assert cleaned.returncode == 0, cleaned.stdout[-4000:]
    result = json.loads(result_file.read_text())
    removed = [entry["path"] for entry in result["removed"]]
    assert set(PLANTED) <= set(removed)
    assert removed[-2:] == ["/root/.ssh/authorized_keys", "/home/admin/.ssh/authorized_keys"], "authorized keys last"
    assert present(through_master, PLANTED) == []
    assert present(through_master, [CREDENTIALS]) == [CREDENTIALS], "an allowed file stays"
    assert through_master("ls /etc/ssh | grep '^ssh_host_' || true").strip() == ""
    assert through_master("cat /etc/machine-id").strip() in ("", "uninitialized")
    assert through_master("ls -A /var/lib/cloud").split() in ([], ["seed"])
    login = ssh(address, key, "true", check=False)
    assert login.returncode != 0, "no new SSH login after the clean"

    # The next boot is a first boot: new host keys, and the key pair's key added again by cloud-init.
    instance_id = machine["InstanceId"]
    ec2.stop_instances(InstanceIds=[instance_id])
    cloud.wait_state(ec2, instance_id, "stopped")
    ec2.start_instances(InstanceIds=[instance_id])
    address = cloud.wait_state(ec2, instance_id, "running")["PublicIpAddress"]
    new_keys = host_keys(address)
    assert new_keys and not new_keys & old_keys, "the image's next boot makes new host keys"
    try:
        wait_ssh(address, key, timeout=60)
    except AssertionError:
        if result["cloud_init"]["fallback"]:
            pytest.skip(
                "login after the restart not checked: this local cloud's cloud-init stand-in has no `cloud-init "
                f"clean` yet ({result['cloud_init']['message']}), so its next boot is not a first boot and does "
                "not add the key pair's key again (the parallel cloud-init change adds it)"
            )
        raise
    assert present(as_root, PLANTED) == ["/home/admin/.ssh/authorized_keys"], "only the new key pair's key is back"
    assert as_root("cat /home/admin/.ssh/authorized_keys").count("ssh-ed25519") == 1
    new_machine_id = as_root("cat /etc/machine-id").strip()
    assert new_machine_id not in ("", "uninitialized", old_machine_id)
