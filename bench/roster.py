"""Benchmark of class rosters: wall time of launch.yml (and of terminating) for N owners versus 1.

    python bench/roster.py [--owners 8] [--instance-type t3.micro]

It runs against the local cloud that is up (or starts one and takes it down afterwards), as a
user would: `ansible-playbook -i inventory/localcloud playbooks/launch.yml -e @roster.yml` with
`configure=false`, so it measures the launch itself (key pairs, security groups, instances,
Elastic IPs, SSH answering), not the notebook server's installation. In one run it launches a
roster of 1, then a roster of N, then terminates each (force, purge), and prints the times side
by side with the ratio N / 1 and the project's target (N=8 under 2x the time of 1). Absolute
times drift on shared machines; the ratios of one run are what to compare.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.integration.conftest import Playbooks, owned, remove_everything_of  # noqa: E402
from tests.localcloud_harness import requirements_missing, start_session_cloud, stop_session_cloud  # noqa: E402

TARGET_RATIO = 2.0


def write_roster(path: Path, owners: list[str]) -> Path:
    path.write_text("---\nroster:\n" + "".join(f"  - {owner}\n" for owner in owners))
    return path


def timed_run(playbooks: Playbooks, name: str, *extra: str) -> float:
    run = playbooks.run(name, *extra)
    if run.returncode:
        raise SystemExit(f"{name} {' '.join(extra)} failed:\n{run.tail()}")
    return run.seconds


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
    print(f"roster benchmark on {os.cpu_count()} CPUs, instance type {args.instance_type}, configure=false")
    print(f"{'operation':<22} {f'{small} owner s':>10} {f'{large} owners s':>11} {f'{large}/{small}':>7} {'target':>7}")
    for operation in results[small]:
        one, many = results[small][operation], results[large][operation]
        target = f"< {TARGET_RATIO:.1f}" if operation == "launch" else ""
        print(f"{operation:<22} {one:10.1f} {many:11.1f} {many / one:7.2f} {target:>7}")
    ratio = results[large]["launch"] / results[small]["launch"]
    verdict = "meets" if ratio < TARGET_RATIO else "misses"
    print(f"launch of {large} owners takes {ratio:.2f}x the time of 1: {verdict} the target (< {TARGET_RATIO:.1f}x)")
    print(f"(wall clock of this benchmark: {time.strftime('%Y-%m-%d %H:%M:%S')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
