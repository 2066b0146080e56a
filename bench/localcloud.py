"""Benchmark of the local cloud: medians of the operations users wait for, printed side by side.

    python bench/localcloud.py [--runs N] [--cold]

It needs the host to itself (one local cloud per host): it refuses to run while a local cloud is
up. It measures, in one run:

  base image build (cold)      debootstrap into a scratch cache (only with --cold: about a minute)
  up (warm cache)              `localcloud up` until the API answers, then `down`
  RunInstances -> SSH ready    from the API call to the first successful `ssh … true`
  stop -> start -> SSH ready   from StopInstances to SSH answering again
  CreateImage -> available     NoReboot=false, so the machine is stopped, copied and restarted

and prints each median with its ratio to the target the project set (RunInstances -> SSH ready
under 10 s with a warm cache). Absolute times drift on shared machines; the ratios of one run are
what to compare.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from localcloud import cli, config  # noqa: E402
from localcloud.host import baseimage  # noqa: E402
from tests.localcloud_harness import start_session_cloud, stop_session_cloud, wait_ssh  # noqa: E402

TARGETS = {"RunInstances -> SSH ready": 10.0}


def timed(action) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def cold_build() -> float:
    with tempfile.TemporaryDirectory(prefix="localcloud-bench-cache-") as cache:
        settings = dataclasses.replace(config.load(), cache=Path(cache))
        return timed(lambda: baseimage.rootfs(settings))


def up_down(settings: config.Settings) -> float:
    def up() -> None:
        subprocess.run([sys.executable, "-m", "localcloud", "up"], cwd=REPO, check=True, capture_output=True)

    seconds = timed(up)
    stop_session_cloud()
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="also time a cold base image build")
    args = parser.parse_args()
    settings = config.load()
    if os.geteuid() != 0:
        print("the local cloud needs root", file=sys.stderr)
        return 2
    if cli.health(settings) is not None:
        print(
            "a local cloud is running: stop it first (make localcloud-down); the benchmark needs the host",
            file=sys.stderr,
        )
        return 2
    results: dict[str, list[float]] = {}
    if args.cold:
        results["base image build (cold)"] = [cold_build()]
    baseimage.rootfs(settings)
    results["up (warm cache)"] = [up_down(settings) for _ in range(args.runs)]

    with tempfile.TemporaryDirectory(prefix="localcloud-bench-") as tmp:
        cloud, _ = start_session_cloud(Path(tmp))
        try:
            ec2 = cloud.client()
            key_name, key = cloud.key_pair(ec2)
            image_id = cloud.base_image(ec2)["ImageId"]
            runs, restarts, images = [], [], []
            for _ in range(args.runs):
                started = time.monotonic()
                instance = cloud.launch(ec2, image_id=image_id, key_name=key_name, wait=False)
                address = cloud.wait_state(ec2, instance["InstanceId"], "running")["PublicIpAddress"]
                wait_ssh(address, key)
                runs.append(time.monotonic() - started)

                started = time.monotonic()
                ec2.stop_instances(InstanceIds=[instance["InstanceId"]])
                cloud.wait_state(ec2, instance["InstanceId"], "stopped")
                ec2.start_instances(InstanceIds=[instance["InstanceId"]])
                address = cloud.wait_state(ec2, instance["InstanceId"], "running")["PublicIpAddress"]
                wait_ssh(address, key)
                restarts.append(time.monotonic() - started)

                started = time.monotonic()
                image = ec2.create_image(InstanceId=instance["InstanceId"], Name=f"bench-{time.time_ns()}")
                ec2.get_waiter("image_available").wait(ImageIds=[image["ImageId"]], WaiterConfig={"Delay": 1})
                images.append(time.monotonic() - started)
                ec2.deregister_image(ImageId=image["ImageId"], DeleteAssociatedSnapshots=True)
                cloud.cleanup()
            results["RunInstances -> SSH ready"] = runs
            results["stop -> start -> SSH ready"] = restarts
            results["CreateImage -> available"] = images
        finally:
            stop_session_cloud()

    reference = statistics.median(results["RunInstances -> SSH ready"])
    print(f"{'operation':<30} {'median s':>9} {'runs':>5} {'x RunInstances':>15} {'target s':>9} {'x target':>9}")
    for name, values in results.items():
        median = statistics.median(values)
        target = TARGETS.get(name)
        target_text = f"{target:9.1f} {median / target:9.2f}" if target else f"{'':>9} {'':>9}"
        print(f"{name:<30} {median:9.2f} {len(values):5d} {median / reference:15.2f} {target_text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
