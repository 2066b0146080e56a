"""Benchmark of launch.yml against the machine's own start, and of class rosters against one owner.

    python bench/launch.py [--owners 8] [--instance-type t3.micro]

It runs against the local cloud that is up (or starts one and takes it down afterwards), as a
user would: `ansible-playbook -i inventory/localcloud playbooks/launch.yml -e @roster.yml` with
`configure=false`, so it measures the launch itself (key pairs, security groups, instances,
Elastic IPs, SSH answering), not the notebook server's installation. In one run it measures

  RunInstances -> SSH    the local cloud's own time: RunInstances with boto3 until SSH answers
                         with the key (median of three), the floor of any launch; and the same
                         for N machines in one call, the floor of a class
  launch, 1 owner        launch.yml for one owner, then its re-run with nothing to change
  launch, N owners       the same for a roster of N, then terminating each (force, purge)

and prints the launch and its re-run as multiples of RunInstances -> SSH, and the roster of N as
a multiple of one owner, each next to the project's target (launch <= 5x, re-run <= 3x, N=8
<= 1.5x one owner). Absolute times drift on shared machines; the ratios of one run are what to
compare.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.conftest import Playbooks, owned, remove_everything_of  # noqa: E402
from tests.localcloud_harness import (  # noqa: E402
    Cloud,
    requirements_missing,
    start_session_cloud,
    stop_session_cloud,
    wait_ssh,
)

TARGETS = {"launch": 5.0, "re-run": 3.0, "roster": 1.5}


def write_roster(path: Path, owners: list[str]) -> Path:
    path.write_text("---\nroster:\n" + "".join(f"  - {owner}\n" for owner in owners))
    return path


def timed_run(playbooks: Playbooks, name: str, *extra: str) -> float:
    run = playbooks.run(name, *extra)
    if run.returncode:
        raise SystemExit(f"{name} {' '.join(extra)} failed:\n{run.tail()}")
    return run.seconds


def machine_start(cloud: Cloud, instance_type: str, runs: int = 3, count: int = 1) -> float:
    """Median seconds from one RunInstances of `count` machines until SSH answers on all of them,
    with the local cloud's API alone."""
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    group = cloud.ssh_group(ec2)
    image = cloud.base_image(ec2)["ImageId"]
    times = []
    for _ in range(runs):
        started = time.monotonic()
        instances = ec2.run_instances(
            ImageId=image,
            InstanceType=instance_type,
            MinCount=count,
            MaxCount=count,
            KeyName=key_name,
            SecurityGroupIds=[group],
        )["Instances"]
        cloud.launched.extend((ec2, instance["InstanceId"]) for instance in instances)
        for instance in instances:
            address = cloud.wait_state(ec2, instance["InstanceId"], "running")["PublicIpAddress"]
            wait_ssh(address, key, timeout=120)
        times.append(time.monotonic() - started)
        cloud.cleanup()
    for ec2_client, group_id in cloud.groups:
        ec2_client.delete_security_group(GroupId=group_id)
    cloud.groups.clear()
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--owners", type=int, default=8, help="size of the large roster (default 8)")
    parser.add_argument("--instance-type", default="t3.micro")
    args = parser.parse_args()
    reason = requirements_missing()
    if reason:
        print(f"cannot run the local cloud: {reason}", file=sys.stderr)
        return 2
    suffix = uuid.uuid4().hex[:6]
    sizes = {1: [f"bench1-{suffix}"], args.owners: [f"bench{n}-{suffix}" for n in range(2, args.owners + 2)]}
    results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="labcloud-bench-") as tmp:
        cloud, started = start_session_cloud(Path(tmp))
        # The cloud's start-up work (the base image copied into its store) is not part of a launch.
        cloud.idle()
        ec2 = cloud.client()
        playbooks = Playbooks(cloud, Path(tmp) / "keys")
        try:
            floor = machine_start(cloud, args.instance_type)
            # The floor of a class: its machines started at once, on the same cores.
            floor_class = machine_start(cloud, args.instance_type, runs=1, count=args.owners)
            for size, owners in sizes.items():
                playbooks.owners.extend(owners)
                roster = write_roster(Path(tmp) / f"roster-{size}.yml", owners)
                common = ("-e", f"@{roster}", "-e", f"ec2_instance_type={args.instance_type}")
                launch = timed_run(playbooks, "launch.yml", *common)
                if not all(len(owned(ec2, owner)["instances"]) == 1 for owner in owners):
                    raise SystemExit(f"the roster of {size} did not give each owner one instance")
                rerun = timed_run(playbooks, "launch.yml", *common)
                terminate = timed_run(
                    playbooks,
                    "lifecycle.yml",
                    *common,
                    "-e",
                    "state=terminated",
                    "-e",
                    "force=true",
                    "-e",
                    "purge=true",
                )
                results[size] = {"launch": launch, "re-run (no change)": rerun, "terminate + purge": terminate}
        finally:
            for owner in playbooks.owners:
                try:
                    remove_everything_of(ec2, owner)
                except Exception as exc:  # the report must still come out
                    print(f"cleanup of {owner}: {exc}", file=sys.stderr)
            if started:
                stop_session_cloud()

    small, large = sorted(results)
    print(f"launch benchmark on {os.cpu_count()} CPUs, instance type {args.instance_type}, configure=false")
    print(f"RunInstances -> SSH (the machine's own start, median of 3): {floor:.1f} s")
    print(
        f"RunInstances of {large} -> SSH on all (the class's own start): {floor_class:.1f} s, "
        f"{floor_class / floor:.2f}x one machine"
    )
    print(f"{'operation':<22} {f'{small} owner s':>10} {f'{large} owners s':>11} {f'{large}/{small}':>7}")
    for operation in results[small]:
        one, many = results[small][operation], results[large][operation]
        print(f"{operation:<22} {one:10.1f} {many:11.1f} {many / one:7.2f}")
    ratios = {
        "launch": results[small]["launch"] / floor,
        "re-run": results[small]["re-run (no change)"] / floor,
        "roster": results[large]["launch"] / results[small]["launch"],
    }
    labels = {
        "launch": "launch of 1 owner / RunInstances -> SSH",
        "re-run": "re-run of 1 owner / RunInstances -> SSH",
        "roster": f"launch of {large} owners / launch of 1",
    }
    for name, ratio in ratios.items():
        verdict = "meets" if ratio <= TARGETS[name] else "misses"
        print(f"{labels[name]:<42} {ratio:6.2f}x  target <= {TARGETS[name]:.1f}x  {verdict}")
    print(f"(wall clock of this benchmark: {time.strftime('%Y-%m-%d %H:%M:%S')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
