"""labcloud.jupyter.ssh_tunnel against a real local-cloud machine, run through `ansible` as users run it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.localcloud_harness import REPO, Cloud, free_port, serve_on_loopback, ssh, wait_ssh

ANSIBLE = Path(sys.executable).parent / "ansible"
TOKEN = "0123456789abcdef0123456789abcdef"


def run_module(args: dict, check: bool = False, env: dict | None = None) -> dict:
    """Run the module on localhost through `ansible` and return its result."""
    command = [str(ANSIBLE), "localhost", "-m", "labcloud.jupyter.ssh_tunnel", "-a", json.dumps(args)]
    if check:
        command.append("--check")
    environ = dict(
        os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1", **(env or {})
    )
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=environ, timeout=120)
    return json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


@pytest.fixture(scope="module")
def server(session_cloud: Cloud, tmp_path_factory: pytest.TempPathFactory):
    """A machine with a token-checking stand-in for JupyterLab's /api/status on its 127.0.0.1:8887."""
    ec2 = session_cloud.client()
    key_name, key = session_cloud.key_pair(ec2)
    instance = session_cloud.launch(ec2, key_name=key_name)
    address = instance["PublicIpAddress"]
    wait_ssh(address, key)
    app = (
        "import http.server\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        f"        ok = self.headers.get('Authorization') == 'token {TOKEN}'\n"
        "        self.send_response(200 if ok else 403); self.end_headers(); self.wfile.write(b'{}')\n"
        "http.server.HTTPServer(('127.0.0.1', 8887), H).serve_forever()\n"
    )
    ssh(address, key, f"cat > /tmp/status.py <<'EOF'\n{app}EOF")
    serve_on_loopback(address, key, 8887, "python3 /tmp/status.py")
    yield {"host": address, "user": "admin", "key_file": str(key)}
    session_cloud.cleanup()


def test_open_status_reuse_and_close(server: dict, tmp_path: Path) -> None:
    port = free_port()
    common = {
        "name": "jupyter-tester",
        "local_port": port,
        "control_dir": str(tmp_path / "tunnels"),
        "known_hosts_file": str(tmp_path / "known_hosts"),
    }
    opening = dict(common, **server, token=TOKEN)

    predicted = run_module(opening, check=True)
    assert predicted["changed"] is True and predicted["up"] is True
    assert not (tmp_path / "tunnels" / "jupyter-tester.sock").exists(), "check mode opens nothing"

    opened = run_module(opening)
    assert opened["changed"] is True and opened["up"] is True and opened["jupyter_status"] == 200
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/status", headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 200, "the local port reaches the VM's 127.0.0.1:8887"
    assert TOKEN not in json.dumps(opened), "the token never appears in the module's output"

    assert run_module(opening, check=True)["changed"] is False
    again = run_module(opening)
    assert again["changed"] is False and again["pid"] == opened["pid"], "a healthy tunnel is reused"

    status = run_module(dict(common, state="status", token="wrong-token"))
    assert status["up"] is True and status["jupyter_status"] == 403

    assert run_module(dict(common, state="closed"), check=True)["changed"] is True
    closed = run_module(dict(common, state="closed"))
    assert closed["changed"] is True and closed["up"] is False
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert run_module(dict(common, state="closed"))["changed"] is False
    assert run_module(dict(common, state="status"))["up"] is False


def test_a_port_held_by_another_process_is_named(server: dict, tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_module(
            {
                "name": "jupyter-busy",
                "local_port": port,
                "control_dir": str(tmp_path),
                **server,
                "known_hosts_file": str(tmp_path / "known_hosts"),
            }
        )
    assert result["failed"] is True
    assert f"Local port {port} is already in use by " in result["msg"]
    assert f"(pid {os.getpid()})" in result["msg"], "the message names the process holding the port"


def test_only_loopback_addresses_are_offered(server: dict, tmp_path: Path) -> None:
    result = run_module({"name": "jupyter-open", "local_address": "0.0.0.0", "control_dir": str(tmp_path), **server})
    assert result["failed"] is True
    assert "not a loopback address" in result["msg"]
