"""Networking of the local cloud: what the host can reach, and what machines can reach."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator

import pytest

from localcloud.config import PUBLIC_POOL
from localcloud.host import network
from tests.localcloud_harness import Cloud, serve_on_loopback, ssh, wait_ssh

OUTSIDE = "203.0.113.77"


def route_of(address: str) -> str:
    """How the host would route a packet to the address (or why it would not)."""
    result = subprocess.run(["ip", "-o", "route", "get", address], capture_output=True, text=True)
    return result.stdout + result.stderr


def test_public_addresses_route_only_into_the_machines_namespaces(cloud: Cloud) -> None:
    instance = cloud.launch()
    address = instance["PublicIpAddress"]
    _, veth = network.names(instance["InstanceId"])
    assert f"dev {veth}" in route_of(address)
    in_use = {a for row in cloud.status()["instances"] for a in row["public_ips"]}
    unused = next(str(a) for a in reversed(list(PUBLIC_POOL.hosts())) if str(a) not in in_use)
    assert "no route to host" in route_of(unused).lower(), "an unused pool address never leaves the host"
    with pytest.raises(OSError) as refused:
        socket.create_connection((unused, 22), timeout=3)
    assert refused.value.errno in (113, 101), "the host refuses at once: nothing is sent"


def test_machines_reach_the_package_registries_and_trust_the_hosts_cas(cloud: Cloud) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    instance = cloud.launch(ec2, key_name=key_name)
    wait_ssh(instance["PublicIpAddress"], key)
    codes = ssh(
        instance["PublicIpAddress"],
        key,
        "curl -sS -o /dev/null -w '%{http_code} ' https://pypi.org/simple/pip/;"
        "curl -sS -o /dev/null -w '%{http_code}' http://deb.debian.org/debian/dists/bookworm/InRelease",
    ).stdout.split()
    assert codes == ["200", "200"]


@pytest.fixture
def outside_host() -> Iterator[str]:
    """A host outside the local cloud, in a namespace this test makes: listens on 443 and 2222."""
    name, host_end = "lctest-outside", "lctestout0"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    commands = [
        ["ip", "netns", "add", name],
        ["ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", name],
        ["ip", "addr", "add", "203.0.113.1/24", "dev", host_end],
        ["ip", "link", "set", host_end, "up"],
        ["ip", "netns", "exec", name, "ip", "addr", "add", f"{OUTSIDE}/24", "dev", "eth0"],
        ["ip", "netns", "exec", name, "ip", "link", "set", "eth0", "up"],
        ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
        ["ip", "netns", "exec", name, "ip", "route", "add", "default", "via", "203.0.113.1"],
    ]
    listeners = []
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)
        for port in (443, 2222):
            listeners.append(
                subprocess.Popen(
                    [
                        "ip",
                        "netns",
                        "exec",
                        name,
                        "python3",
                        "-c",
                        "import socket,sys\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                        f"s.bind(('{OUTSIDE}',{port}));s.listen()\n"
                        "while True:\n c,_=s.accept();c.sendall(b'hello\\n');c.close()",
                    ]
                )
            )
        yield OUTSIDE
    finally:
        for listener in listeners:
            listener.kill()
            listener.wait()
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_machines_may_not_open_other_ports_to_the_outside(cloud: Cloud, outside_host: str) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    instance = cloud.launch(ec2, key_name=key_name)
    wait_ssh(instance["PublicIpAddress"], key)
    with socket.create_connection((outside_host, 2222), timeout=5) as direct:
        assert direct.recv(6) == b"hello\n", "the test host answers on 2222 from the host itself"
    probe = "timeout 5 bash -c 'exec 3<>/dev/tcp/{0}/{1} && head -c 6 <&3' 2>&1; echo \" rc=$?\""
    allowed = ssh(instance["PublicIpAddress"], key, probe.format(outside_host, 443), check=False).stdout
    refused = ssh(instance["PublicIpAddress"], key, probe.format(outside_host, 2222), check=False).stdout
    assert "hello" in allowed, allowed
    assert "hello" not in refused and "rc=0" not in refused, refused


def test_the_host_reaches_a_machines_ssh_but_not_its_other_ports(cloud: Cloud) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    instance = cloud.launch(ec2, key_name=key_name)
    address = instance["PublicIpAddress"]
    wait_ssh(address, key)
    serve_on_loopback(address, key, 8887)
    with pytest.raises(OSError):
        socket.create_connection((address, 8887), timeout=3).close()


def test_security_groups_decide_who_reaches_the_machine(cloud: Cloud) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    group_id = cloud.ssh_group(ec2)
    instance = cloud.launch(ec2, key_name=key_name, SecurityGroupIds=[group_id])
    address = instance["PublicIpAddress"]
    wait_ssh(address, key)
    ec2.revoke_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "169.254.1.1/32"}]}],
    )
    ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "192.0.2.99/32"}]}],
    )
    with pytest.raises(OSError):
        socket.create_connection((address, 22), timeout=3).close()  # dropped: the host is not 192.0.2.99
    ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "169.254.0.0/16"}]}],
    )
    wait_ssh(address, key, timeout=20)


def test_an_instance_without_a_group_follows_the_vpcs_default_group(cloud: Cloud) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    instance = cloud.launch(ec2, key_name=key_name, SecurityGroupIds=[])
    address = instance["PublicIpAddress"]
    default_group = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["default"]}, {"Name": "vpc-id", "Values": [instance["VpcId"]]}]
    )["SecurityGroups"][0]["GroupId"]
    with pytest.raises(OSError):
        socket.create_connection((address, 22), timeout=3).close()
    rule = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "169.254.1.1/32"}]}]
    ec2.authorize_security_group_ingress(GroupId=default_group, IpPermissions=rule)
    try:
        wait_ssh(address, key, timeout=20)
    finally:
        ec2.revoke_security_group_ingress(GroupId=default_group, IpPermissions=rule)
