"""What configure.yml promises on every machine it configured, checked on the machine itself.

Requests go through an SSH tunnel from this computer (the way a researcher reaches the server), a
kernel runs research code through the REST and websocket APIs, and the service is killed and the
machine rebooted through the EC2 API. The tests run in file order: the reboot and the leak checks
come last, so that the journal they search covers everything before.
"""

from __future__ import annotations

import base64
import contextlib
import http.cookiejar
import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import testinfra.utils.ansible_runner
import yaml
from packaging.version import Version

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("all")

PORT = 8887
USER = "admin"
SERVICE = "jupyterlab"
ENV = "/opt/jupyterlab/env"
TOKEN_FILE = "/var/lib/jupyterlab/token"
NOTEBOOKS = f"/home/{USER}/notebooks"
CLONE = f"{NOTEBOOKS}/research"
HERE = Path(__file__).resolve().parent
SSH_OPTIONS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
SSH_OPTIONS += ["-o", "ConnectTimeout=3", "-o", "BatchMode=yes"]


def ssh_command(host, *arguments: str) -> list[str]:
    """The ssh command line that logs in to this machine with the run's key."""
    entry = instance(host)
    return ["ssh", "-i", entry["identity_file"], *SSH_OPTIONS, *arguments, f"{entry['user']}@{entry['address']}"]


def instance(host) -> dict:
    """This machine's entry in the instance configuration create.yml wrote."""
    entries = yaml.safe_load(Path(os.environ["MOLECULE_INSTANCE_CONFIG"]).read_text())
    return next(entry for entry in entries if entry["instance"] == host.backend.host)


def run_state() -> dict:
    """What create.yml recorded about this run (the research repository's URL and directory)."""
    return json.loads((Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "localcloud.json").read_text())


def token(host) -> str:
    """The token, read through the command the collection installs for users and tunnel.yml."""
    with host.sudo():
        url = host.check_output("/usr/local/bin/jupyterlab-url")
    match = re.fullmatch(rf"http://127\.0\.0\.1:{PORT}/lab\?token=([0-9a-f]{{64}})", url.strip())
    assert match, "jupyterlab-url prints http://127.0.0.1:8887/lab?token=<64 hex digits>"
    return match.group(1)


def main_pid(host) -> int:
    return int(host.check_output(f"systemctl show --property=MainPID --value {SERVICE}"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def ssh_tunnel(host) -> Iterator[str]:
    """`ssh -N -L` to the server's port, as tunnel.yml opens it; yields the local base URL."""
    local = free_port()
    process = subprocess.Popen(
        ssh_command(host, "-N", "-L", f"127.0.0.1:{local}:127.0.0.1:{PORT}"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", local), timeout=1):
                break
            assert process.poll() is None, f"ssh -L failed: {process.stderr.read().decode()}"
            assert time.monotonic() < deadline, "the SSH tunnel did not open within 20 s"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{local}"
    finally:
        # The tunnel is the test's tool, not what it tests: stop it for sure, without hiding the
        # body's own failure behind a slow exit.
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def http_status(url: str, headers: dict | None = None, opener=None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=30) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


def wait_until_serving(host, timeout: float) -> float:
    """Seconds until the server answers on its port again (an unauthenticated request gets 403)."""
    started = time.monotonic()
    while True:
        status = host.run(
            f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 2 http://127.0.0.1:{PORT}/api/status"
        ).stdout
        if status == "403":
            return time.monotonic() - started
        assert time.monotonic() - started < timeout, f"JupyterLab did not answer within {timeout} s (last: {status!r})"
        time.sleep(0.25)


def test_service_is_enabled_and_active_as_the_login_user(host):
    service = host.service(SERVICE)
    assert service.is_enabled
    assert service.is_running
    assert host.check_output(f"ps -o user= -p {main_pid(host)}").strip() == USER
    properties = host.check_output(f"systemctl show --property=Restart,User,NoNewPrivileges {SERVICE}")
    assert "Restart=on-failure" in properties
    assert f"User={USER}" in properties
    assert "NoNewPrivileges=yes" in properties


def test_listens_on_loopback_port_only(host):
    assert host.socket(f"tcp://127.0.0.1:{PORT}").is_listening
    # Every listening socket of the service's processes (server and kernels) is on loopback; the
    # researcher's own ~/.jupyter settings on `handmade` (0.0.0.0:9999) do not apply.
    pids = host.check_output(f"ps -e -o pid= -o unit= | awk '$2 == \"{SERVICE}.service\" {{print $1}}'").split()
    assert pids, "ps sees the service's processes"
    with host.sudo():
        listening = host.check_output("ss -Hltnp").splitlines()
    ours = [line for line in listening if any(f"pid={pid}," in line for pid in pids)]
    addresses = {line.split()[3] for line in ours}
    assert f"127.0.0.1:{PORT}" in addresses
    assert all(address.startswith(("127.", "[::1]")) for address in addresses), addresses
    assert not host.socket("tcp://0.0.0.0:9999").is_listening


def test_api_needs_the_token(host):
    right = token(host)
    with ssh_tunnel(host) as base:
        assert http_status(f"{base}/api/status") == 403
        assert http_status(f"{base}/api/status", {"Authorization": "token " + "0" * 64}) == 403
        assert http_status(f"{base}/api/status?token={'f' * 64}") == 403
        assert http_status(f"{base}/api/status", {"Authorization": f"token {right}"}) == 200


def test_xsrf_check_is_on(host):
    """A browser session (cookie from the token login) cannot POST without the XSRF token."""
    right = token(host)
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with ssh_tunnel(host) as base:
        assert http_status(f"{base}/lab?token={right}", opener=browser) == 200
        assert any(cookie.name.startswith("username-") for cookie in jar), "the token login sets a session cookie"
        assert http_status(f"{base}/api/status", opener=browser) == 200
        request = urllib.request.Request(f"{base}/api/kernels", data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            browser.open(request, timeout=30)
        assert refused.value.code == 403


def run_in_kernel(host, code: str) -> dict:
    """Run code in a new kernel of the server, over its REST and websocket APIs, from the machine."""
    copy = f"src={HERE / 'kernel_client.py'} dest=/tmp/kernel_client.py mode=0644"
    host.ansible("ansible.builtin.copy", copy, check=False, become=True)
    encoded = base64.b64encode(code.encode()).decode()
    host.check_output(f"echo {encoded} | base64 -d > /tmp/kernel_code.py")
    with host.sudo():
        output = host.check_output(
            f"sudo -u {USER} {ENV}/bin/python /tmp/kernel_client.py"
            f" http://127.0.0.1:{PORT} {TOKEN_FILE} /tmp/kernel_code.py"
        )
        host.check_output("rm -f /tmp/kernel_client.py /tmp/kernel_code.py")
    return json.loads(output)


def test_kernel_runs_research_code_over_rest_and_websocket(host):
    code = (
        "import netCDF4, numpy, xarray\n"
        "xarray.Dataset({'temperature': ('depth', numpy.arange(5.0))}).to_netcdf('molecule-check.nc')\n"
        "with netCDF4.Dataset('molecule-check.nc') as data:\n"
        "    print('sum', float(data['temperature'][:].sum()))\n"
    )
    result = run_in_kernel(host, code)
    assert result["status"] == "ok", result
    assert result["stdout"].strip() == "sum 10.0"
    written = host.file(f"{NOTEBOOKS}/molecule-check.nc")
    assert written.exists
    assert written.user == USER
    assert written.content[:4] == b"\x89HDF", "netCDF4 wrote an HDF5-based NetCDF file"
    with host.sudo():
        host.check_output(f"rm -f {NOTEBOOKS}/molecule-check.nc")


def test_kernel_finds_ffmpeg_for_animations_and_node(host):
    """The tutorial's tools work from a notebook, in the service's sandbox: matplotlib writes an
    animation with ffmpeg, and node runs, both found on the server's PATH."""
    code = (
        "import subprocess, matplotlib\n"
        "matplotlib.use('Agg')\n"
        "import matplotlib.pyplot as plt, matplotlib.animation as animation\n"
        "figure, axes = plt.subplots()\n"
        "line, = axes.plot([0, 1], [0, 1])\n"
        "movie = animation.FuncAnimation(figure, lambda i: line.set_ydata([0, i]), frames=3)\n"
        "movie.save('molecule-check.mp4', writer=animation.FFMpegWriter(fps=2))\n"
        "node = subprocess.run(['node', '-e', 'process.stdout.write(String(6 * 7))'],\n"
        "                      capture_output=True, text=True, check=True)\n"
        "print(node.stdout)\n"
    )
    result = run_in_kernel(host, code)
    assert result["status"] == "ok", result
    assert result["stdout"].strip() == "42", result
    movie = host.file(f"{NOTEBOOKS}/molecule-check.mp4")
    assert movie.exists and movie.size > 0
    assert movie.content[4:8] == b"ftyp", "an MP4 file"
    with host.sudo():
        host.check_output(f"rm -f {NOTEBOOKS}/molecule-check.mp4")


def test_terminal_opens_a_login_shell_as_the_jupyter_user(host):
    """The sandbox leaves terminals working: a pseudo-terminal and a login shell under the server."""
    with host.sudo():
        created = host.check_output(
            f'curl -s -X POST -H "Authorization: token $(cat {TOKEN_FILE})" http://127.0.0.1:{PORT}/api/terminals'
        )
    name = json.loads(created)["name"]
    shells = host.check_output(f"ps --ppid {main_pid(host)} -o user=,tty=,args=")
    assert any(line.split()[0] == USER and line.split()[1].startswith("pts/") for line in shells.splitlines()), shells
    with host.sudo():
        host.check_output(
            f'curl -s -X DELETE -H "Authorization: token $(cat {TOKEN_FILE})" '
            f"http://127.0.0.1:{PORT}/api/terminals/{name}"
        )


def api(host, path: str) -> dict:
    """A GET of the server's API on the machine, with its token (read there, never on a command line)."""
    with host.sudo():
        reply = host.check_output(
            f'curl -s --fail -H "Authorization: token $(cat {TOKEN_FILE})" http://127.0.0.1:{PORT}{path}'
        )
    return json.loads(reply)


def test_server_settings_refuse_anonymous_requests_and_fetch_no_news(host):
    """The running server loads the role's settings file, and its answers show what the file asks for."""
    command = host.check_output(f"ps -o args= -p {main_pid(host)}")
    assert "--config=/etc/jupyterlab/jupyter_server_config.py" in command
    loader = (
        "import json; from traitlets.config.loader import PyFileConfigLoader;"
        " c = PyFileConfigLoader('jupyter_server_config.py', path='/etc/jupyterlab').load_config();"
        " print(json.dumps({'anonymous': c.ServerApp.allow_unauthenticated_access, 'news': c.LabApp.news_url}))"
    )
    with host.sudo():
        settings = json.loads(host.check_output(f'sudo -u {USER} {ENV}/bin/python -c "{loader}"'))
    assert settings == {"anonymous": False, "news": None}
    # The news and update checks answer nothing, and the front end is told not to ask about news.
    assert api(host, "/lab/api/news")["news"] == []
    assert api(host, "/lab/api/update")["notification"] is None
    # Defaults of the settings, as the server serves their schema (JupyterLab's own are "none": ask).
    notification = api(host, "/lab/api/settings/@jupyterlab/apputils-extension:notification")
    defaults = {name: spec.get("default") for name, spec in notification["schema"]["properties"].items()}
    assert (defaults["fetchNews"], defaults["checkForUpdates"]) == ("false", False)


def test_service_has_memory_and_task_limits(host):
    shown = host.check_output(f"systemctl show --property=MemoryMax,TasksMax {SERVICE}")
    properties = dict(line.split("=", 1) for line in shown.split())
    memory = int(host.check_output("awk '/^MemTotal:/ {print $2}' /proc/meminfo")) * 1024
    print(f"\n{host.backend.host}: {properties} of {memory} bytes of RAM")
    assert properties["TasksMax"] == "4096"
    assert properties["MemoryMax"].isdigit() and int(properties["MemoryMax"]) < memory


def test_environment_holds_jupyter_at_or_above_the_floors(host):
    defaults = yaml.safe_load((HERE.parents[2] / "roles/jupyterlab/defaults/main.yml").read_text())
    floors = defaults["jupyterlab_version_floors"]
    probe = "import json, sys;"
    probe += " from importlib import metadata as m; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    found = json.loads(host.check_output(f"{ENV}/bin/python -c '{probe}' {' '.join(floors)}"))
    print(f"\n{host.backend.host}: {found}")
    for name, floor in floors.items():
        assert Version(found[name]) >= Version(floor), f"{name} {found[name]} is older than {floor}"


def test_systemd_exposure_is_at_most_what_readme_states(host):
    """README states the service's exposure (systemd-analyze security) as 1.3 and promises at most 2.0."""
    with host.sudo():
        report = host.check_output(f"systemd-analyze security --no-pager {SERVICE}.service")
    exposure = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", report).group(1))
    print(f"\n{host.backend.host}: systemd-analyze security {SERVICE}.service: exposure {exposure}")
    assert exposure <= 2.0, report


def test_url_command_is_for_root_and_the_jupyter_user_only(host):
    with host.sudo():
        as_user = host.check_output(f"sudo -u {USER} /usr/local/bin/jupyterlab-url")
        as_other = host.run("sudo -u nobody /usr/local/bin/jupyterlab-url")
    assert as_user.endswith(token(host))
    assert as_other.rc != 0
    assert "run it as root" in as_other.stderr
    token_file = host.file(TOKEN_FILE)
    assert (token_file.user, token_file.mode) == (USER, 0o600)
    assert host.file(os.path.dirname(TOKEN_FILE)).mode == 0o700


def test_research_repository_is_updated_and_local_work_kept(host):
    upstream = subprocess.run(
        ["git", "-C", f"{run_state()['git_dir']}/research.git", "rev-parse", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with host.sudo(USER):
        head = host.check_output(f"git -C {CLONE} rev-parse HEAD")
        status = host.check_output(f"git -C {CLONE} status --porcelain")
    assert head == upstream, "the clone was fast-forwarded to the new upstream commit"
    assert host.file(f"{CLONE}/upstream.py").exists
    assert host.file(f"{CLONE}/README.md").contains(f"Notes of {host.backend.host}, not committed.")
    assert " M README.md" in status
    assert "?? scratch.txt" in status
    assert host.file(CLONE).user == USER
    if host.backend.host == "handmade":
        assert host.file(f"{CLONE}/analysis.py").contains("my own change")
        assert host.file(f"{NOTEBOOKS}/my-analysis.ipynb").exists


def test_killed_server_is_restarted_within_10_seconds(host):
    # Killed and timed on the machine itself, polling every 0.1 s, until a new main process answers.
    script = f"""
        before=$(systemctl show --property=MainPID --value {SERVICE})
        start=$(date +%s%N)
        kill -9 "$before"
        while [ $(( $(date +%s%N) - start )) -lt 20000000000 ]; do
            code=$(curl -s -o /dev/null -w '%{{http_code}}' --max-time 1 http://127.0.0.1:{PORT}/api/status)
            now=$(systemctl show --property=MainPID --value {SERVICE})
            if [ "$code" = 403 ] && [ "$now" != 0 ] && [ "$now" != "$before" ]; then
                echo $(( ($(date +%s%N) - start) / 1000000 )); exit 0
            fi
            sleep 0.1
        done
        exit 1
    """
    with host.sudo():
        result = host.run(script)
    assert result.rc == 0, "JupyterLab did not come back within 20 s of kill -9"
    waited = int(result.stdout) / 1000
    print(f"\n{host.backend.host}: after kill -9, JupyterLab answered again after {waited:.1f} s")
    assert waited <= 10


def test_server_is_back_after_a_reboot(host):
    entry, before = instance(host), token(host)
    ec2 = boto3.client("ec2")
    with host.sudo():
        host.check_output("touch /run/molecule-before-reboot")
    started = time.monotonic()
    ec2.reboot_instances(InstanceIds=[entry["instance_id"]])
    deadline = started + 180
    while True:
        # /run is a tmpfs: the marker is gone once the machine has booted again.
        probe = subprocess.run(
            [*ssh_command(host), "test ! -e /run/molecule-before-reboot && systemctl is-active jupyterlab"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0:
            break
        assert time.monotonic() < deadline, "the machine did not come back with JupyterLab active within 180 s"
        time.sleep(1)
    waited = time.monotonic() - started + wait_until_serving(host, timeout=60)
    print(f"\n{host.backend.host}: JupyterLab answered {waited:.1f} s after RebootInstances")
    assert token(host) == before, "the token survives a reboot"
    with ssh_tunnel(host) as base:
        assert http_status(f"{base}/api/status", {"Authorization": f"token {before}"}) == 200


def test_token_is_in_no_log_process_list_or_world_readable_file(host):
    """Searched with the token file as the pattern file, so the token is never on a command line."""
    token(host)
    with host.sudo():
        journal = host.run(f"journalctl --no-pager --output=cat | grep -c -F -f {TOKEN_FILE}")
        processes = host.run(f"ps auxwwe | grep -c -F -f {TOKEN_FILE}")
        environment = host.run(f"grep -c -F -f {TOKEN_FILE} /proc/{main_pid(host)}/environ")
        readable = host.run(
            "for top in / /run /tmp /var/tmp /dev/shm; do "
            "find $top -xdev \\( -path /proc -o -path /sys \\) -prune -o -type f -perm -o=r -size -20M -print0; "
            f"done | xargs -0 grep -l -F -f {TOKEN_FILE} 2>/dev/null"
        )
        lines = int(host.check_output("journalctl --no-pager --output=cat | wc -l"))
    assert lines > 100, "the journal holds the service's log"
    assert journal.stdout.strip() == "0", "the token is in the journal"
    assert processes.stdout.strip() == "0", "the token is in the process list or a process environment"
    assert environment.stdout.strip() == "0"
    assert readable.stdout.strip() == "", f"world-readable files hold the token: {readable.stdout}"
