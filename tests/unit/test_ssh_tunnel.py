"""labcloud.jupyter.ssh_tunnel: what reaches ssh's and the browser's command lines.

The browser is opened for real through Python's webbrowser, with BROWSER set to a program that
records the arguments it was given, as any browser would receive them.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_collections.labcloud.jupyter.plugins.modules import ssh_tunnel

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = Path(sys.executable).parent / "ansible"
TOKEN = "0123456789abcdef0123456789abcdef0123456789abcdef"
URL = f"http://localhost:7005/lab?token={TOKEN}"


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A browser that writes the arguments it was started with, one per line, and the file they name."""
    record = tmp_path / "argv.txt"
    program = tmp_path / "browser"
    program.write_text(f'#!/bin/sh\nprintf "%s\\n" "$0" "$@" > {record}\n')
    program.chmod(0o755)
    monkeypatch.setenv("BROWSER", str(program))
    return record


def test_the_browser_gets_a_private_page_not_the_token(tmp_path: Path, browser: Path) -> None:
    control_dir = tmp_path / "tunnels"
    page = ssh_tunnel.open_in_browser(str(control_dir), "jupyter-ada", URL)

    argv = browser.read_text().splitlines()
    assert argv[1:] == [f"file://{page}"], "the browser is given the page's file"
    assert not [argument for argument in argv if TOKEN in argument], "the token is on no command line"
    assert not [argument for argument in ssh_tunnel.browser_argv(page) if TOKEN in argument]
    assert stat.S_IMODE(os.stat(page).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(control_dir).st_mode) == 0o700
    content = Path(page).read_text()
    assert f'<meta http-equiv="refresh" content="0; url={URL}">' in content, "the page sends the browser on"


def test_the_page_is_escaped_and_replaces_a_planted_link(tmp_path: Path) -> None:
    control_dir = tmp_path / "tunnels"
    control_dir.mkdir(mode=0o755)
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("kept\n")
    Path(ssh_tunnel.page_path(str(control_dir), "jupyter-ada")).symlink_to(elsewhere)

    page = ssh_tunnel.write_redirect_page(str(control_dir), "jupyter-ada", 'http://localhost:7005/lab?a="><script>')
    assert not os.path.islink(page) and elsewhere.read_text() == "kept\n", "the link is replaced, not followed"
    assert "&quot;&gt;&lt;script&gt;" in Path(page).read_text() and "<script>" not in Path(page).read_text()
    assert stat.S_IMODE(os.stat(control_dir).st_mode) == 0o700, "a directory others could enter is closed"


def test_a_directory_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("skipped: making a directory of another user needs root")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    os.chown(foreign, 65534, 65534)
    with pytest.raises(OSError, match="must be a directory of this user's"):
        ssh_tunnel.write_redirect_page(str(foreign), "jupyter-ada", URL)


@pytest.mark.parametrize(
    ("user", "host", "message"),
    [
        ("ubuntu -oProxyCommand=touch /tmp/x", "198.51.100.7", "Invalid user 'ubuntu -oProxyCommand=touch /tmp/x'"),
        ("-oProxyCommand=touch /tmp/x", "198.51.100.7", "Invalid user '-oProxyCommand=touch /tmp/x'"),
        ("admin\nProxyCommand x", "198.51.100.7", "Invalid user 'admin\\nProxyCommand x'"),
        ("admin", "-oProxyCommand=touch /tmp/x", "Invalid host '-oProxyCommand=touch /tmp/x'"),
        ("admin", "198.51.100.7 -v", "Invalid host '198.51.100.7 -v'"),
    ],
)
def test_user_and_host_that_ssh_could_read_as_options_are_refused(user: str, host: str, message: str) -> None:
    assert ssh_tunnel.destination_error(user, host).startswith(message)


@pytest.mark.parametrize(("user", "host"), [("admin", "198.51.100.7"), ("ec2-user", "ec2.example.org"), ("_x", "::1")])
def test_plain_user_and_host_pass(user: str, host: str) -> None:
    assert ssh_tunnel.destination_error(user, host) is None


def test_the_module_refuses_them_before_running_ssh(tmp_path: Path) -> None:
    marker = tmp_path / "x"
    key = tmp_path / "key"
    key.write_text("not used\n")
    args = {
        "name": "jupyter-ada",
        "host": "198.51.100.7",
        "user": f"admin -oProxyCommand=touch {marker}",
        "key_file": str(key),
        "control_dir": str(tmp_path / "tunnels"),
    }
    result = subprocess.run(
        [str(ANSIBLE), "localhost", "-m", "labcloud.jupyter.ssh_tunnel", "-a", json.dumps(args)],
        cwd=REPO,
        env=dict(
            os.environ,
            ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
            ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    outcome = json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    assert outcome["failed"] and outcome["msg"].startswith(f"Invalid user 'admin -oProxyCommand=touch {marker}'")
    assert not marker.exists() and not (tmp_path / "tunnels").exists(), "nothing ran, nothing was made"
