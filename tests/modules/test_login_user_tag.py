"""The LoginUser tag that owner_info reads back from an instance, against the local cloud's EC2 API:
tunnel.yml refuses a tag that is not a user name (an ssh option, a line of ssh configuration) with a
clear message before ssh runs or ~/.ssh/labcloud.conf is written, and takes a plain one (in check
mode: no machine answers behind the API alone, and nothing is sent to an instance's address)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from owner_cloud import make_private_key, owner_tags, run_instance

from tests.modules.conftest import REPO, module_env

PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
OWNER = "ada"


def run_tunnel(endpoint: str, home: Path, *extra: str) -> subprocess.CompletedProcess:
    """tunnel.yml as a user runs it, with its keys and ~/.ssh in home."""
    env = module_env(endpoint, {"HOME": str(home)})
    env.pop("ANSIBLE_STDOUT_CALLBACK")
    command = [str(PLAYBOOK), "playbooks/tunnel.yml", "-e", f"owner={OWNER}", "-e", "tunnel_ssh_config=present", *extra]
    return subprocess.run(
        command, cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.parametrize(
    "hostile",
    ["ubuntu -oProxyCommand=touch {marker}", "admin\nProxyCommand touch {marker}", "-oProxyCommand=touch {marker}"],
)
def test_a_login_user_tag_that_is_no_user_name_is_refused(endpoint, aws, tmp_path: Path, hostile: str) -> None:
    marker = tmp_path / "x"
    tag = hostile.format(marker=marker)
    make_private_key(tmp_path / ".labcloud/keys" / f"jupyter-{OWNER}.pem")
    run_instance(aws, {**owner_tags(OWNER), "LoginUser": tag, "ImageFamily": "debian"})

    result = run_tunnel(endpoint, tmp_path)

    assert result.returncode != 0
    said = " ".join(result.stdout.split())
    assert f"Refusing the instance's LoginUser tag {tag!r}: it is not a user name".replace("\n", "\\n") in said, (
        result.stdout
    )
    assert not marker.exists(), "ssh never ran with the tag"
    assert not (tmp_path / ".ssh/labcloud.conf").exists(), "nothing was written to ssh's configuration"
    assert not list((tmp_path / ".labcloud").glob("tunnels/*.sock")), "no tunnel was started"


def test_a_plain_login_user_tag_passes(endpoint, aws, tmp_path: Path) -> None:
    make_private_key(tmp_path / ".labcloud/keys" / f"jupyter-{OWNER}.pem")
    run_instance(aws, {**owner_tags(OWNER), "LoginUser": "grace", "ImageFamily": "debian"})
    # Check mode: no machine answers behind the API alone, and nothing is sent to the instance's address.
    result = run_tunnel(endpoint, tmp_path, "--check")
    assert result.returncode == 0, result.stdout
    assert "changed: [owner-ada]" in result.stdout.split("Set the tunnel to open")[1], "the tunnel would be opened"
