"""Host networking for local-cloud machines: one network namespace and veth pair per machine.

Inside a machine's namespace, eth0 holds the instance's private address and a default route via
the gateway address (169.254.1.1) that sits on the host end of the veth pair. The instance's
public addresses (auto-assigned or Elastic IPs, all from config.PUBLIC_POOL) are bound to the
namespace's loopback interface, and the host routes each one to the machine's veth, so the host
reaches a machine's SSH only on addresses inside namespaces the local cloud made. The whole pool
and the default VPC range carry `unreachable` routes on the host, so an address that is not in
use (a stopped machine's, say) is never sent towards the uplink.

Machines reach the outside only through NAT, only on the ports package registries use (HTTP and
HTTPS), and never to this host's own addresses and networks, loopback, private (RFC 1918),
link-local (another cloud's metadata service included), carrier-grade NAT, multicast or reserved
ranges (config.FORBIDDEN_DESTINATIONS); everything else they send off the host is rejected. They
do not reach the host itself at all: what they need from the local cloud (the metadata service,
the DNS resolver, the API) answers inside their own namespace (localcloud.host.guestnet). Their
IPv6 is off.

Inbound, each namespace enforces its instance's security groups as EC2 does: a new connection is
accepted only when an ingress rule of one of the instance's groups allows its protocol, port and
source (a CIDR, or the private address of an instance in a referenced group); everything else is
dropped silently, so a refused SSH times out as it does on AWS. Replies to the machine's own
connections always pass.
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Iterable
from pathlib import Path

from localcloud.config import (
    EGRESS_TCP_PORTS,
    FORBIDDEN_DESTINATIONS,
    GATEWAY,
    IMDS_ADDRESS,
    PRIVATE_GUARD,
    PUBLIC_POOL,
    RESOLVER_ADDRESS,
    SERVICES_ADDRESS,
)
from localcloud.errors import LocalCloudError

NETNS_PREFIX = "lcloud-"
VETH_PREFIX = "lcv"
CHAIN = "LOCALCLOUD"
INPUT_CHAIN = "LOCALCLOUD-IN"
MARK = "0x1c0/0xfff"
# Addresses every machine's namespace holds on its loopback, for the services served inside it.
GUEST_SERVICE_ADDRESSES = (IMDS_ADDRESS, RESOLVER_ADDRESS, SERVICES_ADDRESS)


def run(
    *argv: str, check: bool = True, namespace: str | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess:
    """Run a command on the host (or inside a namespace), raising with its output on failure."""
    if namespace:
        argv = ("ip", "netns", "exec", namespace, *argv)
    result = subprocess.run(argv, capture_output=True, text=True, check=False, input=stdin)
    if check and result.returncode:
        raise LocalCloudError(f"`{' '.join(argv)}` failed: {result.stderr.strip() or result.stdout.strip()}")
    return result


def names(instance_id: str) -> tuple[str, str]:
    """The namespace and host-side veth names of an instance (interface names have 15 characters)."""
    return NETNS_PREFIX + instance_id, VETH_PREFIX + instance_id.removeprefix("i-")[-12:]


def uplink_mtu() -> int:
    """The MTU of the interface behind the default route, so that NAT'd TLS does not stall."""
    route = run("ip", "-o", "route", "get", "1.1.1.1", check=False).stdout.split()
    if "dev" in route:
        mtu = Path(f"/sys/class/net/{route[route.index('dev') + 1]}/mtu")
        if mtu.exists():
            return int(mtu.read_text())
    return 1500


def iptables(*rule: str, table: str = "filter", check: bool = True) -> subprocess.CompletedProcess:
    """Run iptables against one table, waiting for the xtables lock."""
    return run("iptables", "-w", "-t", table, *rule, check=check)


def host_networks() -> list[ipaddress.IPv4Network]:
    """This host's own IPv4 addresses (as /32) and the networks they are on, machines' links aside."""
    found: list[ipaddress.IPv4Network] = []
    for line in run("ip", "-o", "-4", "addr", "show", check=False).stdout.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[1].startswith(VETH_PREFIX):
            continue
        interface = ipaddress.ip_interface(fields[3])
        for network in (ipaddress.ip_network(f"{interface.ip}/32"), interface.network):
            if network not in found:
                found.append(network)
    return found


def forbidden_destinations() -> list[ipaddress.IPv4Network]:
    """Everything machines may not send to: the fixed ranges and this host's own networks."""
    found = list(FORBIDDEN_DESTINATIONS)
    for network in sorted(host_networks(), key=lambda n: n.prefixlen):
        if not any(network.subnet_of(wide) for wide in found):
            found.append(network)
    return found


def forward_rules() -> list[tuple[str, ...]]:
    """The FORWARD rules of the local cloud's chain, in order."""
    veths = VETH_PREFIX + "+"
    rules: list[tuple[str, ...]] = [
        ("-o", veths, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"),
        # Machine to machine (public addresses, or private ones in the VPC), subject to their groups.
        ("-i", veths, "-o", veths, "-j", "ACCEPT"),
        ("-o", veths, "-j", "DROP"),
    ]
    rules += [
        ("-i", veths, "-d", str(network), "-j", "REJECT", "--reject-with", "icmp-admin-prohibited")
        for network in forbidden_destinations()
    ]
    ports = ",".join(str(port) for port in EGRESS_TCP_PORTS)
    rules += [
        ("-i", veths, "-p", "tcp", "-m", "multiport", "--dports", ports, "-j", "MARK", "--set-xmark", MARK),
        ("-i", veths, "-m", "mark", "--mark", MARK, "-j", "ACCEPT"),
        ("-i", veths, "-j", "REJECT", "--reject-with", "icmp-admin-prohibited"),
    ]
    return rules


def input_rules() -> list[tuple[str, ...]]:
    """The INPUT rules: machines reach nothing on the host (replies to the host's own connections pass)."""
    veths = VETH_PREFIX + "+"
    return [
        ("-i", veths, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"),
        ("-i", veths, "-j", "DROP"),
    ]


def setup_host() -> str:
    """Enable forwarding, add the filter, input and NAT chains and the guard routes. Returns the old ip_forward."""
    forward = Path("/proc/sys/net/ipv4/ip_forward")
    previous = forward.read_text().strip()
    teardown_rules()
    iptables("-N", CHAIN)
    for rule in forward_rules():
        iptables("-A", CHAIN, *rule)
    iptables("-I", "FORWARD", "1", "-j", CHAIN)
    iptables("-N", INPUT_CHAIN)
    for rule in input_rules():
        iptables("-A", INPUT_CHAIN, *rule)
    iptables("-I", "INPUT", "1", "-j", INPUT_CHAIN)
    iptables("-N", CHAIN, table="nat")
    iptables("-I", "POSTROUTING", "1", "-j", CHAIN, table="nat")
    iptables("-A", CHAIN, "-m", "mark", "--mark", MARK, "-j", "MASQUERADE", table="nat")
    for guard in (PUBLIC_POOL, PRIVATE_GUARD):
        run("ip", "route", "replace", "unreachable", str(guard))
    forward.write_text("1\n")
    return previous


def rules_in_force() -> dict[str, list[str]]:
    """The local cloud's rules as iptables lists them now (filter, input and nat chains)."""
    return {
        "forward": iptables("-S", CHAIN, check=False).stdout.splitlines(),
        "input": iptables("-S", INPUT_CHAIN, check=False).stdout.splitlines(),
        "nat": iptables("-S", CHAIN, table="nat", check=False).stdout.splitlines(),
    }


def teardown_rules() -> None:
    """Remove the local cloud's chains and guard routes (absent ones are fine)."""
    for table, hook, chain in (
        ("filter", "FORWARD", CHAIN),
        ("filter", "INPUT", INPUT_CHAIN),
        ("nat", "POSTROUTING", CHAIN),
    ):
        while iptables("-D", hook, "-j", chain, table=table, check=False).returncode == 0:
            pass
        iptables("-F", chain, table=table, check=False)
        iptables("-X", chain, table=table, check=False)
    for guard in (PUBLIC_POOL, PRIVATE_GUARD):
        run("ip", "route", "del", "unreachable", str(guard), check=False)


def restore_forwarding(previous: str) -> None:
    """Put ip_forward back to what it was before `up`."""
    if previous in ("0", "1"):
        Path("/proc/sys/net/ipv4/ip_forward").write_text(previous + "\n")


def create(instance_id: str, private_ip: str, prefix_len: int) -> str:
    """Create the namespace and veth pair of a machine; returns the namespace's name."""
    namespace, veth = names(instance_id)
    destroy(instance_id)
    mtu = str(uplink_mtu())
    run("ip", "netns", "add", namespace)
    # IPv6 off inside, before any interface comes up: no link-local address to reach anything with.
    run(
        "sysctl",
        "-q",
        "-w",
        "net.ipv6.conf.all.disable_ipv6=1",
        "net.ipv6.conf.default.disable_ipv6=1",
        namespace=namespace,
    )
    run("ip", "link", "add", veth, "mtu", mtu, "type", "veth", "peer", "name", "eth0", "mtu", mtu, "netns", namespace)
    Path(f"/proc/sys/net/ipv6/conf/{veth}/disable_ipv6").write_text("1\n")
    run("ip", "addr", "add", f"{GATEWAY}/32", "dev", veth)
    run("ip", "link", "set", veth, "up")
    run("ip", "route", "replace", f"{private_ip}/32", "dev", veth)
    run("ip", "link", "set", "lo", "up", namespace=namespace)
    for address in GUEST_SERVICE_ADDRESSES:
        run("ip", "addr", "add", f"{address}/32", "dev", "lo", namespace=namespace)
    run("ip", "addr", "add", f"{private_ip}/{prefix_len}", "dev", "eth0", namespace=namespace)
    run("ip", "link", "set", "eth0", "up", namespace=namespace)
    run("ip", "route", "add", str(GATEWAY), "dev", "eth0", "scope", "link", namespace=namespace)
    run("ip", "route", "add", "default", "via", str(GATEWAY), "dev", "eth0", "onlink", namespace=namespace)
    return namespace


def public_addresses(instance_id: str) -> set[str]:
    """The public addresses bound inside a machine's namespace now."""
    namespace, _ = names(instance_id)
    out = run("ip", "-o", "-4", "addr", "show", "dev", "lo", namespace=namespace, check=False).stdout
    found = set()
    for line in out.splitlines():
        address = line.split()[3].split("/")[0]
        if ipaddress.ip_address(address) in PUBLIC_POOL:
            found.add(address)
    return found


def set_public_addresses(instance_id: str, wanted: Iterable[str]) -> None:
    """Bind exactly these public addresses to the machine, and route them to it from the host."""
    namespace, veth = names(instance_id)
    wanted = set(wanted)
    current = public_addresses(instance_id)
    for address in current - wanted:
        run("ip", "addr", "del", f"{address}/32", "dev", "lo", namespace=namespace, check=False)
        run("ip", "route", "del", f"{address}/32", "dev", veth, check=False)
    for address in wanted - current:
        if ipaddress.ip_address(address) not in PUBLIC_POOL:
            raise LocalCloudError(f"refusing to route {address}: it is outside {PUBLIC_POOL}")
        run("ip", "addr", "add", f"{address}/32", "dev", "lo", namespace=namespace)
        run("ip", "route", "replace", f"{address}/32", "dev", veth)


IngressRule = tuple[str, int | None, int | None, str]


def ingress_ruleset(rules: Iterable[IngressRule]) -> str:
    """iptables-restore input that admits exactly these (protocol, from port, to port, source) rules."""
    lines = [
        "*filter",
        ":INPUT ACCEPT [0:0]",
        f":{CHAIN}-SG - [0:0]",
        f"-A INPUT -j {CHAIN}-SG",
        f"-A {CHAIN}-SG -i lo -j RETURN",
        f"-A {CHAIN}-SG -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN",
    ]
    for protocol, low, high, source in sorted(set(rules), key=str):
        match = f"-s {source}"
        if protocol in ("tcp", "udp"):
            match += f" -p {protocol} -m {protocol} --dport {low}:{high}"
        elif protocol == "icmp":
            match += " -p icmp"
        lines.append(f"-A {CHAIN}-SG {match} -j RETURN")
    lines += [f"-A {CHAIN}-SG -j DROP", "COMMIT", ""]
    return "\n".join(lines)


def set_ingress(instance_id: str, ruleset: str) -> None:
    """Replace the inbound filter inside a machine's namespace."""
    namespace, _ = names(instance_id)
    run("iptables-restore", namespace=namespace, stdin=ruleset)


def destroy(instance_id: str) -> None:
    """Remove a machine's namespace and veth pair (and with them its routes)."""
    namespace, veth = names(instance_id)
    run("ip", "link", "del", veth, check=False)
    run("ip", "netns", "del", namespace, check=False)


def leftovers() -> tuple[list[str], list[str]]:
    """Namespaces and links of the local cloud that exist on the host now."""
    namespaces = [
        line.split()[0]
        for line in run("ip", "netns", "list", check=False).stdout.splitlines()
        if line.startswith(NETNS_PREFIX)
    ]
    links = [
        line.split(":")[1].strip().split("@")[0]
        for line in run("ip", "-o", "link", "show", check=False).stdout.splitlines()
        if line.split(":")[1].strip().startswith(VETH_PREFIX)
    ]
    return namespaces, links


def remove_all() -> None:
    """Remove every namespace and link the local cloud made, and its rules."""
    namespaces, links = leftovers()
    for link in links:
        run("ip", "link", "del", link, check=False)
    for namespace in namespaces:
        run("ip", "netns", "del", namespace, check=False)
    teardown_rules()
