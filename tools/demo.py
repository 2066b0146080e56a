"""`make demo`: the tutorial's short version on the local cloud, with the collection's own playbooks.

    python tools/demo.py run   [--owner hedylamarr] [--port 7005]
    python tools/demo.py clean [--owner hedylamarr]

It uses the collection as a user does (ansible-playbook against the local cloud's endpoint); it
is not part of the local cloud.

run:   start the local cloud -> launch the owner's VM (launch.yml, which also configures JupyterLab
       with the research packages) -> open the SSH tunnel (tunnel.yml) -> print the URL. The VM and
       the tunnel stay up for you to open the URL in a browser on this machine.
clean: close the tunnel, terminate the VM and remove the owner's key pair and security group
       (lifecycle.yml), then stop the local cloud and remove everything it made.

Each step prints its name and how long it took.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from localcloud import cli, config  # noqa: E402

BIN = Path(sys.executable).parent


class Steps:
    """Run named steps, streaming their output, and keep how long each took."""

    def __init__(self) -> None:
        self.done: list[tuple[str, float, bool]] = []

    def run(self, name: str, argv: list[str], env: dict[str, str] | None = None, check: bool = True) -> str:
        print(f"\n==> {name}", flush=True)
        started = time.monotonic()
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        for line in process.stdout:
            sys.stdout.write(line)
            lines.append(line)
        ok = process.wait() == 0
        seconds = time.monotonic() - started
        self.done.append((name, seconds, ok))
        print(f"<== {name}: {'done' if ok else 'FAILED'} in {seconds:.0f} s", flush=True)
        if check and not ok:
            self.report()
            raise SystemExit(f"demo step failed: {name}")
        return "".join(lines)

    def report(self) -> None:
        print("\nSteps:")
        for name, seconds, ok in self.done:
            print(f"  {seconds:6.0f} s  {'ok  ' if ok else 'FAIL'}  {name}")


def cloud_env(settings: config.Settings) -> dict[str, str]:
    return dict(os.environ, **cli.environment(settings), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))


def playbook(name: str, *extra: str) -> list[str]:
    return [str(BIN / "ansible-playbook"), "-i", "inventory/localcloud", f"playbooks/{name}", *extra]


def run(owner: str, port: int) -> int:
    settings = config.load()
    steps = Steps()
    steps.run("Start the local cloud", [sys.executable, "-m", "localcloud", "up", "--env-file", ".localcloud.env"])
    env = cloud_env(settings)
    steps.run(
        f"Launch {owner}'s VM and configure JupyterLab (launch.yml)",
        playbook("launch.yml", "-e", f"owner={owner}"),
        env,
    )
    output = steps.run(
        "Open the SSH tunnel and read the token (tunnel.yml)",
        playbook("tunnel.yml", "-e", f"owner={owner}", "-e", f"tunnel_local_port={port}"),
        env,
    )
    steps.report()
    url = output.strip().splitlines()[-1]
    print(
        f"\nJupyterLab for {owner} is running on a local-cloud VM, reached through an SSH tunnel.\n"
        f"Open it in a browser on this machine (the tunnel listens on 127.0.0.1:{port} only):\n\n{url}\n\n"
        "Remove everything with: make demo-clean"
    )
    return 0


def clean(owner: str) -> int:
    settings = config.load()
    steps = Steps()
    if cli.health(settings) is not None:
        env = cloud_env(settings)
        steps.run(
            "Close the tunnel (tunnel.yml)",
            playbook("tunnel.yml", "-e", f"owner={owner}", "-e", "tunnel_state=closed"),
            env,
            check=False,
        )
        steps.run(
            f"Terminate {owner}'s VM and remove its key pair and group (lifecycle.yml)",
            playbook(
                "lifecycle.yml",
                "-e",
                f"owner={owner}",
                "-e",
                "state=terminated",
                "-e",
                "force=true",
                "-e",
                "purge=true",
            ),
            env,
            check=False,
        )
    steps.run("Stop the local cloud and remove what it made", [sys.executable, "-m", "localcloud", "down"])
    steps.report()
    return 0 if all(ok for _, _, ok in steps.done) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="tools/demo.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["run", "clean"])
    parser.add_argument("--owner", default="hedylamarr")
    parser.add_argument("--port", type=int, default=7005)
    args = parser.parse_args(argv)
    return run(args.owner, args.port) if args.action == "run" else clean(args.owner)


if __name__ == "__main__":
    sys.exit(main())
