#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the labcloud.jupyter collection
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
---
module: ssh_tunnel
version_added: 0.1.0
short_description: Open, close or check a background SSH tunnel from a local port to a port on a VM
description:
  - Runs on the controller. Opens C(ssh -N -L local_port:remote_host:remote_port user@host) in the
    background as a connection master with a control socket, so the same tunnel can be found,
    checked and closed later by its O(name).
  - A healthy tunnel with the same destination is reused, not opened twice. A tunnel of the same
    name to another destination (the VM's address changed, another port) is closed and opened again.
  - A local port held by anything else is an error that names the process holding it, when it can
    be found.
  - With O(token), the module also asks JupyterLab's C(/api/status) through the tunnel whether the
    server answers.
  - This closes a gap. Neither ansible.builtin nor ansible.posix manage long-lived SSH port
    forwards, and C(ssh -f) started from M(ansible.builtin.command) keeps the task waiting on its
    output and leaves nothing to find the tunnel by.
options:
  name:
    description:
      - The tunnel's name; its control socket is O(control_dir)/C(<name>.sock).
    type: str
    required: true
  state:
    description:
      - V(open) makes sure the tunnel is up; V(closed) makes sure it is down.
      - V(status) only reports whether it is up and whether JupyterLab answers through it.
    type: str
    choices: [open, closed, status]
    default: open
  host:
    description: The VM's address. Required when O(state=open).
    type: str
  user:
    description: The login user on the VM. Required when O(state=open).
    type: str
  key_file:
    description: The private key for the login. Required when O(state=open).
    type: path
  remote_host:
    description: Where the VM forwards the connection to (JupyterLab listens on the VM's loopback).
    type: str
    default: 127.0.0.1
  remote_port:
    description: The port on the VM.
    type: int
    default: 8887
  local_port:
    description: The port on the controller.
    type: int
    default: 7005
  local_address:
    description:
      - The controller address the tunnel listens on. Only loopback addresses are accepted, so the
        notebook server is never offered to the network the controller is on.
    type: str
    default: 127.0.0.1
  control_dir:
    description:
      - Where control sockets and tunnel records are kept (created 0700).
      - When the socket's path would be too long for a Unix socket, the socket goes to
        C(/tmp/labcloud-tunnels-<uid>/) under a name derived from this path and O(name).
    type: path
    default: ~/.labcloud/tunnels
  known_hosts_file:
    description: The known_hosts file for the VM's host key; the user's default when not given.
    type: path
  strict_host_key_checking:
    description: C(StrictHostKeyChecking) for the connection. V(accept-new) trusts a new VM on first use.
    type: str
    choices: ['yes', accept-new]
    default: accept-new
  token:
    description:
      - JupyterLab's token. When given, RV(jupyter_status) is the HTTP status of C(/api/status)
        asked through the tunnel with it.
    type: str
  url_command:
    description:
      - A command run on the VM (with C(sudo -n)) over the tunnel's own SSH connection that prints
        JupyterLab's URL, such as C(/usr/local/bin/jupyterlab-url), which the
        C(labcloud.jupyter.jupyter_service) role installs.
      - The tunnel then forwards to the port of that URL (O(remote_port) is not used), the token it
        carries is used as O(token), and RV(url) is the URL to open on this machine.
      - With O(state=status), the URL is read only when the tunnel is up.
    type: str
  timeout:
    description: Seconds to wait for the tunnel to come up or go down.
    type: int
    default: 30
  open_browser:
    description:
      - With O(url_command) and the tunnel up, open RV(url) in this machine's web browser (Python's
        C(webbrowser), which honours C(BROWSER)).
      - The browser is given a redirect page, not the URL. The page, C(<name>-open.html) in
        O(control_dir) (0700), is readable by this user only (0600), so the token never appears on a
        command line, which every user of this machine can read. That is how C(jupyter_server) opens
        its own C(*-open.html) page. The page is removed when the tunnel is closed.
      - Opening a browser changes nothing that the task reports, and is not done in check mode.
    type: bool
    default: false
extends_documentation_fragment:
  - labcloud.jupyter.attributes
  - labcloud.jupyter.attributes.check_mode_full
  - labcloud.jupyter.attributes.diff_mode_none
attributes:
  check_mode:
    details:
      - Predicts whether the tunnel would be opened or closed without doing it.
author:
  - labcloud.jupyter developers (@labcloud)
"""

EXAMPLES = r"""
- name: Open the tunnel to hedylamarr's JupyterLab
  labcloud.jupyter.ssh_tunnel:
    name: jupyter-hedylamarr
    host: 198.51.100.7
    user: ubuntu
    key_file: ~/.labcloud/keys/jupyter-hedylamarr.pem
    local_port: 7005
    remote_port: 8887

- name: Say whether it is up and whether JupyterLab answers
  labcloud.jupyter.ssh_tunnel:
    name: jupyter-hedylamarr
    state: status
    local_port: 7005
    token: "{{ jupyter_token }}"
  no_log: true
  register: tunnel

- name: Close it
  labcloud.jupyter.ssh_tunnel:
    name: jupyter-hedylamarr
    state: closed
"""

RETURN = r"""
url:
  description:
    - With O(url_command) and the tunnel up, JupyterLab's URL on this machine, with the token when the
      server uses one. Treat it as a secret (C(no_log)).
  returned: when O(url_command) is given and the tunnel is up
  type: str
  sample: http://localhost:7005/lab?token=0123abcd
remote_port:
  description: With O(url_command), the port of JupyterLab on the VM that the tunnel forwards to.
  returned: when O(url_command) is given and the tunnel is up
  type: int
  sample: 8887
up:
  description: Whether the tunnel is up after the task.
  returned: always
  type: bool
  sample: true
pid:
  description: The process ID of the tunnel's SSH master.
  returned: when up
  type: int
  sample: 41235
local_url:
  description: Where the forwarded port answers on the controller.
  returned: always
  type: str
  sample: http://127.0.0.1:7005
control_path:
  description: The control socket of the tunnel.
  returned: always
  type: str
  sample: /home/hedy/.labcloud/tunnels/jupyter-hedylamarr.sock
destination:
  description: Where the tunnel leads (user, host, remote port), as recorded when it was opened.
  returned: when up
  type: dict
  sample: {"user": "ubuntu", "host": "198.51.100.7", "remote_port": 8887, "local_port": 7005}
jupyter_status:
  description: HTTP status of JupyterLab's C(/api/status) through the tunnel, or null when it did not answer.
  returned: when O(token) is given
  type: int
  sample: 200
browser_page:
  description: The redirect page the browser was given (it holds the token; readable by this user only).
  returned: when O(open_browser) opened a browser
  type: str
  sample: /home/hedy/.labcloud/tunnels/jupyter-hedylamarr-open.html
"""

import contextlib
import hashlib
import html
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
from typing import Callable, Dict, List, Optional

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import JUPYTER_PORT
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import LOCAL_PORT
from ansible_collections.labcloud.jupyter.plugins.module_utils.identity import user_name_error

LOOPBACK = re.compile(r"^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$")
# A host name or an IPv4 or IPv6 address: nothing ssh could read as an option.
HOST = re.compile(r"^[A-Za-z0-9:][A-Za-z0-9.:-]{0,252}$")


# A Unix socket path holds at most 107 bytes, and ssh first binds a temporary name 17 bytes longer.
MAX_SOCKET_PATH = 90


def destination_error(user: Optional[str], host: Optional[str]) -> Optional[str]:
    """Why user or host cannot go into ssh's command line (user@host), or None when both can."""
    if user is not None:
        error = user_name_error(user, "user")
        if error:
            return f"{error}; it would go into ssh's command line"
    if host is not None and not HOST.fullmatch(host):
        return f"Invalid host {host!r}: use a host name or an IP address; it would go into ssh's command line"
    return None


def control_path(control_dir: str, name: str) -> str:
    """The control socket of a named tunnel: in control_dir, or under /tmp when that path is too long."""
    path = os.path.join(control_dir, f"{name}.sock")
    if len(path.encode()) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(path.encode()).hexdigest()[:20]
    short_dir = f"/tmp/labcloud-tunnels-{os.getuid()}"
    os.makedirs(short_dir, mode=0o700, exist_ok=True)
    status = os.stat(short_dir)
    if status.st_uid != os.getuid() or status.st_mode & 0o077:
        raise OSError(f"{short_dir} must be a directory of this user's, mode 0700")
    return os.path.join(short_dir, f"{digest}.sock")


def record_path(control_dir: str, name: str) -> str:
    """Where the tunnel's destination is recorded."""
    return os.path.join(control_dir, f"{name}.json")


def ssh_options(params: Dict) -> List[str]:
    """Options every ssh call of this module uses."""
    options = [
        "-o", "BatchMode=yes",
        "-o", "IdentitiesOnly=yes",
        "-o", "ExitOnForwardFailure=yes",
        "-o", "ServerAliveInterval=30",
        "-o", "ServerAliveCountMax=3",
        "-o", "ConnectTimeout=15",
        "-o", f"StrictHostKeyChecking={params['strict_host_key_checking']}",
        "-S", control_path(params["control_dir"], params["name"]),
    ]  # fmt: skip
    if params.get("known_hosts_file"):
        options += ["-o", f"UserKnownHostsFile={params['known_hosts_file']}"]
    return options


def master_pid(params: Dict) -> Optional[int]:
    """The PID of a live master on the control socket, or None."""
    path = control_path(params["control_dir"], params["name"])
    if not os.path.exists(path):
        return None
    result = subprocess.run(
        ["ssh", "-S", path, "-O", "check", "tunnel"], capture_output=True, text=True, check=False, timeout=15
    )
    match = re.search(r"pid=(\d+)", result.stderr + result.stdout)
    return int(match.group(1)) if result.returncode == 0 and match else None


def read_record(params: Dict) -> Dict:
    """The destination recorded when the tunnel was opened."""
    try:
        with open(record_path(params["control_dir"], params["name"])) as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def wanted_destination(params: Dict) -> Dict:
    """The destination asked for."""
    return {
        "user": params["user"],
        "host": params["host"],
        "remote_host": params["remote_host"],
        "remote_port": params["remote_port"],
        "local_address": params["local_address"],
        "local_port": params["local_port"],
    }


def port_accepts(address: str, port: int) -> bool:
    """Whether something accepts TCP connections on the local port."""
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


def port_holder(port: int) -> str:
    """Name the process listening on a local TCP port, as far as ss(8) can tell."""
    try:
        result = subprocess.run(
            ["ss", "-Htlnp", f"sport = :{port}"], capture_output=True, text=True, check=False, timeout=10
        )
    except OSError:
        return "a process (ss is not available to name it)"
    match = re.search(r'users:\(\("([^"]+)",pid=(\d+)', result.stdout)
    if match:
        return f"{match.group(1)} (pid {match.group(2)})"
    return "a process this user cannot see"


def jupyter_status(address: str, port: int, token: str) -> Optional[int]:
    """HTTP status of /api/status through the tunnel, or None when nothing answers."""
    url = f"http://{address}:{port}/api/status"
    try:
        reply = open_url(url, headers={"Authorization": f"token {token}"}, timeout=10, use_proxy=False)
        return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def wait_until(predicate: Callable[[], bool], timeout: int) -> bool:
    """Poll a predicate until it holds or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def close(module: AnsibleModule, params: Dict, pid: int) -> None:
    """Ask the master to exit and wait until its socket and port are gone."""
    path = control_path(params["control_dir"], params["name"])
    subprocess.run(["ssh", "-S", path, "-O", "exit", "tunnel"], capture_output=True, check=False, timeout=15)
    if not wait_until(lambda: master_pid(params) is None, params["timeout"]):
        module.fail_json(msg=f"Could not close tunnel {params['name']}: its SSH master (pid {pid}) did not exit")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(record_path(params["control_dir"], params["name"]))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(page_path(params["control_dir"], params["name"]))


def read_url(module: AnsibleModule, params: Dict) -> Dict:
    """Run the URL command on the VM over the master connection; return its URL's port and token."""
    argv = [
        "ssh",
        *ssh_options(params),
        f"{params['user']}@{params['host']}",
        "--",
        "sudo",
        "-n",
        params["url_command"],
    ]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=params["timeout"] + 15)
    url = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    match = re.match(r"^https?://[^/:]+(?::(\d+))?(/[^?]*)?(?:\?token=([A-Za-z0-9._~-]+))?$", url)
    if result.returncode != 0 or not match:
        module.fail_json(
            msg=f"Could not read JupyterLab's URL on {params['host']} with {params['url_command']}: "
            f"{(result.stderr or result.stdout).strip() or 'no URL printed'} (is the JupyterLab service running?)"
        )
    return {"remote_port": int(match.group(1) or 80), "path": match.group(2) or "/lab", "token": match.group(3)}


def page_path(control_dir: str, name: str) -> str:
    """The redirect page that hands a tunnel's URL to the browser."""
    return os.path.join(control_dir, f"{name}-open.html")


def private_directory(directory: str) -> None:
    """Make directory (0700) and refuse one that another user owns or others may enter."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    status = os.lstat(directory)
    if status.st_uid != os.getuid() or not os.path.isdir(directory) or os.path.islink(directory):
        raise OSError(f"{directory} must be a directory of this user's")
    os.chmod(directory, 0o700)


def write_redirect_page(control_dir: str, name: str, url: str) -> str:
    """Write a page that sends the browser to url, readable by this user only (0600); return its path."""
    private_directory(control_dir)
    path = page_path(control_dir, name)
    escaped = html.escape(url, quote=True)
    content = (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">\n'
        f'<meta http-equiv="refresh" content="0; url={escaped}">\n<title>JupyterLab</title></head>\n'
        f'<body><p><a href="{escaped}">Open JupyterLab</a></p></body></html>\n'
    )
    temporary = f"{path}.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(content)
    os.replace(temporary, path)
    return path


def browser_argv(page: str) -> List[str]:
    """The command that opens a page in this machine's browser: it names the page's file, never the URL."""
    return [sys.executable, "-m", "webbrowser", "-t", "file://" + page]


def open_in_browser(control_dir: str, name: str, url: str, wait: int = 30) -> Optional[str]:
    """Open url in the browser through a private redirect page; return the page, or None when no browser opened."""
    page = write_redirect_page(control_dir, name, url)
    try:
        # A graphical browser is started in the background; webbrowser fails when it finds no browser at all.
        opened = subprocess.run(
            browser_argv(page),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, check=False, timeout=wait,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        # A browser that kept the foreground had the page for that long.
        return page
    return page if opened.returncode == 0 else None


def forward_of(params: Dict) -> str:
    """The -L argument of the tunnel."""
    return f"{params['local_address']}:{params['local_port']}:{params['remote_host']}:{params['remote_port']}"


def open_tunnel(module: AnsibleModule, params: Dict) -> Optional[int]:
    """Start the SSH master in the background and wait until the local port answers.

    With url_command, the master starts without a forward, the URL is read through it, and the
    forward to the URL's port is added to the same connection.
    """
    directory = params["control_dir"]
    os.makedirs(directory, mode=0o700, exist_ok=True)
    os.chmod(directory, 0o700)
    log_path = os.path.join(directory, f"{params['name']}.log")
    argv = ["ssh", "-f", "-N", "-M", "-i", params["key_file"], *ssh_options(params)]
    if not params["url_command"]:
        argv += ["-L", forward_of(params)]
    argv.append(f"{params['user']}@{params['host']}")
    with open(log_path, "ab") as log:
        result = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, check=False,
            timeout=params["timeout"] + 15,
        )  # fmt: skip
    if result.returncode != 0:
        with open(log_path, errors="replace") as log:
            tail = " ".join(log.read().strip().splitlines()[-3:])
        module.fail_json(
            msg=f"Could not open tunnel {params['name']} to {params['user']}@{params['host']}: ssh exited with "
            f"{result.returncode}: {tail}"
        )
    if params["url_command"]:
        params.update(read_url(module, params))
        forwarded = subprocess.run(
            ["ssh", *ssh_options(params), "-O", "forward", "-L", forward_of(params), "tunnel"],
            capture_output=True, text=True, check=False, timeout=params["timeout"] + 15,
        )  # fmt: skip
        if forwarded.returncode != 0:
            module.fail_json(msg=f"Could not forward port {params['local_port']}: {forwarded.stderr.strip()}")
    if not wait_until(lambda: port_accepts(params["local_address"], params["local_port"]), params["timeout"]):
        module.fail_json(msg=f"Tunnel {params['name']} started but 127.0.0.1:{params['local_port']} does not answer")
    pid = master_pid(params)
    with open(record_path(params["control_dir"], params["name"]), "w") as handle:
        json.dump(dict(wanted_destination(params), pid=pid), handle)
    return pid


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", default="open", choices=["open", "closed", "status"]),
            host=dict(type="str"),
            user=dict(type="str"),
            key_file=dict(type="path", no_log=False),
            remote_host=dict(type="str", default="127.0.0.1"),
            remote_port=dict(type="int", default=JUPYTER_PORT),
            local_port=dict(type="int", default=LOCAL_PORT),
            local_address=dict(type="str", default="127.0.0.1"),
            control_dir=dict(type="path", default="~/.labcloud/tunnels"),
            known_hosts_file=dict(type="path"),
            strict_host_key_checking=dict(type="str", default="accept-new", choices=["yes", "accept-new"]),
            token=dict(type="str", no_log=True),
            url_command=dict(type="str"),
            timeout=dict(type="int", default=30),
            open_browser=dict(type="bool", default=False),
        ),
        required_if=[("state", "open", ("host", "user", "key_file"))],
        supports_check_mode=True,
    )
    params = module.params
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", params["name"]):
        module.fail_json(msg=f"Tunnel name {params['name']!r} may hold only letters, digits, '.', '_' and '-'")
    error = destination_error(params["user"], params["host"])
    if error:
        module.fail_json(msg=error)
    for port in ("local_port", "remote_port"):
        if not 1 <= params[port] <= 65535:
            module.fail_json(msg=f"{port} {params[port]} is not a TCP port (1-65535)")
    if not LOOPBACK.match(params["local_address"]):
        module.fail_json(
            msg=f"local_address {params['local_address']} is not a loopback address: the tunnel would offer "
            "the notebook server to the controller's network"
        )
    if params["state"] == "open" and not os.path.isfile(params["key_file"]):
        module.fail_json(msg=f"The key file {params['key_file']} does not exist")

    try:
        control_path(params["control_dir"], params["name"])
    except OSError as exc:
        module.fail_json(msg=f"Could not prepare the control socket of tunnel {params['name']}: {exc}")
    pid = master_pid(params)
    record = read_record(params) if pid else {}
    changed = False
    if params["url_command"] and pid is not None and params["state"] != "closed":
        # The URL (its port and token) of the server behind the tunnel as it is now.
        params.update(read_url(module, params))
    if params["state"] == "open":
        healthy = (
            pid is not None
            and {k: record.get(k) for k in wanted_destination(params)} == wanted_destination(params)
            and port_accepts(params["local_address"], params["local_port"])
        )
        if not healthy:
            changed = True
            if not module.check_mode:
                if pid is not None:
                    close(module, params, pid)
                if port_accepts(params["local_address"], params["local_port"]):
                    module.fail_json(
                        msg=f"Local port {params['local_port']} is already in use by "
                        f"{port_holder(params['local_port'])}; choose another with local_port (tunnel_local_port)"
                    )
                pid = open_tunnel(module, params)
                record = read_record(params)
    elif params["state"] == "closed" and pid is not None:
        changed = True
        if not module.check_mode:
            close(module, params, pid)
            pid, record = None, {}

    # What the tunnel's state is after the task (predicted in check mode).
    up = {"open": True, "closed": False, "status": pid is not None}[params["state"]]
    result = dict(
        changed=changed,
        up=up,
        local_url=f"http://{params['local_address']}:{params['local_port']}",
        control_path=control_path(params["control_dir"], params["name"]),
    )
    if up and pid is not None:
        result["pid"] = pid
        result["destination"] = {k: record.get(k) for k in ("user", "host", "remote_port", "local_port")}
    if params["token"] and up and not module.check_mode:
        result["jupyter_status"] = jupyter_status(params["local_address"], params["local_port"], params["token"])
    if params["url_command"] and up and params.get("path"):
        query = f"?token={params['token']}" if params["token"] else ""
        result["url"] = f"http://localhost:{params['local_port']}{params['path']}{query}"
        result["remote_port"] = params["remote_port"]
        if params["open_browser"] and not module.check_mode:
            try:
                page = open_in_browser(params["control_dir"], params["name"], result["url"])
            except OSError as exc:
                module.fail_json(msg=f"Could not open the browser for tunnel {params['name']}: {exc}")
            if page:
                result["browser_page"] = page
            else:
                module.warn("No web browser could be opened on this machine: open the URL the run prints yourself")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
