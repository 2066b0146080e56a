"""The controller: keeps real machines, disks and addresses in step with the EC2 API's state.

moto holds the API state. The patches in localcloud.api call the hooks here when a request
changes something that has a physical side (an instance starts, a volume is attached, an image
is created); the hooks set the transitional state at once (pending, stopping, shutting-down) and
queue the slow work. Work for one instance runs in order on that instance's own queue, so a stop
that follows a start waits for the boot; work for different instances runs in parallel.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import itertools
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from localcloud.config import IMDS_ADDRESS, PUBLIC_POOL, RESOLVER_ADDRESS, SERVICES_ADDRESS, Settings
from localcloud.errors import LocalCloudError
from localcloud.host import disks, guestnet, imds, machines, network
from localcloud.metadata import InstanceMetadata, user_data

log = logging.getLogger(__name__)

# How long EC2 takes to give up a launch, start or volume it cannot make (a key it may not use):
# the instance shows `pending` (the volume `creating`) for about this long.
LAUNCH_FAILURE_SECONDS = 2.0
# How long a copy waits for its source snapshot to be complete.
SNAPSHOT_WAIT_SECONDS = 600.0

STATE_CODES = {
    "pending": 0,
    "running": 16,
    "shutting-down": 32,
    "terminated": 48,
    "stopping": 64,
    "stopped": 80,
}


def ec2_backends() -> Iterator[Any]:
    """Every EC2 backend (one per account and region) that moto has created so far."""
    from moto.ec2.models import ec2_backends as backends

    for regions in list(backends.values()):
        yield from list(regions.values())


def set_state(instance: Any, name: str, reason: str | None = None) -> None:
    """Set an instance's state the way EC2 reports it."""
    instance._state.name = name
    instance._state.code = STATE_CODES[name]
    if reason is not None:
        set_reason(instance, reason)


def set_reason(instance: Any, reason: str) -> None:
    """Set why an instance is in its state ("Code: message", as EC2's StateReason)."""
    from moto.ec2.models.instances import StateReason

    instance.state_reason = StateReason(reason, reason.split(":")[0])
    instance._reason = reason


class AddressPool:
    """Public addresses from config.PUBLIC_POOL, handed out in turn so that a new one differs."""

    def __init__(self) -> None:
        hosts = [str(a) for a in PUBLIC_POOL.hosts()][9:]
        self.cycle = itertools.cycle(hosts)
        self.size = len(hosts)
        self.lock = threading.Lock()

    @staticmethod
    def in_use() -> set[str]:
        """Every public address some instance or Elastic IP holds now."""
        used = set()
        for backend in ec2_backends():
            used.update(a.public_ip for a in backend.addresses)
            for eni in backend.enis.values():
                if eni.public_ip:
                    used.add(eni.public_ip)
        return used

    def allocate(self) -> str:
        """The next free address of the pool."""
        with self.lock:
            used = self.in_use()
            for _ in range(self.size):
                address = next(self.cycle)
                if address not in used:
                    return address
        raise LocalCloudError(f"the local cloud's public address pool {PUBLIC_POOL} is exhausted")


class LocalCloud:
    """Real machines behind moto's EC2 state."""

    def __init__(self, settings: Settings, with_machines: bool = True):
        self.settings = settings
        self.with_machines = with_machines
        self.addresses = AddressPool()
        self.store = disks.DiskStore(settings.volumes, settings.snapshots)
        self.machines: dict[str, machines.Machine] = {}
        self.queues: dict[str, ThreadPoolExecutor] = {}
        self.general = ThreadPoolExecutor(max_workers=4, thread_name_prefix="localcloud")
        self.volume_owner: dict[str, str] = {}
        # What each running machine's namespace has now, so that the check after every API
        # request costs no process when nothing changed.
        self.ingress: dict[str, str] = {}
        self.bound: dict[str, set[str]] = {}
        self.network_lock = threading.Lock()
        self.base_rootfs: Path | None = None
        # What answers inside each running machine's namespace (metadata, resolver, API).
        self.guest_services: dict[str, list[guestnet.Service]] = {}
        # Makes the server of the local cloud's API on a socket inside a namespace (set by the
        # process that serves the API; without it machines get no API endpoint).
        self.serve_api: Callable[[Any], Any] | None = None
        self.resolvers = guestnet.host_resolvers()
        self.lock = threading.RLock()
        self.pending: set[Future] = set()
        self.closing = False

    # ---- queues -------------------------------------------------------------------------

    def queue(self, key: str, work: Callable[[], None], what: str) -> Future:
        """Run work after everything queued before it for the same instance."""
        with self.lock:
            executor = self.queues.get(key)
            if executor is None:
                executor = self.queues[key] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=key)
            return self.track(executor.submit(self.guarded, work, what))

    def background(self, work: Callable[[], None], what: str) -> Future:
        """Run work that belongs to no instance (snapshot copies and deletions)."""
        with self.lock:
            return self.track(self.general.submit(self.guarded, work, what))

    def track(self, future: Future) -> Future:
        self.pending.add(future)
        future.add_done_callback(self.pending.discard)
        return future

    @staticmethod
    def guarded(work: Callable[[], None], what: str) -> None:
        """Run a piece of queued work, logging (not losing) its failure."""
        try:
            work()
        except Exception:
            log.exception("%s failed", what)

    def idle(self, timeout: float = 600.0) -> None:
        """Wait until every queued piece of work has run (for tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            with self.lock:
                waiting = list(self.pending)
            concurrent.futures.wait(waiting, timeout=max(0.0, deadline - time.monotonic()))

    # ---- instance hooks (called from API requests) ------------------------------------------

    def instance_launched(self, instance: Any) -> None:
        set_state(instance, "pending")
        self.queue(instance.id, lambda: self.boot(instance, fresh_instance_store=True), f"boot {instance.id}")

    def instance_starting(self, instance: Any) -> None:
        set_state(instance, "pending")
        self.queue(instance.id, lambda: self.boot(instance, fresh_instance_store=True), f"start {instance.id}")

    def instance_stopping(self, instance: Any) -> None:
        set_state(instance, "stopping")
        self.queue(instance.id, lambda: self.power_off(instance), f"stop {instance.id}")

    def instance_rebooting(self, instance: Any) -> None:
        machine = self.machines.get(instance.id)
        if machine is not None:
            self.queue(instance.id, machine.reboot, f"reboot {instance.id}")

    def instance_terminating(self, instance: Any) -> None:
        """Queue the power-off before moto's teardown queues the volume deletions."""
        self.queue(instance.id, lambda: self.power_off(instance, final=True), f"terminate {instance.id}")

    def instance_terminated(self, instance: Any) -> None:
        set_state(instance, "shutting-down")
        self.queue(instance.id, lambda: self.finish_termination(instance), f"terminate {instance.id}")

    def instance_launch_failed(self, instance: Any, reason: str) -> None:
        """A launch EC2 cannot carry out (a key it may not use): pending, then terminated; no machine boots."""

        def terminate() -> None:
            # The volumes were never made for the instance, so none is left behind.
            for _, mapping in instance.get_block_device_mapping:
                mapping.delete_on_termination = True
            instance.disable_api_termination = False
            instance.ec2_backend.terminate_instances([instance.id])

        self.give_up(instance, reason, terminate, "failed launch")

    def instance_start_failed(self, instance: Any, reason: str) -> None:
        """A start EC2 cannot carry out: pending, then stopped again; the machine does not boot."""
        self.give_up(instance, reason, instance.stop, "failed start")

    def give_up(self, instance: Any, reason: str, end: Callable[[], Any], what: str) -> None:
        """Show the instance pending for a moment, then end it through the API's own stop or
        terminate (as machine_exited does) with EC2's state reason."""
        set_state(instance, "pending")

        def work() -> None:
            time.sleep(LAUNCH_FAILURE_SECONDS)
            if instance.state == "pending":
                end()
                set_reason(instance, reason)

        self.queue(instance.id, work, f"{what} {instance.id}")

    # ---- volume and snapshot hooks -------------------------------------------------------

    def volume_attached(self, volume: Any, instance: Any, device_name: str) -> None:
        self.volume_owner[volume.id] = instance.id
        if device_name == instance.root_device_name:
            return
        self.queue(instance.id, lambda: self.hot_attach(instance, volume, device_name), f"attach {volume.id}")

    def volume_detached(self, volume: Any, instance: Any) -> None:
        machine = self.machines.get(instance.id)
        if machine is not None:
            self.queue(
                instance.id, lambda: machine.hot_detach(volume.id) if machine.running else None, f"detach {volume.id}"
            )

    def volume_deleted(self, volume_id: str) -> None:
        owner = self.volume_owner.pop(volume_id, None)
        work = lambda: self.store.delete_volume(volume_id)  # noqa: E731
        if owner:
            self.queue(owner, work, f"delete {volume_id}")
        else:
            self.background(work, f"delete {volume_id}")

    def snapshot_requested(self, snapshot: Any, volume: Any) -> None:
        """CreateSnapshot: copy the volume's data, then mark the snapshot completed."""
        snapshot.status = "pending"

        def copy() -> None:
            try:
                self.store.snapshot_volume(volume.id, snapshot.id)
                snapshot.status = "completed"
            except Exception:
                snapshot.status = "error"
                raise

        owner = self.volume_owner.get(volume.id)
        if owner:
            self.queue(owner, copy, f"snapshot {volume.id}")
        else:
            self.background(copy, f"snapshot {volume.id}")

    def snapshot_copied(self, source_id: str, snapshot: Any) -> None:
        snapshot.status = "pending"

        def copy() -> None:
            self.store.copy_snapshot(source_id, snapshot.id)
            snapshot.status = "completed"

        self.background(copy, f"copy {source_id}")

    def volume_creation_failed(self, volume: Any) -> None:
        """A volume EBS cannot make: `creating` for a moment, then gone from the API."""
        volume.localcloud_state = "creating"

        def vanish() -> None:
            time.sleep(LAUNCH_FAILURE_SECONDS)
            volume.ec2_backend.volumes.pop(volume.id, None)
            self.store.delete_volume(volume.id)

        self.background(vanish, f"failed volume {volume.id}")

    def snapshot_deleted(self, snapshot_id: str) -> None:
        self.background(lambda: self.store.delete_snapshot(snapshot_id), f"delete {snapshot_id}")

    def image_requested(self, ami: Any, instance: Any, pairs: list[tuple[Any, Any]], no_reboot: bool) -> None:
        """CreateImage: snapshot every volume (stopping a running machine unless no_reboot)."""
        ami.state = "pending"

        def create() -> None:
            machine = self.machines.get(instance.id)
            restart = machine is not None and machine.running and not no_reboot
            try:
                if restart:
                    machine.poweroff()
                    self.remove_network(instance.id)
                for snapshot, volume in pairs:
                    self.store.snapshot_volume(volume.id, snapshot.id)
                    snapshot.status = "completed"
                ami.state = "available"
            except Exception:
                ami.state = "failed"
                raise
            finally:
                if restart:
                    self.boot(instance, fresh_instance_store=False)

        self.queue(instance.id, create, f"create image {ami.id}")

    def image_copied(self, ami: Any, pairs: list[tuple[Any, Any]], usable: bool) -> None:
        """CopyImage: copy every snapshot's data once the source's is complete; `failed` without its keys."""
        ami.state = "pending"
        for snapshot, _ in pairs:
            snapshot.status = "pending"

        def copy() -> None:
            if not usable:
                time.sleep(LAUNCH_FAILURE_SECONDS)
                log.info("copy %s failed: the account may not use a key of the source or of the copy", ami.id)
                ami.state = "failed"
                for snapshot, _ in pairs:
                    snapshot.status = "error"
                return
            try:
                for snapshot, source in pairs:
                    deadline = time.monotonic() + SNAPSHOT_WAIT_SECONDS
                    while source.status == "pending" and time.monotonic() < deadline:
                        time.sleep(0.2)
                    if source.status != "completed":
                        raise LocalCloudError(f"source snapshot {source.id} of {ami.id} is {source.status}")
                    self.store.copy_snapshot(source.id, snapshot.id)
                    snapshot.status = "completed"
                ami.state = "available"
            except Exception:
                ami.state = "failed"
                for snapshot, _ in pairs:
                    if snapshot.status == "pending":
                        snapshot.status = "error"
                raise

        self.background(copy, f"copy image {ami.id}")

    # ---- machine work (runs on the instance's queue) ----------------------------------------

    def boot(self, instance: Any, fresh_instance_store: bool) -> None:
        """Make the instance's disks, network and container, and boot it."""
        if self.closing or instance.state in ("terminated", "shutting-down"):
            return
        if not self.with_machines:
            set_state(instance, "running")
            return
        try:
            self.start_machine(instance, fresh_instance_store)
        except Exception as exc:
            log.exception("could not boot %s", instance.id)
            self.remove_network(instance.id)
            set_state(instance, "stopped", f"Server.InternalError: {exc}".splitlines()[0][:250])
            return
        set_state(instance, "running")

    def start_machine(self, instance: Any, fresh_instance_store: bool) -> None:
        backend = instance.ec2_backend
        workdir = self.settings.machines / instance.id
        machine = self.machines.get(instance.id)
        if machine is None:
            machine = self.machines[instance.id] = machines.Machine(instance.id, workdir, self.machine_exited)
        if machine.running:
            return
        root = instance.block_device_mapping.get(instance.root_device_name)
        if root is None:
            raise LocalCloudError(f"{instance.id} has no root volume at {instance.root_device_name}")
        root_volume = backend.get_volume(root.volume_id)
        tree = self.store.materialise_root(root_volume.id, root_volume.snapshot_id)
        devices = []
        index = 1
        for device_name, mapping in sorted(instance.get_block_device_mapping):
            if device_name == instance.root_device_name:
                continue
            volume = backend.get_volume(mapping.volume_id)
            self.volume_owner[volume.id] = instance.id
            image = self.store.materialise_block(volume.id, volume.size, volume.snapshot_id)
            devices.append(machines.ebs_device(volume.id, device_name, index, image))
            index += 1
        for disk, size in enumerate(instance_store_sizes(instance.instance_type)):
            image = workdir / f"instance-store{disk}.img"
            if fresh_instance_store or not image.exists():
                image.unlink(missing_ok=True)
                with open(image, "wb") as handle:
                    handle.truncate(size * 1024**3)
            devices.append(machines.instance_store_device(instance.id, disk, index, image))
            index += 1
        subnet = backend.get_subnet(instance.subnet_id)
        prefix = ipaddress.ip_network(subnet.cidr_block).prefixlen
        # sync_network leaves this machine alone until it runs, so no lock is held here.
        namespace = network.create(instance.id, instance.private_ip, prefix)
        self.start_guest_services(instance, namespace)
        self.bound[instance.id] = public_addresses(instance)
        network.set_public_addresses(instance.id, self.bound[instance.id])
        self.ingress[instance.id] = network.ingress_ruleset(ingress_rules(instance))
        network.set_ingress(instance.id, self.ingress[instance.id])
        meta = {
            "instance_id": instance.id,
            "hostname": "ip-" + instance.private_ip.replace(".", "-"),
            "public_keys": public_keys(instance),
            "instance_type": instance.instance_type,
            "region": backend.region_name,
            "first_boot_seconds": self.settings.first_boot_seconds,
        }
        machine.boot(tree, namespace, meta, user_data(instance), devices)

    def start_guest_services(self, instance: Any, namespace: str) -> None:
        """The metadata service, the resolver and the API endpoint inside the machine's namespace."""
        self.stop_guest_services(instance.id)
        services: list[guestnet.Service] = [
            guestnet.HttpService(
                namespace,
                str(IMDS_ADDRESS),
                80,
                guestnet.handler_server(imds.Handler, (InstanceMetadata(instance), imds.Tokens())),
            ),
            guestnet.Resolver(namespace, str(RESOLVER_ADDRESS), self.resolvers),
        ]
        if self.serve_api is not None:
            services.append(guestnet.HttpService(namespace, str(SERVICES_ADDRESS), 80, self.serve_api))
        self.guest_services[instance.id] = services

    def stop_guest_services(self, instance_id: str) -> None:
        for service in self.guest_services.pop(instance_id, []):
            try:
                service.stop()
            except Exception:
                log.exception("could not stop a guest service of %s", instance_id)

    def hot_attach(self, instance: Any, volume: Any, device_name: str) -> None:
        machine = self.machines.get(instance.id)
        if machine is None or not machine.running:
            return
        image = self.store.materialise_block(volume.id, volume.size, volume.snapshot_id)
        index = 1 + max((int(d.node.removeprefix("/dev/nvme").removesuffix("n1")) for d in machine.devices), default=0)
        machine.hot_attach(machines.ebs_device(volume.id, device_name, index, image))

    def power_off(self, instance: Any, final: bool = False) -> None:
        """Shut the machine down and remove its network; a stop ends in `stopped`."""
        machine = self.machines.get(instance.id)
        if machine is not None:
            machine.poweroff(timeout=machines.TERMINATE_TIMEOUT if final else machines.STOP_TIMEOUT)
        self.remove_network(instance.id)
        if not final and instance.state == "stopping":
            set_state(instance, "stopped")

    def finish_termination(self, instance: Any) -> None:
        """After the power-off and the volume deletions: forget the machine."""
        machine = self.machines.pop(instance.id, None)
        if machine is not None and not machine.root.is_mount():
            shutil.rmtree(machine.workdir, ignore_errors=True)
        set_state(instance, "terminated")

    def machine_exited(self, instance_id: str, how: str) -> None:
        """A container ended: restart it after a reboot, or follow the shutdown behaviour."""
        instance = find_instance(instance_id)
        if instance is None or self.closing or how == "stopped":
            return
        if how == "rebooted":
            self.queue(instance_id, lambda: self.boot(instance, fresh_instance_store=False), f"reboot {instance_id}")
            return
        # The instance goes through the API's own stop or terminate, as on EC2; its machine is
        # already off, so the queued power-off only removes the network.
        reason = "Client.InstanceInitiatedShutdown: Instance initiated shutdown"
        if instance.instance_initiated_shutdown_behavior == "terminate":
            instance.ec2_backend.terminate_instances([instance_id])
            set_reason(instance, reason)
        else:
            instance.stop()
            set_reason(instance, reason)

    # ---- addresses --------------------------------------------------------------------------

    def sync_network(self) -> None:
        """Apply every running machine's public addresses and security groups (after a request)."""
        with self.network_lock:
            for instance_id, machine in list(self.machines.items()):
                instance = find_instance(instance_id)
                if instance is None or not machine.running or instance_id not in self.bound:
                    continue
                wanted = public_addresses(instance)
                if wanted != self.bound[instance_id]:
                    network.set_public_addresses(instance_id, wanted)
                    self.bound[instance_id] = wanted
                ruleset = network.ingress_ruleset(ingress_rules(instance))
                if ruleset != self.ingress.get(instance_id):
                    network.set_ingress(instance_id, ruleset)
                    self.ingress[instance_id] = ruleset

    def remove_network(self, instance_id: str) -> None:
        """Delete a machine's namespace and routes (once it is off), and what was recorded about them."""
        self.bound.pop(instance_id, None)
        self.ingress.pop(instance_id, None)
        self.stop_guest_services(instance_id)
        network.destroy(instance_id)

    # ---- shutting down ----------------------------------------------------------------------

    def shutdown(self) -> None:
        """Power every machine off and remove its network (the API goes away with the process)."""
        self.closing = True
        for instance_id, machine in list(self.machines.items()):
            machine.poweroff(timeout=30)
            self.stop_guest_services(instance_id)
            network.destroy(instance_id)
        for executor in list(self.queues.values()):
            executor.shutdown(wait=False, cancel_futures=True)
        self.general.shutdown(wait=False, cancel_futures=True)

    def status(self) -> list[dict[str, Any]]:
        """Every instance the API knows, with its machine and addresses."""
        rows = []
        for backend in ec2_backends():
            for instance in backend.all_instances():
                machine = self.machines.get(instance.id)
                rows.append(
                    {
                        "instance_id": instance.id,
                        "account": backend.account_id,
                        "region": backend.region_name,
                        "state": instance.state,
                        "name": next((t["value"] for t in instance.get_tags() if t["key"] == "Name"), ""),
                        "type": instance.instance_type,
                        "private_ip": instance.private_ip,
                        "public_ips": sorted(public_addresses(instance)),
                        "machine": "running" if machine is not None and machine.running else "off",
                        "pid": machine.process.pid if machine is not None and machine.running else None,
                    }
                )
        return rows


def find_instance(instance_id: str) -> Any | None:
    """An instance by ID, in whichever account and region it lives."""
    for backend in ec2_backends():
        for reservation in list(backend.reservations.values()):
            for instance in reservation.instances:
                if instance.id == instance_id:
                    return instance
    return None


def public_addresses(instance: Any) -> set[str]:
    """The public addresses EC2 says the instance has now."""
    return {nic.public_ip for nic in instance.nics.values() if nic.public_ip}


def ingress_rules(instance: Any) -> list[network.IngressRule]:
    """The (protocol, from port, to port, source CIDR) rules of the instance's security groups."""
    groups = {g.id: g for nic in instance.nics.values() for g in nic.group_set}
    groups.update({g.id: g for g in instance.security_groups})
    if not groups:
        # EC2 puts an instance launched without a group into its VPC's default group.
        default = instance.ec2_backend.get_security_group_from_name("default", vpc_id=instance.vpc_id)
        if default is not None:
            groups[default.id] = default
    rules: list[network.IngressRule] = []
    for group in groups.values():
        for rule in group.ingress_rules:
            protocol = rule.ip_protocol or "-1"
            sources = []
            if rule.ip_range.get("CidrIp"):
                sources.append(rule.ip_range["CidrIp"])
            if rule.source_group.get("GroupId"):
                sources += members_of(instance.ec2_backend, rule.source_group["GroupId"])
            for source in sources:
                rules.append((protocol, rule.from_port, rule.to_port, source))
    return rules


def members_of(backend: Any, group_id: str) -> list[str]:
    """Private addresses (as /32) of the running instances in a security group."""
    found = []
    for instance in backend.all_running_instances():
        if any(g.id == group_id for nic in instance.nics.values() for g in nic.group_set):
            found.append(f"{instance.private_ip}/32")
    return found


def public_keys(instance: Any) -> list[str]:
    """The OpenSSH public key of the instance's key pair, as cloud-init would install it."""
    if not instance.key_name:
        return []
    pair = instance.ec2_backend.key_pairs.get(instance.key_name)
    return [pair.public_key.strip()] if pair is not None else []


def instance_store_sizes(instance_type: str) -> list[int]:
    """The sizes in GiB of the instance-store disks an instance type has."""
    from moto.ec2.models.instance_types import INSTANCE_TYPES

    info = INSTANCE_TYPES.get(instance_type, {}).get("InstanceStorageInfo") or {}
    return [d["SizeInGB"] for d in info.get("Disks", []) for _ in range(d["Count"])]
