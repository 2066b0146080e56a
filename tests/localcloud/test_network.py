"""Networking of the local cloud: what the host can reach, and what machines can reach."""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import urllib.parse
from collections.abc import Iterator

import pytest

from localcloud.config import GATEWAY, PUBLIC_POOL
from localcloud.host import network
from tests.localcloud_harness import Cloud, can_connect, listening_host, serve_on_loopback, ssh, wait_ssh

OUTSIDE = "203.0.113.77"
TTL = "X-aws-ec2-metadata-token-ttl-seconds"


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
    with listening_host("lctest-outside", OUTSIDE, (443, 2222)) as address:
        yield address


def test_machines_may_not_open_other_ports_to_the_outside(cloud: Cloud, outside_host: str) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    instance = cloud.launch(ec2, key_name=key_name)
    wait_ssh(instance["PublicIpAddress"], key)
    with socket.create_connection((outside_host, 2222), timeout=5) as direct:
        assert direct.recv(6) == b"hello\n", "the test host answers on 2222 from the host itself"
    allowed = can_connect(instance["PublicIpAddress"], key, outside_host, 443)
    refused = can_connect(instance["PublicIpAddress"], key, outside_host, 2222)
    assert "hello" in allowed, allowed
    assert "hello" not in refused and "rc=0" not in refused, refused


def test_the_egress_rules_in_force_refuse_every_private_range_and_the_host(cloud: Cloud) -> None:
    rules = network.rules_in_force()
    rejected = {line.split("-d ")[1].split()[0] for line in rules["forward"] if "-d " in line and "REJECT" in line}
    for network_range in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "169.254.0.0/16",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "224.0.0.0/4",
    ):
        assert network_range in rejected, f"machines may send to {network_range}: {rules['forward']}"
    for own in network.host_networks():
        assert any(ipaddress.ip_network(own).subnet_of(ipaddress.ip_network(r)) for r in rejected), own
    accepted_ports = [line for line in rules["forward"] if "--dports" in line]
    assert accepted_ports and all("--dports 80,443 " in line for line in accepted_ports), accepted_ports
    assert rules["forward"][-1].endswith("-j REJECT --reject-with icmp-admin-prohibited"), "anything else is refused"
    assert rules["input"][-1] == f"-A {network.INPUT_CHAIN} -i {network.VETH_PREFIX}+ -j DROP"


def test_a_machine_cannot_reach_a_private_address(cloud: Cloud) -> None:
    """A private listener of the test's own, which this host itself reaches: a machine may not."""
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    instance = cloud.launch(ec2, key_name=key_name)
    wait_ssh(instance["PublicIpAddress"], key)
    with listening_host("lctest-private", "10.99.7.2", (443,)) as private:
        with socket.create_connection((private, 443), timeout=5) as direct:
            assert direct.recv(6) == b"hello\n"
        answer = can_connect(instance["PublicIpAddress"], key, private, 443)
    assert "hello" not in answer and "rc=0" not in answer, answer


def test_a_machine_reaches_nothing_on_the_host_but_the_services_inside_its_namespace(cloud: Cloud) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    instance = cloud.launch(ec2, key_name=key_name)
    address = instance["PublicIpAddress"]
    wait_ssh(address, key)
    with socket.create_server(("0.0.0.0", 0)) as listener:
        port = listener.getsockname()[1]
        answer = can_connect(address, key, str(GATEWAY), port)
    assert "rc=0" not in answer, f"a listener on all of the host's addresses answered the machine: {answer}"
    api_port = urllib.parse.urlparse(cloud.settings.endpoint).port
    assert "rc=0" not in can_connect(address, key, str(GATEWAY), api_port), "the API is not reached on the host"
    # What the machine does reach: its resolver, its metadata service and the API, all inside its namespace.
    looked_up = ssh(address, key, "getent hosts pypi.org", check=False).stdout
    assert "pypi.org" in looked_up, looked_up
    assert ssh(address, key, "curl -s -o /dev/null -w '%{http_code}' http://169.254.169.252/").stdout == "403"
    token = ssh(address, key, f"curl -s -X PUT -H '{TTL}: 60' http://169.254.169.254/latest/api/token").stdout
    assert len(token) > 20


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
