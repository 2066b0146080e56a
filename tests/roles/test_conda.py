"""The conda path of playbooks/configure.yml (Miniforge, a conda environment) on a local-cloud machine.

It needs the Miniforge installer and a conda channel. They are the roles' defaults (the release
on GitHub and conda-forge) unless these point at a mirror:

    LABCLOUD_MINIFORGE_URL      installer URL ({version} and {arch} are filled in by the role)
    LABCLOUD_MINIFORGE_SHA256   its SHA-256 for x86_64
    LABCLOUD_CONDA_CHANNEL      channel URL, such as https://conda.anaconda.org/conda-forge

The test suite contacts no host outside this machine unless told to: the public defaults are
used only when LABCLOUD_CONDA_SOURCES=public is set. Whatever is to be used is probed once, with
a short timeout, before any machine is launched; when it does not answer, or when no source was
given, the test is skipped and says why (this workplace's network reaches PyPI and Debian only).
"""

from __future__ import annotations

import os
import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.localcloud_harness import Cloud, ssh, wait_ssh

pytestmark = [pytest.mark.localcloud, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((REPO / "roles/miniconda/defaults/main.yml").read_text())
SOURCES_GIVEN = bool(os.environ.get("LABCLOUD_MINIFORGE_URL")) or os.environ.get("LABCLOUD_CONDA_SOURCES") == "public"
INSTALLER_URL = os.environ.get("LABCLOUD_MINIFORGE_URL", DEFAULTS["miniconda_installer_url"])
CHANNEL = os.environ.get("LABCLOUD_CONDA_CHANNEL", "https://conda.anaconda.org/" + DEFAULTS["miniconda_channels"][0])
PROBE_TIMEOUT = 5


def unreachable(url: str) -> str | None:
    """Why url cannot be fetched from here, or None when it answers."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=PROBE_TIMEOUT) as reply:
            return None if reply.status < 400 else f"HTTP {reply.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        return str(getattr(error, "reason", error))


@pytest.fixture(scope="module")
def conda_sources() -> dict[str, str]:
    if not SOURCES_GIVEN:
        pytest.skip(
            "conda path not tested: it needs the Miniforge installer and a conda channel, and this suite contacts "
            "no outside host unless told to; set LABCLOUD_MINIFORGE_URL (+ LABCLOUD_MINIFORGE_SHA256, "
            "LABCLOUD_CONDA_CHANNEL) to a reachable mirror, or LABCLOUD_CONDA_SOURCES=public for GitHub and conda-forge"
        )
    installer = INSTALLER_URL.replace("{version}", DEFAULTS["miniconda_version"]).replace("{arch}", "x86_64")
    for what, url in (("the Miniforge installer", installer), ("the conda channel", f"{CHANNEL}/noarch/repodata.json")):
        reason = unreachable(url)
        if reason:
            pytest.skip(
                f"conda path not tested: {what} at {url} cannot be reached from here ({reason}); "
                "point LABCLOUD_MINIFORGE_URL / LABCLOUD_CONDA_CHANNEL at a reachable mirror to run it"
            )
    return {"installer": installer, "channel": CHANNEL}


def configure(inventory: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(REPO / ".venv/bin/ansible-playbook"), "-i", str(inventory), "playbooks/configure.yml"],
        cwd=REPO,
        env=dict(os.environ, **env, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1"),
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )


def test_conda_environment_serves_jupyterlab(conda_sources: dict[str, str], cloud: Cloud) -> None:
    ec2 = cloud.client()
    key_name, key = cloud.key_pair(ec2)
    machine = cloud.launch(ec2, key_name=key_name)
    address = machine["PublicIpAddress"]
    wait_ssh(address, key, timeout=120)
    host_vars = {
        "ansible_host": address,
        "ansible_user": "admin",
        "ansible_ssh_private_key_file": str(key),
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
        "jupyterlab_env_manager": "conda",
        "miniconda_installer_url": INSTALLER_URL,
        "miniconda_channels": [conda_sources["channel"]],
    }
    if "LABCLOUD_MINIFORGE_SHA256" in os.environ:
        host_vars["miniconda_installer_sha256"] = {"x86_64": os.environ["LABCLOUD_MINIFORGE_SHA256"]}
    inventory = cloud.tmp / "conda-hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"jupyter": {"hosts": {"conda": host_vars}}}}}))

    first = configure(inventory, cloud.env)
    assert first.returncode == 0, first.stdout[-5000:]
    second = configure(inventory, cloud.env)
    assert second.returncode == 0, second.stdout[-5000:]
    assert re.search(r"conda\s+: ok=\d+\s+changed=0 ", second.stdout), second.stdout[-3000:]

    shells = ssh(address, key, "bash -lc 'conda --version && mamba --version'")
    assert "conda " in shells.stdout
    imports = "import xarray, netCDF4, cmocean, boto3, networkx, utm, ipywidgets, jupyterlab"
    ssh(address, key, f"/opt/jupyterlab/env/bin/python -c '{imports}'")
    ssh(address, key, "/opt/jupyterlab/env/bin/ffmpeg -version && /opt/jupyterlab/env/bin/node --version")
    assert (
        ssh(address, key, "test -d /opt/jupyterlab/env/conda-meta && stat -c %U /opt/jupyterlab/env").stdout.strip()
        == "admin"
    )
    status = ssh(
        address,
        key,
        "token=$(sudo /usr/local/bin/jupyterlab-url | sed 's/.*token=//');"
        ' curl -s -o /dev/null -w "%{http_code}" -H "Authorization: token $token" http://127.0.0.1:8887/api/status',
    )
    assert status.stdout.strip() == "200"
