"""labcloud.jupyter.sshd on a real machine: it beats a cloud-init drop-in; only the login user logs in,
forwards reach only JupyterLab, and the effective settings are checked for the real login user."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.localcloud_harness import REPO, SSH_OPTIONS, Cloud, free_port, serve_on_loopback, ssh, wait_ssh

PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
# A user of the VM with the login user's key, whom AllowUsers must refuse.
OTHER_USER = "intruder"
# What the role must make effective for the login user (sshd -T's names).
WANTED = [
    "passwordauthentication no",
    "kbdinteractiveauthentication no",
    "permitrootlogin no",
    "allowusers admin",
    "maxauthtries 3",
    "x11forwarding no",
    "allowagentforwarding no",
    "allowstreamlocalforwarding no",
    "allowtcpforwarding local",
    "permitopen 127.0.0.1:8887 localhost:8887",
    "gatewayports no",
    "permittunnel no",
]
# Connects to a port on the VM's loopback and prints what it answers (the far end of a remote forward).
READ_PORT = (
    "import socket,sys;c=socket.create_connection(('127.0.0.1',int(sys.argv[1])),timeout=5);print(c.recv(64).decode())"
)


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
    return subprocess.run(
        command, cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300
    )


def effective(address: str, key: Path, user: str = "admin") -> list[str]:
    """sshd -T for a login of user from the address this test connects from, Match blocks evaluated."""
    command = f'set -- $SSH_CONNECTION; sudo -n sshd -T -C "user={user},host=$1,addr=$1,laddr=$3,lport=$4"'
    return ssh(address, key, command).stdout.splitlines()


def forward_answers(address: str, key: Path, destination: str) -> bool:
    """Whether a local forward through the machine to destination carries a reply."""
    port = free_port()
    tunnel = subprocess.Popen(
        ["ssh", "-i", str(key), *SSH_OPTIONS, "-N", "-L", f"127.0.0.1:{port}:{destination}", f"admin@{address}"],
        stdin=subprocess.DEVNULL,
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
def greeter() -> Iterator[int]:
    """A port on this host's loopback that answers "hello from the host" (the near end of a remote forward)."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.5)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            with connection:
                connection.sendall(b"hello from the host\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(timeout=5)
    server.close()


def remote_forward(address: str, key: Path, local_port: int) -> subprocess.CompletedProcess:
    """ssh -R: the VM's 127.0.0.1:<port> forwarded back to this host's local_port, read from the VM."""
    remote_port = 18000 + local_port % 1000
    return subprocess.run(
        ["ssh", "-i", str(key), *SSH_OPTIONS, "-o", "ExitOnForwardFailure=yes",
         "-R", f"127.0.0.1:{remote_port}:127.0.0.1:{local_port}", f"admin@{address}",
         f"sleep 1; python3 -c {READ_PORT!r} {remote_port}"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def reload_sshd(address: str, key: Path) -> None:
    """Reload sshd and wait until it answers again (it re-executes itself, and its port closes meanwhile)."""
    ssh(address, key, "sudo -n systemctl reload ssh")
    time.sleep(1)
    wait_ssh(address, key)


def logs_in(address: str, key: Path, user: str) -> bool:
    return ssh(address, key, "true", user=user, check=False, timeout=60).returncode == 0


@pytest.fixture(scope="module")
def machine(session_cloud: Cloud):
    ec2 = session_cloud.client()
    key_name, key = session_cloud.key_pair(ec2)
    instance = session_cloud.launch(ec2, key_name=key_name)
    address = instance["PublicIpAddress"]
    wait_ssh(address, key)
    # What some cloud images ship: a drop-in that switches password logins on.
    ssh(address, key, "echo 'PasswordAuthentication yes' | sudo -n tee /etc/ssh/sshd_config.d/50-cloud-init.conf")
    # Another user of the VM, who holds the same key.
    ssh(
        address,
        key,
        f"sudo -n useradd -m -s /bin/bash {OTHER_USER} && sudo -n install -d -m 700 -o {OTHER_USER} "
        f"/home/{OTHER_USER}/.ssh && sudo -n install -m 600 -o {OTHER_USER} ~/.ssh/authorized_keys "
        f"/home/{OTHER_USER}/.ssh/authorized_keys",
    )
    serve_on_loopback(address, key, 8887)
    # Another service on the VM's loopback that a forward must not reach.
    serve_on_loopback(address, key, 8888)
    yield address, key
    session_cloud.cleanup()


def test_the_role_wins_over_cloud_init_and_locks_sshd_to_the_tunnel(machine, greeter) -> None:
    address, key = machine
    before = effective(address, key)
    assert "passwordauthentication yes" in before
    assert forward_answers(address, key, "127.0.0.1:8888"), "before the role, any forward works"
    assert "hello from the host" in remote_forward(address, key, greeter).stdout, "before the role, -R works"
    assert logs_in(address, key, OTHER_USER), "before the role, any user with a key logs in"

    first = apply_role(address, key)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "changed=0" not in first.stdout, "the first run writes the drop-in and reloads sshd"
    assert "WARNING" not in first.stdout, "the collection's settings widen nothing"
    after = effective(address, key)
    assert [line for line in WANTED if line not in after] == []
    assert [line for line in after if line.startswith("allowusers ")] == ["allowusers admin"]

    assert forward_answers(address, key, "127.0.0.1:8887"), "the tunnel to JupyterLab's port still works"
    assert forward_answers(address, key, "localhost:8887"), "so does the tutorial's localhost:8887"
    assert not forward_answers(address, key, "127.0.0.1:8888"), "another port on the VM is refused"
    assert not forward_answers(address, key, "127.0.0.1:22"), "so is sshd's own"
    # sshd refuses the forward itself (PermitOpen): nothing is sent towards the metadata service.
    assert not forward_answers(address, key, "169.254.169.254:80"), "so is the instance metadata service"
    refused = remote_forward(address, key, greeter)
    assert refused.returncode != 0 and "hello from the host" not in refused.stdout, refused.stdout
    assert "remote port forwarding failed" in refused.stderr, refused.stderr
    assert not logs_in(address, key, OTHER_USER), "AllowUsers refuses every user but the login user"
    assert logs_in(address, key, "admin")

    second = apply_role(address, key)
    assert second.returncode == 0 and "changed=0" in second.stdout, second.stdout


def test_a_match_block_for_the_login_user_fails_the_role(machine) -> None:
    address, key = machine
    assert apply_role(address, key).returncode == 0
    planted = "/etc/ssh/sshd_config.d/60-admin.conf"
    ssh(
        address,
        key,
        f"printf 'Match User admin\\n  AllowTcpForwarding yes\\n  PermitOpen any\\n' | sudo -n tee {planted}",
    )
    try:
        reload_sshd(address, key)
        # What a check for user nobody (the role's former one) sees: nothing wrong.
        assert "allowtcpforwarding local" in effective(address, key, user="nobody")
        assert "allowtcpforwarding yes" in effective(address, key)
        result = apply_role(address, key)
        assert result.returncode != 0
        assert "effective configuration (sshd -T) differs from what was asked for user admin" in result.stdout
        assert "Wanted but not in effect: ['allowtcpforwarding local', 'permitopen 127.0.0.1:8887 localhost:8887']" in (
            " ".join(result.stdout.split())
        ), result.stdout
        assert "in effect but not wanted: ['allowtcpforwarding yes', 'permitopen any']" in " ".join(
            result.stdout.split()
        )
    finally:
        ssh(address, key, f"sudo -n rm -f {planted}")
        reload_sshd(address, key)
    again = apply_role(address, key)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout


def test_bad_or_locking_out_users_are_refused_and_wider_settings_warn(machine) -> None:
    address, key = machine
    drop_in = "sudo -n sha1sum /etc/ssh/sshd_config.d/10-labcloud.conf"
    kept = ssh(address, key, drop_in).stdout
    for hostile in ("admin -oProxyCommand=touch /tmp/x", "admin\nAllowUsers root"):
        refused = apply_role(address, key, "-e", f'{{"sshd_extra_allow_users": [{hostile!r}]}}'.replace("'", '"'))
        assert refused.returncode != 0
        assert "Invalid sshd_extra_allow_users" in refused.stdout, refused.stdout
    locked_out = apply_role(address, key, "-e", "sshd_login_user=grace")
    assert locked_out.returncode != 0
    assert "Ansible logs in to" in locked_out.stdout and "as admin, and sshd would then refuse it" in locked_out.stdout
    assert ssh(address, key, drop_in).stdout == kept, "nothing was changed"

    widened = apply_role(address, key, "-e", f'{{"sshd_extra_allow_users": ["{OTHER_USER}"]}}')
    try:
        assert widened.returncode == 0, widened.stdout
        assert f"sshd_extra_allow_users: {OTHER_USER} may log in over SSH as well." in widened.stdout
        assert logs_in(address, key, OTHER_USER)
    finally:
        restored = apply_role(address, key)
    assert restored.returncode == 0, restored.stdout
    assert not logs_in(address, key, OTHER_USER)


def test_the_privilege_separation_directory_is_made_before_sshd_is_asked(machine) -> None:
    address, key = machine
    result = apply_role(address, key, "-e", "sshd_test_remove_privsep_dir=true")
    # sshd -T (the role's check) fails without the directory: the run passing shows it was made first.
    assert result.returncode == 0, result.stdout + result.stderr
    # A new login needs it too.
    assert ssh(address, key, "stat -c '%U %a' /run/sshd").stdout.split() == ["root", "755"]
