"""Command line: `python -m localcloud up | down | status | env | serve`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from localcloud import config
from localcloud.config import Settings
from localcloud.errors import LocalCloudError
from localcloud.host import cleanup

REQUIRED_TOOLS = {
    "systemd-nspawn": "systemd-container",
    "debootstrap": "debootstrap",
    "iptables": "iptables",
    "ip": "iproute2",
    "losetup": "util-linux",
    "nsenter": "util-linux",
}
UP_TIMEOUT = 900.0


def environment(settings: Settings) -> dict[str, str]:
    """What a shell (and so ansible-playbook) needs to reach the local cloud."""
    keys = config.read_credentials(settings)
    if keys is None:
        raise LocalCloudError(f"the local cloud is not running (no credentials in {settings.credentials}): run `up`")
    return {
        "AWS_ENDPOINT_URL": settings.endpoint,
        "AWS_URL": settings.endpoint,
        "AWS_ACCESS_KEY_ID": keys["access_key"],
        "AWS_SECRET_ACCESS_KEY": keys["secret_key"],
        "AWS_REGION": settings.region,
        "AWS_DEFAULT_REGION": settings.region,
        "LOCALCLOUD_ENDPOINT": settings.endpoint,
    }


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read (it holds the keys)."""
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as stream:
        stream.write(text)


def env_text(settings: Settings) -> str:
    return "".join(f"export {k}={v}\n" for k, v in environment(settings).items())


def check_host() -> None:
    """Fail early, naming the fix, when this machine cannot run the local cloud."""
    if os.geteuid() != 0:
        raise LocalCloudError(
            "the local cloud needs root (network namespaces, loop devices, systemd-nspawn): run it with sudo"
        )
    missing = [f"{tool} (package {package})" for tool, package in REQUIRED_TOOLS.items() if not shutil.which(tool)]
    if missing:
        raise LocalCloudError(f"missing: {', '.join(missing)}; run `make setup` or apt-get install them")


def health(settings: Settings, timeout: float = 2.0) -> dict | None:
    """The running local cloud's health answer, or None."""
    try:
        with urllib.request.urlopen(f"{settings.endpoint}/_localcloud/health", timeout=timeout) as reply:
            return json.load(reply)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def api_get(settings: Settings, path: str, timeout: float = 30.0) -> dict:
    """One of the local cloud's own endpoints, which answer the holder of the administrator's secret."""
    keys = config.read_credentials(settings) or {}
    request = urllib.request.Request(
        f"{settings.endpoint}/_localcloud/{path}", headers={"Authorization": f"Bearer {keys.get('secret_key', '')}"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        return json.load(reply)


def up(settings: Settings, env_file: Path | None) -> int:
    """Start the local cloud in the background (or reuse the running one) and print its environment."""
    check_host()
    if health(settings) is None:
        pid = cleanup.read_pid(settings.pidfile)
        if pid and cleanup.process_is(pid, "localcloud"):
            raise LocalCloudError(f"the local cloud (pid {pid}) runs but does not answer; run `down` first")
        from localcloud.server import check_port_free

        check_port_free(settings.port)
        try:
            config.private_dir(settings.home, "LOCALCLOUD_HOME")
            with open(settings.logfile, "ab") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "localcloud", "serve"],
                    cwd=Path(__file__).resolve().parent.parent,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:
            raise LocalCloudError(f"{settings.home} is not writable ({exc.strerror}); set LOCALCLOUD_HOME") from exc
        settings.pidfile.write_text(f"{process.pid}\n")
        print(f"starting the local cloud (pid {process.pid}, log {settings.logfile})", file=sys.stderr)
        deadline = time.monotonic() + UP_TIMEOUT
        while health(settings) is None:
            if process.poll() is not None:
                tail = settings.logfile.read_text(errors="replace").splitlines()[-15:]
                raise LocalCloudError("the local cloud failed to start:\n" + "\n".join(tail))
            if time.monotonic() > deadline:
                raise LocalCloudError(
                    f"the local cloud did not answer within {UP_TIMEOUT:.0f} s; see {settings.logfile}"
                )
            time.sleep(0.5)
    text = env_text(settings)
    for path in [settings.envfile] + ([env_file] if env_file else []):
        write_private(path, text)
    sys.stdout.write(text)
    return 0


def down(settings: Settings) -> int:
    """Stop everything and report anything that could not be removed."""
    remaining = cleanup.down(settings)
    left = {k: v for k, v in remaining.items() if v}
    if left:
        print(f"the local cloud left these behind: {json.dumps(left)}", file=sys.stderr)
        return 1
    print("the local cloud is down; nothing is left behind", file=sys.stderr)
    return 0


def status(settings: Settings, as_json: bool) -> int:
    """Print the instances, their machines and addresses."""
    if health(settings) is None:
        left = {k: v for k, v in cleanup.leftovers(settings).items() if v}
        print("the local cloud is not running" + (f"; left over: {json.dumps(left)}" if left else ""))
        return 3
    data = api_get(settings, "status")
    if as_json:
        print(json.dumps(data, indent=2))
        return 0
    print(f"endpoint {settings.endpoint}  region {settings.region}  disks {data['disks']}")
    rows = data["instances"]
    if not rows:
        print("no instances")
    for row in rows:
        print(
            f"{row['instance_id']}  {row['state']:<13} machine {row['machine']:<7} {row['type']:<11} "
            f"{row['private_ip']:<15} {','.join(row['public_ips']) or '-':<16} {row['name']} ({row['account']})"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="localcloud", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up_parser = sub.add_parser("up", help="start the local cloud in the background and print its environment")
    up_parser.add_argument("--env-file", type=Path, help="also write the environment to this file")
    sub.add_parser("down", help="stop it and remove every machine, disk, network and rule it made")
    status_parser = sub.add_parser("status", help="list instances, their machines and addresses")
    status_parser.add_argument("--json", action="store_true")
    sub.add_parser("env", help="print the environment to export")
    serve_parser = sub.add_parser("serve", help="run in the foreground, logging to stderr")
    serve_parser.add_argument("--api-only", action="store_true", help="the API without machines")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = config.load()
        if args.command == "up":
            return up(settings, args.env_file)
        if args.command == "down":
            return down(settings)
        if args.command == "status":
            return status(settings, args.json)
        if args.command == "env":
            sys.stdout.write(env_text(settings))
            return 0
        if not args.api_only:
            check_host()
        config.private_dir(settings.home, "LOCALCLOUD_HOME")
        from localcloud.server import serve

        serve(settings, with_machines=not args.api_only)
        return 0
    except LocalCloudError as exc:
        print(f"localcloud: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader of the output (head, a closed pager) went away: nothing is wrong here. Python
        # would report the failed flush at exit, so standard output now goes nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
