"""Bad settings stop playbooks/configure.yml before it connects to any host, with a message that says what to change.

The inventory's only host is 127.0.0.1 on a port where nothing listens: a run that got as far as
connecting would end UNREACHABLE, so a failure that names the setting, and no UNREACHABLE,
shows that the check came first. Good settings get past the checks (and then fail to connect).
"""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def inventory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    path = tmp_path_factory.mktemp("inventory") / "hosts.yml"
    path.write_text(
        "all:\n  children:\n    jupyter:\n      hosts:\n        nowhere:\n"
        f"          ansible_host: 127.0.0.1\n          ansible_port: {closed_port}\n"
        "          ansible_ssh_common_args: -o ConnectTimeout=2 -o StrictHostKeyChecking=no\n"
    )
    return path


def configure(inventory: Path, *extra: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        [str(REPO / ".venv/bin/ansible-playbook"), "-i", str(inventory), "playbooks/configure.yml", *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


BAD_SETTINGS = [
    (["-e", "jupyter_service_port=80"], "jupyter_service_port must be between 1024 and 65535"),
    (["-e", "jupyter_service_port=70000"], "jupyter_service_port must be between 1024 and 65535"),
    (["-e", "jupyter_service_port=eighty"], "jupyter_service_port"),
    (["-e", "jupyterlab_env_manager=pip"], "jupyterlab_env_manager"),
    (["-e", "jupyterlab_env_path=opt/env"], "jupyterlab_env_path must be an absolute path"),
    (["-e", "jupyterlab_notebook_dir=notebooks"], "jupyterlab_notebook_dir must be an absolute path"),
    (["-e", "jupyterlab_git_dest=/srv/../etc/repo"], "jupyterlab_git_dest must be an absolute path"),
    (["-e", "jupyter_service_ip=0.0.0.0"], "jupyter_service_ip 0.0.0.0 is not a loopback address"),
    (["-e", "jupyter_service_ip=198.51.100.7"], "also set jupyter_service_allow_remote_access=true"),
    (
        ["-e", "jupyter_service_ip=198.51.100.7", "-e", "jupyter_service_allow_remote_access=true"],
        "serves HTTPS only: set jupyter_service_certfile and jupyter_service_keyfile",
    ),
    (["-e", "jupyter_service_certfile=/etc/ssl/jupyter.pem"], "A certificate also needs its key"),
    (["-e", "jupyter_service_keyfile=etc/jupyter.key"], "jupyter_service_keyfile must be an absolute path"),
    (["-e", "jupyter_service_memory_max=200%"], "jupyter_service_memory_max must be a share of the RAM"),
    (["-e", "jupyter_service_memory_max=lots"], "jupyter_service_memory_max must be a share of the RAM"),
    (["-e", "jupyter_service_tasks_max=4"], "jupyter_service_tasks_max at least 32"),
    (["-e", "jupyter_service_news=maybe"], "jupyter_service_news"),
    (["-e", '{"jupyterlab_version_floors": ["jupyterlab"]}'], "jupyterlab_version_floors"),
    (["-e", "jupyter_service_auth=password"], "jupyter_service_auth=password needs jupyter_service_password_hash"),
    (["-e", "jupyter_service_auth=password", "-e", "jupyter_service_password_hash=sha1:abc"], "an argon2 hash"),
    (["-e", "jupyter_service_auth=cookie"], "jupyter_service_auth"),
    (["-e", "jupyter_service_umask=777"], "jupyter_service_umask must be four octal digits"),
    (["-e", "jupyter_service_kernel_cull_interval=0"], "jupyter_service_kernel_cull_interval positive"),
    (
        ["-e", "jupyterlab_env_manager=conda", "-e", "jupyterlab_requirements_file=/etc/hostname"],
        "jupyterlab_requirements_file goes with jupyterlab_env_manager=uv",
    ),
    (["-e", "jupyterlab_env_manager=uv", "-e", "jupyterlab_requirements_file=/nonexistent"], "must be a file"),
    (["-e", "miniconda_prefix=/usr"], "miniconda_prefix must be an absolute path of its own"),
    (["-e", '{"miniconda_installer_sha256": {"x86_64": "not-a-checksum"}}'], "must be a SHA-256"),
]


@pytest.mark.parametrize(("arguments", "message"), BAD_SETTINGS, ids=[" ".join(case[0][1::2]) for case in BAD_SETTINGS])
def test_bad_setting_fails_before_connecting(inventory: Path, arguments: list[str], message: str) -> None:
    result = configure(inventory, *arguments)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert "UNREACHABLE" not in result.stdout, "the run connected to the host before refusing the setting"


def test_short_token_is_refused_without_showing_it(inventory: Path) -> None:
    result = configure(inventory, "-e", "jupyter_service_token=tooshort-secret")
    assert result.returncode != 0
    assert "UNREACHABLE" not in result.stdout
    assert "tooshort-secret" not in result.stdout + result.stderr
    assert "censored" in result.stdout


@pytest.mark.parametrize(
    "arguments",
    [
        [],
        [
            "-e",
            "jupyter_service_ip=198.51.100.7",
            "-e",
            "jupyter_service_allow_remote_access=true",
            "-e",
            "jupyter_service_certfile=/etc/ssl/jupyter.pem",
            "-e",
            "jupyter_service_keyfile=/etc/ssl/jupyter.key",
        ],
        ["-e", "jupyter_service_memory_max=6G", "-e", "jupyter_service_tasks_max=512"],
        [
            "-e",
            "jupyterlab_env_manager=uv",
            "-e",
            "jupyter_service_port=8890",
            "-e",
            "jupyterlab_notebook_dir=/srv/notebooks",
        ],
    ],
    ids=["defaults", "remote access allowed with a certificate", "memory and task limits", "uv on another port"],
)
def test_good_settings_pass_the_checks(inventory: Path, arguments: list[str]) -> None:
    result = configure(inventory, *arguments)
    assert "UNREACHABLE" in result.stdout, result.stdout[-2000:]
    if "jupyter_service_allow_remote_access=true" in arguments:
        assert "WARNING: JupyterLab will listen on 198.51.100.7:8887" in result.stdout
