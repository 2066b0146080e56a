"""labcloud.jupyter.sshd on a real machine: it beats a cloud-init drop-in; forwards reach only JupyterLab."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.localcloud_harness import REPO, SSH_OPTIONS, Cloud, free_port, serve_on_loopback, ssh, wait_ssh

PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


def apply_role(address: str, key: Path, *extra: str) -> subprocess.CompletedProcess:
    # The machine's host key goes to a known_hosts file of its own, never to the user's ~/.ssh:
    # the local cloud hands out the same addresses again, to machines with new host keys.
    known_hosts = key.with_suffix(".known_hosts")
    command = [
        str(PLAYBOOK),
        "-i",
        f"{address},",
        "-u",
        "admin",
        "--private-key",
        str(key),
        str(Path(__file__).parent / "sshd_role.yml"),
        *extra,
    ]
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_SSH_COMMON_ARGS=f"-o UserKnownHostsFile={known_hosts}",
    )
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def forward_answers(address: str, key: Path, destination: str) -> bool:
    """Whether a local forward through the machine to destination carries a reply."""
    port = free_port()
    tunnel = subprocess.Popen(
        ["ssh", "-i", str(key), *SSH_OPTIONS, "-N", "-L", f"127.0.0.1:{port}:{destination}", f"admin@{address}"]
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=3) as connection:
                    connection.settimeout(5)
                    connection.sendall(b"GET / HTTP/1.0\r\n\r\n")
                    return bool(connection.recv(64))
            except ConnectionRefusedError:
                time.sleep(0.2)
            except (TimeoutError, ConnectionResetError):
                return False
        raise AssertionError("the forward's local port never opened")
    finally:
        tunnel.terminate()
        tunnel.wait()


@pytest.fixture(scope="module")
def machine(session_cloud: Cloud):
    ec2 = session_cloud.client()
    key_name, key = session_cloud.key_pair(ec2)
    instance = session_cloud.launch(ec2, key_name=key_name)
    address = instance["PublicIpAddress"]
    wait_ssh(address, key)
    # What some cloud images ship: a drop-in that switches password logins on.
    ssh(address, key, "echo 'PasswordAuthentication yes' | sudo -n tee /etc/ssh/sshd_config.d/50-cloud-init.conf")
    serve_on_loopback(address, key, 8887)
    yield address, key
    session_cloud.cleanup()


def test_the_role_wins_over_cloud_init_and_restricts_forwarding(machine) -> None:
    address, key = machine
    assert "passwordauthentication yes" in ssh(address, key, "sudo -n sshd -T").stdout
    assert forward_answers(address, key, "127.0.0.1:22"), "before the role, any forward works"

    first = apply_role(address, key)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "changed=0" not in first.stdout, "the first run writes the drop-in and reloads sshd"
    effective = ssh(address, key, "sudo -n sshd -T").stdout.splitlines()
    assert "passwordauthentication no" in effective
    assert "allowtcpforwarding local" in effective
    assert "permitopen 127.0.0.1:8887 localhost:8887" in effective
    assert forward_answers(address, key, "127.0.0.1:8887"), "the tunnel to JupyterLab's port still works"
    assert not forward_answers(address, key, "127.0.0.1:22"), "forwarding anywhere else is refused"

    second = apply_role(address, key)
    assert second.returncode == 0 and "changed=0" in second.stdout, second.stdout


def test_a_setting_that_does_not_take_fails_the_role(machine) -> None:
    address, key = machine
    ssh(address, key, "echo 'X11Forwarding yes' | sudo -n tee /etc/ssh/sshd_config.d/01-early.conf")
    try:
        result = apply_role(address, key)
        assert result.returncode != 0
        assert "effective configuration (sshd -T) differs" in result.stdout
    finally:
        ssh(address, key, "sudo -n rm -f /etc/ssh/sshd_config.d/01-early.conf")
