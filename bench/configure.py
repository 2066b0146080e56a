"""Benchmark of playbooks/configure.yml against a plain shell script doing the same steps, side by side.

    python bench/configure.py

Needs the local cloud running (`make localcloud-up`; its environment is read from the running
cloud). In one run it launches two identical fresh Debian 12 machines from the base image and
measures, at the same time, one on each machine:

  ansible first run    ansible-playbook playbooks/configure.yml (uv environment, as the local
                       cloud's inventory sets it)
  shell script         the same steps with the same package managers (apt, pip, uv) and the
                       same files, written as a plain script and run over one SSH session

then, on the Ansible machine,

  ansible second run   configure.yml again, with nothing left to change
  the look             what configure.yml's roles need to know about the host (their requests,
                       as configure.yml makes them), asked of labcloud.jupyter.host_facts in one
                       task, against the kept modules that answer the same: setup, getent,
                       stat (one item per path), package_facts, service_facts; each run LOOKS
                       times, alternately, and the medians compared

and prints the times with their ratios to the project's targets: the first run at most 1.25
times the shell script, the second at most 10 % of the first with changed=0. Both machines are
checked to serve JupyterLab afterwards, and both are terminated at the end.
"""

from __future__ import annotations

import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.localcloud_harness import SSH_OPTIONS, Cloud, ssh, start_session_cloud, wait_ssh  # noqa: E402

ANSIBLE_RATIO_TARGET = 1.25
SECOND_RUN_TARGET = 0.10
LOOKS = 5
USER = "admin"
ENV = "/opt/jupyterlab/env"
ROLES = REPO / "roles"
# The templates of the jupyter_service role, by where they are written.
TEMPLATES = {
    "/etc/jupyterlab/jupyter_server_config.py": ("etc/jupyterlab/jupyter_server_config.py.j2", "0640"),
    "/usr/local/bin/jupyterlab-url": ("usr/local/bin/jupyterlab-url.j2", "0755"),
    "/etc/systemd/system/jupyterlab.service": ("etc/systemd/system/jupyterlab.service.j2", "0644"),
}


def ansible_env() -> dict[str, str]:
    return dict(
        os.environ,
        PATH=f"{REPO / '.venv/bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
    )


def render_templates(workdir: Path) -> dict[str, str]:
    """The service role's files as it writes them for the login user, rendered with Ansible's template engine."""
    role = ROLES / "jupyter_service"
    user_vars = workdir / "user.yml"
    user_vars.write_text(
        f"jupyter_service_user_name: {USER}\njupyter_service_user_group: {USER}\n"
        f"jupyter_service_user_home: /home/{USER}\njupyter_service_notebook_path: /home/{USER}/notebooks\n"
    )
    rendered = {}
    for destination, (source, _) in TEMPLATES.items():
        target = workdir / Path(destination).name
        variables = [f"@{role / 'defaults/main.yml'}", f"@{role / 'vars/main.yml'}", f"@{user_vars}"]
        subprocess.run(
            [
                str(REPO / ".venv/bin/ansible"),
                *("localhost", "-c", "local", "-m", "ansible.builtin.template"),
                *("-a", f"src={role / 'templates' / source} dest={target}"),
                *(argument for variable in variables for argument in ("-e", variable)),
            ],
            env=ansible_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        rendered[destination] = target.read_text()
    return rendered


def role_defaults(role: str) -> dict:
    return yaml.safe_load((ROLES / role / "defaults/main.yml").read_text())


def shell_script(files: dict[str, str]) -> str:
    """configure.yml's steps for a fresh Debian machine, as a plain script."""
    jupyterlab, research = role_defaults("jupyterlab"), role_defaults("research_packages")
    uv = f"sudo -u {USER} --preserve-env=UV_NO_PROGRESS /opt/jupyterlab/uv/bin/uv"
    uv_spec = shlex.quote(jupyterlab["jupyterlab_uv_spec"])
    apt_get = "apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends"
    lines = [
        "set -eu",
        "export DEBIAN_FRONTEND=noninteractive UV_NO_PROGRESS=1",
        # The first boot holds the package manager's lock (2: done with recoverable errors).
        "if command -v cloud-init >/dev/null; then cloud-init status --wait >/dev/null || [ $? -eq 2 ]; fi",
        "ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1 || apt-get -o DPkg::Lock::Timeout=300 update -q",
        f"{apt_get} git acl ca-certificates python3-venv python3-packaging",
        "install -d -m 0755 /etc/jupyterlab /opt/jupyterlab",
        f"install -d -o {USER} -g {USER} -m 0750 /home/{USER}/notebooks",
        f"install -d -o {USER} -g {USER} -m 0755 /opt/jupyterlab/env",
        "python3 -m venv /opt/jupyterlab/uv",
        f"/opt/jupyterlab/uv/bin/pip install -q --disable-pip-version-check {uv_spec}",
        f"{uv} venv --seed --python /usr/bin/python3 --system-certs /opt/jupyterlab/env",
    ]
    os_packages = research["research_packages_os_packages"]
    if os_packages:
        lines.append(f"{apt_get} {shlex.join(os_packages)}")
    research_specs = research["research_packages_list"] + research["research_packages_uv_packages"]
    for specs in (jupyterlab["jupyterlab_packages"], research_specs):
        lines.append(f"{uv} pip install --python /opt/jupyterlab/env/bin/python --system-certs {shlex.join(specs)}")
    ffmpeg = "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())"
    lines.append(f"ln -sfn \"$(sudo -u {USER} {ENV}/bin/python -I -c '{ffmpeg}')\" {ENV}/bin/ffmpeg")
    for destination, content in files.items():
        mode = TEMPLATES[destination][1]
        group = USER if destination.endswith(".py") else "root"
        lines += [f"cat > {destination} <<'LABCLOUD_EOF'", content.rstrip("\n"), "LABCLOUD_EOF"]
        lines += [f"chown root:{group} {destination}", f"chmod {mode} {destination}"]
    lines += [
        "systemctl daemon-reload",
        "systemctl enable --now jupyterlab",
        "for i in $(seq 1 300); do",
        "  [ \"$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8887/api/status)\" = 403 ] && exit 0",
        "  sleep 0.2",
        "done",
        "exit 1",
    ]
    return "\n".join(lines) + "\n"


def timed_run(argv: list[str], what: str, **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    """Run argv to completion; its wall time and result, or RuntimeError with its output's tail."""
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    seconds = time.monotonic() - started
    if result.returncode:
        raise RuntimeError(f"{what} failed:\n{result.stdout[-4000:]}{result.stderr[-2000:]}")
    return seconds, result


def run_configure(inventory: Path) -> tuple[float, str]:
    argv = [str(REPO / ".venv/bin/ansible-playbook"), "-i", str(inventory), "playbooks/configure.yml"]
    seconds, result = timed_run(argv, "configure.yml", cwd=REPO, env=ansible_env())
    return seconds, result.stdout


def run_script(address: str, key: Path, script: str) -> float:
    argv = ["ssh", "-i", str(key), *SSH_OPTIONS, f"{USER}@{address}", "sudo bash -s"]
    return timed_run(argv, "the shell script", input=script)[0]


def look_playbooks(workdir: Path) -> dict[str, Path]:
    """Two playbooks that find out what configure.yml's roles need, with its own settings and requests.

    Both are configure.yml itself with its tasks replaced (its roles stay in the play for their
    variables, and are skipped by the tag): "own" asks host_facts, as configure.yml does; "kept"
    asks the kept modules the same questions (a passwd entry per user, a stat per path, the
    installed packages, the units).
    """
    play = yaml.safe_load((REPO / "playbooks/configure.yml").read_text())[0]
    play["hosts"] = "jupyter"
    looked = "[miniconda_look, jupyterlab_look, research_packages_look, jupyter_service_look, sshd_look]"
    own = [{"name": "Look at the host", "labcloud.jupyter.host_facts": {"requests": "{{ " + looked + " }}"}}]
    kept = [
        {"name": "Facts", "ansible.builtin.setup": {"gather_subset": ["min"]}},
        {
            "name": "Users",
            "ansible.builtin.getent": {"database": "passwd", "key": "{{ item }}", "fail_key": False},
            "loop": "{{ " + looked + " | map(attribute='user', default='') | select | unique | list }}",
        },
        {
            "name": "Paths",
            "ansible.builtin.stat": {"path": "{{ item }}", "get_checksum": False},
            "loop": "{{ " + looked + " | map(attribute='paths', default={}) | map('dict2items') | flatten"
            " | map(attribute='value') | unique | list }}",
        },
        {"name": "Packages", "ansible.builtin.package_facts": {"manager": "apt"}},
        {"name": "Units", "ansible.builtin.service_facts": {}},
    ]
    playbooks = {}
    for name, tasks in (("own", own), ("kept", kept)):
        variant = {**play, "pre_tasks": [{**task, "tags": ["look"]} for task in tasks]}
        playbooks[name] = workdir / f"look-{name}.yml"
        playbooks[name].write_text(yaml.safe_dump([variant], sort_keys=False))
    return playbooks


def time_looks(inventory: Path, playbooks: dict[str, Path]) -> dict[str, float]:
    """The median wall time of each look playbook, run LOOKS times alternately."""
    times: dict[str, list[float]] = {name: [] for name in playbooks}
    for _ in range(LOOKS):
        for name, playbook in playbooks.items():
            argv = [str(REPO / ".venv/bin/ansible-playbook"), "-i", str(inventory), "--tags", "look", str(playbook)]
            times[name].append(timed_run(argv, f"the {name} look", cwd=REPO / "playbooks", env=ansible_env())[0])
    return {name: statistics.median(values) for name, values in times.items()}


def changed_count(output: str) -> int:
    return int(re.search(r"changed=(\d+)", output.split("PLAY RECAP")[-1]).group(1))


def serves_jupyterlab(address: str, key: Path) -> bool:
    """The server answers on 127.0.0.1:8887 and accepts the token jupyterlab-url prints."""
    check = (
        "token=$(sudo /usr/local/bin/jupyterlab-url | sed 's/.*token=//');"
        ' curl -s -o /dev/null -w "%{http_code}" -H "Authorization: token $token" http://127.0.0.1:8887/api/status'
    )
    return ssh(address, key, check, check=False).stdout.strip() == "200"


def launch_pair(cloud: Cloud, run: str) -> tuple[list[dict], Path, str]:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    tags = [{"Key": "Name", "Value": f"bench-configure-{run}"}, {"Key": "Project", "Value": "labcloud-jupyter-bench"}]
    machines = [
        cloud.launch(ec2, key_name=key_name, TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
        for _ in range(2)
    ]
    for machine in machines:
        wait_ssh(machine["PublicIpAddress"], key, timeout=120)
    return machines, key, key_name


def main() -> int:
    cloud, started_cloud = start_session_cloud(Path(tempfile.mkdtemp(prefix="bench-configure-")))
    if started_cloud:
        print("note: this benchmark started the local cloud; stop it with `make localcloud-down`", file=sys.stderr)
    run = os.urandom(3).hex()
    machines, key, key_name = launch_pair(cloud, run)
    try:
        ansible_machine, shell_machine = machines
        workdir = cloud.tmp
        inventory = workdir / "hosts.yml"
        inventory.write_text(
            "all:\n  children:\n    jupyter:\n      hosts:\n        bench:\n"
            f"          ansible_host: {ansible_machine['PublicIpAddress']}\n          ansible_user: {USER}\n"
            f"          ansible_ssh_private_key_file: {key}\n"
            "          ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null\n"
            "          jupyterlab_env_manager: uv\n"
        )
        script = shell_script(render_templates(workdir))
        times: dict[str, float] = {}
        outputs: dict[str, str] = {}
        errors: list[str] = []

        def first_ansible_run() -> None:
            try:
                times["first"], outputs["first"] = run_configure(inventory)
            except RuntimeError as error:
                errors.append(str(error))

        def shell_run() -> None:
            try:
                times["shell"] = run_script(shell_machine["PublicIpAddress"], key, script)
            except RuntimeError as error:
                errors.append(str(error))

        threads = [threading.Thread(target=first_ansible_run), threading.Thread(target=shell_run)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            print("\n".join(errors), file=sys.stderr)
            return 1
        times["second"], outputs["second"] = run_configure(inventory)
        looks = time_looks(inventory, look_playbooks(workdir))

        served = {
            "ansible": serves_jupyterlab(ansible_machine["PublicIpAddress"], key),
            "shell": serves_jupyterlab(shell_machine["PublicIpAddress"], key),
        }
        ratio, second = times["first"] / times["shell"], times["second"] / times["first"]
        first_changed, second_changed = changed_count(outputs["first"]), changed_count(outputs["second"])
        print("configure.yml versus a shell script, two fresh Debian 12 local-cloud machines side by side (uv);")
        print("the first Ansible run and the script run at the same time, the second run after them")
        print(f"  {'ansible first run':20} {times['first']:7.1f} s   changed={first_changed}")
        print(f"  {'shell script':20} {times['shell']:7.1f} s")
        print(f"  {'ansible second run':20} {times['second']:7.1f} s   changed={second_changed}")
        verdict = {True: "ok", False: "MISSED"}
        ok_ratio = ratio <= ANSIBLE_RATIO_TARGET
        print(f"  ansible / shell       {ratio:5.2f}   target <= {ANSIBLE_RATIO_TARGET}   {verdict[ok_ratio]}")
        ok_second = second <= SECOND_RUN_TARGET and second_changed == 0
        print(
            f"  second / first        {second:5.3f}  target <= {SECOND_RUN_TARGET} and changed=0   {verdict[ok_second]}"
        )
        print(f"  JupyterLab answers with its token: ansible {served['ansible']}, shell {served['shell']}")
        print(f"what configure.yml's roles look at on the host, median of {LOOKS} runs of each, alternately")
        print(f"  {'host_facts, one task':52} {looks['own']:6.2f} s")
        print(f"  {'setup, getent, stat, package_facts, service_facts':52} {looks['kept']:6.2f} s")
        print(f"  kept / host_facts     {looks['kept'] / looks['own']:5.2f}")
        return 0 if all(served.values()) else 1
    finally:
        cloud.cleanup()
        cloud.client().delete_key_pair(KeyName=key_name)


if __name__ == "__main__":
    sys.exit(main())
