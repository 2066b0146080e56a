"""A running local cloud for tests, and small helpers to use it the way a user would (boto3, ssh).

The session reuses a local cloud that is already up (`make demo` leaves one running) or starts
one and takes it down at the end. Every test makes its own key pairs and instances, with names
unique to the test, and terminates what it launched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from localcloud import cli, config  # noqa: E402

SSH_OPTIONS = [
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "ConnectTimeout=3",
    "-o",
    "BatchMode=yes",
]


def requirements_missing() -> str | None:
    """Why the local cloud cannot run here, or None."""
    if os.geteuid() != 0:
        return "the local cloud needs root (network namespaces, loop devices, systemd-nspawn)"
    for tool in ("systemd-nspawn", "debootstrap", "iptables"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (make setup installs it)"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Cloud:
    """The local cloud under test."""

    settings: config.Settings
    env: dict[str, str]
    tmp: Path
    launched: list[tuple[Any, str]] = field(default_factory=list)
    groups: list[tuple[Any, str]] = field(default_factory=list)

    def client(self, service: str = "ec2", **credentials: str) -> Any:
        keys = {
            "aws_access_key_id": credentials.get("access_key", self.env["AWS_ACCESS_KEY_ID"]),
            "aws_secret_access_key": credentials.get("secret_key", self.env["AWS_SECRET_ACCESS_KEY"]),
            "aws_session_token": credentials.get("session_token"),
        }
        return boto3.client(
            service, endpoint_url=self.env["AWS_ENDPOINT_URL"], region_name=self.env["AWS_REGION"], **keys
        )

    def status(self) -> dict:
        return cli.api_get(self.settings, "status")

    def idle(self) -> None:
        """Wait until the local cloud has finished all queued machine and disk work."""
        cli.api_get(self.settings, "idle", timeout=600)

    def base_image(self, ec2: Any | None = None) -> dict:
        ec2 = ec2 or self.client()
        images = ec2.describe_images(
            Owners=[config.DEBIAN_ACCOUNT_ID], Filters=[{"Name": "name", "Values": ["debian-12-amd64-*"]}]
        )["Images"]
        assert images, "the local cloud registers a Debian 12 base image"
        return images[0]

    def key_pair(self, ec2: Any | None = None) -> tuple[str, Path]:
        """A new ed25519 key pair, its private key saved 0400."""
        ec2 = ec2 or self.client()
        name = unique("key")
        material = ec2.create_key_pair(KeyName=name, KeyType="ed25519")["KeyMaterial"]
        path = self.tmp / f"{name}.pem"
        path.write_text(material)
        path.chmod(0o400)
        return name, path

    def ssh_group(self, ec2: Any | None = None, source: str = f"{config.GATEWAY}/32") -> str:
        """A security group that admits SSH from the host (connections from the host come from the gateway)."""
        ec2 = ec2 or self.client()
        group_id = ec2.create_security_group(GroupName=unique("ssh"), Description="SSH from the test host")["GroupId"]
        ec2.authorize_security_group_ingress(
            GroupId=group_id,
            IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": source}]}],
        )
        self.groups.append((ec2, group_id))
        return group_id

    def launch(
        self,
        ec2: Any | None = None,
        image_id: str | None = None,
        key_name: str | None = None,
        wait: bool = True,
        **kwargs: Any,
    ) -> dict:
        """RunInstances, recorded for termination at the end of the test; waits for `running`."""
        ec2 = ec2 or self.client()
        if key_name is None:
            key_name, _ = self.key_pair(ec2)
        kwargs.setdefault("InstanceType", "t3.micro")
        if "SecurityGroupIds" not in kwargs:
            kwargs["SecurityGroupIds"] = [self.ssh_group(ec2)]
        elif not kwargs["SecurityGroupIds"]:
            del kwargs["SecurityGroupIds"]  # launched without a group, as EC2 allows
        reservation = ec2.run_instances(
            ImageId=image_id or self.base_image(ec2)["ImageId"], MinCount=1, MaxCount=1, KeyName=key_name, **kwargs
        )
        instance = reservation["Instances"][0]
        self.launched.append((ec2, instance["InstanceId"]))
        if wait:
            self.wait_state(ec2, instance["InstanceId"], "running")
        return self.describe(ec2, instance["InstanceId"])

    @staticmethod
    def describe(ec2: Any, instance_id: str) -> dict:
        return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]

    def wait_state(self, ec2: Any, instance_id: str, state: str, timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            instance = self.describe(ec2, instance_id)
            if instance["State"]["Name"] == state:
                return instance
            if time.monotonic() > deadline:
                raise AssertionError(f"{instance_id} is {instance['State']['Name']}, not {state}, after {timeout} s")
            time.sleep(0.2)

    def cleanup(self) -> None:
        for ec2, instance_id in self.launched:
            try:
                ec2.modify_instance_attribute(InstanceId=instance_id, DisableApiTermination={"Value": False})
                ec2.terminate_instances(InstanceIds=[instance_id])
            except Exception as exc:
                print(f"cleanup of {instance_id}: {exc}")
        self.launched.clear()


def ssh(
    address: str, key: Path, command: str, user: str = "admin", check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess:
    """Run a command on a machine over SSH, as the user would."""
    result = subprocess.run(
        ["ssh", "-i", str(key), *SSH_OPTIONS, f"{user}@{address}", command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and result.returncode:
        raise AssertionError(f"ssh {address} {command!r} failed ({result.returncode}): {result.stderr}")
    return result


def wait_ssh(address: str, key: Path, timeout: float = 60, user: str = "admin") -> float:
    """Wait until SSH answers with the key; returns how long it took."""
    started = time.monotonic()
    while True:
        result = subprocess.run(
            ["ssh", "-i", str(key), *SSH_OPTIONS, f"{user}@{address}", "true"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if result.returncode == 0:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"SSH on {address} did not answer within {timeout} s: {result.stderr.strip()}")
        time.sleep(0.2)


def inventory_host(address: str, key: Path, user: str = "admin") -> dict:
    """The inventory variables with which ansible-playbook logs in to a machine as its user."""
    return {
        "ansible_host": address,
        "ansible_user": user,
        "ansible_ssh_private_key_file": str(key),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
    }


def run_playbook(
    playbook: Path | str, inventory: Path, *extra: str, timeout: float = 600
) -> subprocess.CompletedProcess:
    """ansible-playbook from the checkout (its ansible.cfg), as a user runs it; the playbook may be relative to it."""
    return subprocess.run(
        [str(REPO / ".venv/bin/ansible-playbook"), "-i", str(inventory), str(playbook), *extra],
        cwd=REPO,
        env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1"),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def serve_on_loopback(address: str, key: Path, port: int = 8887, program: str | None = None) -> None:
    """Start a web server on the machine's 127.0.0.1:port (a stand-in for a local-only service) and wait for it."""
    command = program or f"python3 -m http.server {port} --bind 127.0.0.1"
    ssh(address, key, f"sudo -n systemd-run --unit=loopback-{port} {command}")
    ssh(
        address,
        key,
        f"for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:{port}/ && exit 0; sleep 0.1; done; exit 1",
    )


LISTENER = (
    "import socket,sys\nserver=socket.socket();server.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
    "server.bind((sys.argv[1],int(sys.argv[2])));server.listen()\n"
    "while True:\n c,_=server.accept();c.sendall(b'hello\\n');c.close()"
)


@contextlib.contextmanager
def listening_host(name: str, address: str, ports: tuple[int, ...]) -> Iterator[str]:
    """A host of the test's own: a namespace holding `address`, routed from this host by a /32 only
    (no wider route, so nothing else changes its way), answering "hello" on each port."""
    host_end = f"{name[:11]}h"
    # The host end's own address (a /32 too) is the source of what this host sends there, NAT included.
    octets = address.split(".")
    host_address = ".".join([*octets[:3], "1" if octets[3] != "1" else "254"])
    commands = [
        ["ip", "netns", "add", name],
        ["ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", name],
        ["ip", "addr", "add", f"{host_address}/32", "dev", host_end],
        ["ip", "link", "set", host_end, "up"],
        ["ip", "route", "add", f"{address}/32", "dev", host_end],
        ["ip", "netns", "exec", name, "ip", "addr", "add", f"{address}/32", "dev", "eth0"],
        ["ip", "netns", "exec", name, "ip", "link", "set", "eth0", "up"],
        ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
        ["ip", "netns", "exec", name, "ip", "route", "add", "default", "dev", "eth0"],
    ]
    subprocess.run(["ip", "link", "del", host_end], capture_output=True)
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    listeners = []
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)
        for port in ports:
            listeners.append(
                subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-c", LISTENER, address, str(port)])
            )
        for port in ports:
            deadline = time.monotonic() + 10
            while True:
                try:
                    with socket.create_connection((address, port), timeout=1):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        yield address
    finally:
        for listener in listeners:
            listener.kill()
            listener.wait()
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def can_connect(address: str, key: Path, target: str, port: int) -> str:
    """What a machine gets when it opens a TCP connection to target:port (the greeting, or the error)."""
    probe = f"timeout 5 bash -c 'exec 3<>/dev/tcp/{target}/{port} && head -c 6 <&3' 2>&1; echo \" rc=$?\""
    return ssh(address, key, probe, check=False).stdout


def cloud_environment() -> dict[str, str]:
    """The environment of a local cloud started for tests: a first boot holds the package lock 10 s
    (60 s by default, as on a fresh cloud image) unless the caller says otherwise."""
    return dict(os.environ, LOCALCLOUD_FIRST_BOOT_SECONDS=os.environ.get("LOCALCLOUD_FIRST_BOOT_SECONDS", "10"))


def start_session_cloud(tmp: Path) -> tuple[Cloud, bool]:
    """Reuse the running local cloud or start one; returns it and whether this session started it."""
    settings = config.load()
    started = False
    if cli.health(settings) is None:
        result = subprocess.run(
            [sys.executable, "-m", "localcloud", "up"],
            cwd=REPO,
            env=cloud_environment(),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode:
            pytest.fail(f"localcloud up failed: {result.stderr}")
        started = True
    env = dict(line.removeprefix("export ").split("=", 1) for line in cli.env_text(settings).splitlines())
    return Cloud(settings=settings, env=env, tmp=tmp), started


def stop_session_cloud() -> None:
    subprocess.run([sys.executable, "-m", "localcloud", "down"], cwd=REPO, check=False)
