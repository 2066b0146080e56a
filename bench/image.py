"""Benchmark of a launch from a baked image against a launch from scratch, and of a class from it.

    python bench/image.py [--owners 8] [--instance-type t3.medium]

It runs against the local cloud that is up (or starts one and takes it down afterwards), as a
user would, and measures in one run:

  from scratch     launch.yml -e tunnel=true (configure=true: JupyterLab and the research packages
                   installed, then the tunnel opened), until a kernel cell answers through the tunnel
  bake             image.yml of that VM (check, clean, stop, image, start again), for information
  from the image   launch.yml -e image=<the baked image> -e tunnel=true (configure=true: it
                   recognises the image as configured with the same settings), until a kernel cell answers
  class of N       launch.yml for a roster of N from the image, against the one owner above

and prints "from the image / from scratch" next to the project's target (<= 0.15) and the class
of N against one owner. A local cloud it starts holds each new instance's package lock for
--first-boot seconds at its first boot (60 by default, as a fresh cloud image does on EC2: the
launch from scratch waits for it before it installs packages; a VM from the image needs none).
Absolute times drift on shared machines; the ratios of one run are what to compare.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.labcloud.jupyter.plugins.module_utils.jupyter_client import run_code  # noqa: E402

from tests.integration.conftest import Playbooks, remove_everything_of  # noqa: E402
from tests.localcloud_harness import free_port, requirements_missing, start_session_cloud, stop_session_cloud  # noqa: E402

TARGET = 0.15
URL = re.compile(r"http://localhost:\d+/lab\?token=[0-9a-f]+")


def run(playbooks: Playbooks, name: str, *extra: str) -> tuple[float, str]:
    result = playbooks.run(name, *extra)
    if result.returncode:
        raise SystemExit(f"{name} {' '.join(extra)} failed:\n{result.tail()}")
    return result.seconds, result.stdout


def launch_to_kernel(playbooks: Playbooks, owner: str, *extra: str) -> float:
    """Seconds from launch.yml's start until a kernel cell answers through the tunnel."""
    started = time.monotonic()
    request = ("-e", f"owner={owner}", "-e", "configure=true", "-e", "tunnel=true")
    request += ("-e", f"tunnel_local_port={free_port()}")
    _, launched = run(playbooks, "launch.yml", *request, *extra)
    found = URL.search(launched)
    if not found:
        raise SystemExit(f"launch.yml -e tunnel=true printed no URL:\n{launched[-3000:]}")
    output = run_code(found.group(0), "print(6 * 7)", timeout=120)
    if output.get("stdout", "").strip() != "42":
        raise SystemExit(f"the kernel answered {output!r}")
    seconds = time.monotonic() - started
    run(playbooks, "tunnel.yml", "-e", f"owner={owner}", "-e", "tunnel_state=closed")
    return seconds


def parse_cloud_arguments(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The arguments of a benchmark on the local cloud, with its --instance-type and --first-boot (how long a
    local cloud it starts holds a new machine's package lock); exits when this machine cannot run one."""
    parser.add_argument("--instance-type", default="t3.medium")
    parser.add_argument(
        "--first-boot",
        type=int,
        default=60,
        help="seconds a new instance's first boot holds the package lock, when this benchmark starts the local"
        " cloud (default 60, the local cloud's own default, as a fresh cloud image's first boot on EC2; the tests"
        " use 10)",
    )
    args = parser.parse_args()
    reason = requirements_missing()
    if reason:
        raise SystemExit(f"cannot run the local cloud: {reason}")
    return args


def remove_owners(ec2, owners: list[str]) -> None:
    """Remove everything of each owner; a failure is printed, so that the report still comes out."""
    for owner in owners:
        try:
            remove_everything_of(ec2, owner)
        except Exception as exc:
            print(f"cleanup of {owner}: {exc}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--owners", type=int, default=8, help="size of the class launched from the image (default 8)")
    args = parse_cloud_arguments(parser)
    suffix = uuid.uuid4().hex[:6]
    scratch, baked = f"scratch-{suffix}", f"baked-{suffix}"
    students = [f"student{n}-{suffix}" for n in range(1, args.owners + 1)]
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="labcloud-bench-") as tmp:
        os.environ["LOCALCLOUD_FIRST_BOOT_SECONDS"] = str(args.first_boot)
        cloud, started = start_session_cloud(Path(tmp))
        cloud.idle()
        ec2 = cloud.client()
        playbooks = Playbooks(cloud, Path(tmp) / "keys")
        playbooks.owners.extend([scratch, f"{scratch}-verify", baked, *students])
        common = ("-e", f"ec2_instance_type={args.instance_type}")
        try:
            results["from scratch: launch -> kernel"] = launch_to_kernel(playbooks, scratch, *common)
            results["bake (image.yml)"], baking = run(
                playbooks, "image.yml", "-e", f"owner={scratch}", "-e", "version=b1"
            )
            image_id = re.search(r"(ami-[0-9a-f]+) \(new", baking)
            if not image_id:
                raise SystemExit(f"image.yml printed no image:\n{baking[-3000:]}")
            from_image = ("-e", f"image={image_id.group(1)}", *common)
            results["from the image: launch -> kernel"] = launch_to_kernel(playbooks, baked, *from_image)
            results["from the image: launch 1"], _ = run(
                playbooks, "launch.yml", "-e", f"owner={baked}-1", "-e", "configure=true", *from_image
            )
            playbooks.owners.append(f"{baked}-1")
            roster = Path(tmp) / "roster.yml"
            roster.write_text("---\nroster:\n" + "".join(f"  - {owner}\n" for owner in students))
            results[f"from the image: launch {args.owners}"], _ = run(
                playbooks, "launch.yml", "-e", f"@{roster}", "-e", "configure=true", *from_image
            )
        finally:
            remove_owners(ec2, playbooks.owners)
            if started:
                stop_session_cloud()

    first_boot = f"{args.first_boot} s" if started else "as the running local cloud was started"
    print(f"image benchmark on {os.cpu_count()} CPUs, instance type {args.instance_type}, first boot {first_boot}")
    for name, seconds in results.items():
        print(f"{name:<36} {seconds:8.1f} s")
    ratio = results["from the image: launch -> kernel"] / results["from scratch: launch -> kernel"]
    verdict = "meets" if ratio <= TARGET else "misses"
    print(f"{'from the image / from scratch':<36} {ratio:8.3f}   target <= {TARGET}  {verdict}")
    one, many = results["from the image: launch 1"], results[f"from the image: launch {args.owners}"]
    print(f"{f'class of {args.owners} / 1 owner, from the image':<36} {many / one:8.2f}x")
    print(f"(wall clock of this benchmark: {time.strftime('%Y-%m-%d %H:%M:%S')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
