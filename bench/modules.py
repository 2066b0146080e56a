"""Benchmark of the collection's own modules against the kept modules they stand in for, on a roster.

    python bench/modules.py [--owners 8]

The collection keeps a module of its own only where it closes a gap or where it is measurably
faster for a class than the module that already does the job. For a roster of N owners (8 by
default), in one run against the local cloud's API (its environment is read from the running
local cloud, or one is started and taken down), each pair is timed as the playbooks would run it:

  key pairs and SSH groups   labcloud.jupyter.owner_access, one task for the roster,
                             vs amazon.aws.ec2_key + amazon.aws.ec2_security_group, on one host
                             per owner at once (as launch.yml ran them before)
  what a launch looks at     labcloud.jupyter.owner_info (launch: true), one task,
                             vs the amazon.aws info modules it replaces (caller, regions, subnets,
                             instances, key pairs, groups, addresses, images), run once for the roster
  forget old host keys       labcloud.jupyter.forget_host_keys (an action on the controller), one task,
                             vs ansible.builtin.known_hosts state=absent, one item per address
  write the owners' pages    labcloud.jupyter.local_files, one task for two files per owner,
                             vs ansible.builtin.template, one item per file

and prints each time with the ratio (kept module / own module). Absolute times drift on shared
machines; the ratios of one run are what to compare. What the runs create is removed afterwards.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.localcloud_harness import requirements_missing, start_session_cloud, stop_session_cloud  # noqa: E402

PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


def run(env: dict[str, str], playbook: Path, inventory: Path) -> float:
    """Run a playbook and return its wall time, failing loudly."""
    started = time.monotonic()
    result = subprocess.run(
        [str(PLAYBOOK), "-i", str(inventory), str(playbook)], cwd=REPO, env=env, capture_output=True, text=True
    )
    seconds = time.monotonic() - started
    if result.returncode:
        raise SystemExit(f"{playbook.name} failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}")
    return seconds


def inventory_of(tmp: Path, owners: list[str]) -> Path:
    """One local host per owner (as the playbooks' front door makes them), plus localhost."""
    lines = ["all:", "  hosts:", "    localhost:", "      ansible_connection: local"]
    lines += ["  children:", "    owners:", "      hosts:"]
    for owner in owners:
        lines += [f"        owner-{owner}:", "          ansible_connection: local", f"          owner: {owner}"]
    lines += ["  vars:", "    ansible_python_interpreter: " + sys.executable]
    path = tmp / "hosts.yml"
    path.write_text("\n".join(lines) + "\n")
    return path


def make_keys(tmp: Path, owners: list[str]) -> Path:
    keys = tmp / "keys"
    keys.mkdir()
    for owner in owners:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / f"jupyter-{owner}.pem")], check=True
        )
    return keys


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def vpc_of(ec2) -> str:
    return ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]


def clean_access(ec2, names: list[str]) -> None:
    for group in ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": names}])["SecurityGroups"]:
        ec2.delete_security_group(GroupId=group["GroupId"])
    for key in ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": names}])["KeyPairs"]:
        ec2.delete_key_pair(KeyName=key["KeyName"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--owners", type=int, default=8)
    args = parser.parse_args()
    reason = requirements_missing()
    if reason:
        print(f"cannot run the local cloud: {reason}", file=sys.stderr)
        return 2
    suffix = uuid.uuid4().hex[:6]
    owners = [f"modbench{n}-{suffix}" for n in range(args.owners)]
    names = [f"jupyter-{owner}" for owner in owners]
    rows: list[tuple[str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="labcloud-bench-modules-") as tmp_name:
        tmp = Path(tmp_name)
        cloud, started = start_session_cloud(tmp)
        env = dict(os.environ, **cloud.env, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
        env.pop("ANSIBLE_CALLBACKS_ENABLED", None)
        ec2 = cloud.client()
        vpc = vpc_of(ec2)
        inventory = inventory_of(tmp, owners)
        keys = make_keys(tmp, owners)
        try:
            # Key pairs and groups.
            access_entries = [
                {
                    "name": f"jupyter-{o}",
                    "owner": o,
                    "key_file": str(keys / f"jupyter-{o}.pem"),
                    "ssh_cidr": "203.0.113.7/32",
                }
                for o in owners
            ]
            own = write(
                tmp,
                "access_own.yml",
                f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - labcloud.jupyter.owner_access:
        vpc_id: {vpc}
        owners: {access_entries!r}
""",
            )
            kept = write(
                tmp,
                "access_kept.yml",
                f"""
- hosts: owners
  gather_facts: false
  tasks:
    - amazon.aws.ec2_key:
        name: "jupyter-{{{{ owner }}}}"
        key_material: "{{{{ lookup('ansible.builtin.file', '{keys}/jupyter-' ~ owner ~ '.pem.pub') }}}}"
        force: false
    - amazon.aws.ec2_security_group:
        name: "jupyter-{{{{ owner }}}}"
        description: SSH
        vpc_id: {vpc}
        rules:
          - proto: tcp
            ports: [22]
            cidr_ip: 203.0.113.7/32
""",
            )
            seconds_own = run(env, own, inventory)
            clean_access(ec2, names)
            seconds_kept = run(env, kept, inventory)
            clean_access(ec2, names)
            rows.append(("key pairs and SSH groups", seconds_kept, seconds_own))

            # What a launch looks at.
            image = "136693071363/debian-12-amd64-*"
            own = write(
                tmp,
                "look_own.yml",
                f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - labcloud.jupyter.owner_info:
        launch: true
        owners: {[{"owner": o, "instance_type": "t3.micro", "image": image, "root_size": 8} for o in owners]!r}
""",
            )
            kept = write(
                tmp,
                "look_kept.yml",
                f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - amazon.aws.aws_caller_info:
    - amazon.aws.aws_region_info:
        region: us-east-1
    - amazon.aws.ec2_vpc_subnet_info:
        filters: {{default-for-az: "true"}}
    - amazon.aws.ec2_instance_info:
        filters: {{"tag:Owner": {owners!r}}}
    - amazon.aws.ec2_key_info:
        filters: {{key-name: {names!r}}}
    - amazon.aws.ec2_security_group_info:
        filters: {{group-name: {names!r}}}
    - amazon.aws.ec2_eip_info:
        filters: {{"tag:Owner": {owners!r}}}
    - amazon.aws.ec2_ami_info:
        owners: ["136693071363"]
        filters: {{name: "debian-12-amd64-*"}}
""",
            )
            rows.append(("what a launch looks at", run(env, kept, inventory), run(env, own, inventory)))

            # Forgetting old host keys.
            known = tmp / "known_hosts"
            addresses = [f"198.51.100.{10 + n}" for n in range(args.owners)]

            def fill() -> None:
                key = (keys / f"jupyter-{owners[0]}.pem.pub").read_text().split()
                known.write_text("".join(f"{a} {key[0]} {key[1]}\n" for a in addresses))

            own = write(
                tmp,
                "forget_own.yml",
                f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - labcloud.jupyter.forget_host_keys:
        path: {known}
        hosts: {addresses!r}
""",
            )
            kept = write(
                tmp,
                "forget_kept.yml",
                f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.known_hosts:
        path: {known}
        name: "{{{{ item }}}}"
        state: absent
      loop: {addresses!r}
""",
            )
            fill()
            seconds_own = run(env, own, inventory)
            fill()
            rows.append(("forget old host keys", run(env, kept, inventory), seconds_own))

            # Two pages per owner.
            templates = tmp / "templates"
            templates.mkdir()
            (templates / "page.md.j2").write_text("# {{ item }}\n\nssh -i key admin@{{ item }}\n")
            (templates / "page.html.j2").write_text("<h1>{{ item }}</h1>\n")
            pages = tmp / "pages"
            files = [
                {"src": f"page.{kind}.j2", "dest": f"{pages}/{o}.{kind}"} for o in owners for kind in ("md", "html")
            ]
            own = write(
                tmp,
                "pages_own.yml",
                f"""
- hosts: localhost
  gather_facts: false
  vars:
    item: an owner
  tasks:
    - labcloud.jupyter.local_files:
        files: {files!r}
""",
            )
            kept = write(
                tmp,
                "pages_kept.yml",
                f"""
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.file:
        path: {pages}
        state: directory
        mode: "0700"
    - ansible.builtin.template:
        src: "{{{{ item.src }}}}"
        dest: "{{{{ item.dest }}}}"
        mode: "0600"
      loop: {files!r}
""",
            )
            seconds_own = run(env, own, inventory)
            subprocess.run(["rm", "-rf", str(pages)], check=True)
            rows.append(("write two pages per owner", run(env, kept, inventory), seconds_own))
        finally:
            clean_access(ec2, names)
            if started:
                stop_session_cloud()

    print(f"module benchmark on {os.cpu_count()} CPUs, a roster of {args.owners}")
    print(f"{'step':<28} {'kept modules s':>15} {'own module s':>13} {'kept/own':>9}")
    for step, kept_seconds, own_seconds in rows:
        print(f"{step:<28} {kept_seconds:15.1f} {own_seconds:13.1f} {kept_seconds / own_seconds:9.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
