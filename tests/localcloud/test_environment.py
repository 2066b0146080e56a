"""A machine that cannot run the local cloud gets a clear error that names the fix."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from localcloud import cli
from localcloud.errors import LocalCloudError
from tests.localcloud_harness import REPO, free_port


def run_up(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """`localcloud up` with its own home and port, so a running local cloud is not touched."""
    environ = dict(os.environ, LOCALCLOUD_HOME=str(tmp_path / "home"), LOCALCLOUD_PORT=str(free_port()))
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-m", "localcloud", "up"], cwd=REPO, env=environ, capture_output=True, text=True, timeout=120
    )


def test_not_root_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(LocalCloudError, match="needs root"):
        cli.check_host()


@pytest.mark.skipif(os.geteuid() != 0, reason="the tool checks run after the root check")
def test_missing_systemd_nspawn_names_the_package(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("debootstrap", "iptables", "ip", "losetup", "nsenter"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    result = run_up(tmp_path, PATH=str(bin_dir))
    assert result.returncode == 1
    assert "systemd-nspawn (package systemd-container)" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the port check runs after the root check")
def test_port_in_use_is_reported(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_up(tmp_path, LOCALCLOUD_PORT=str(port))
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr
    assert "LOCALCLOUD_PORT" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the cache check runs after the root check")
def test_unwritable_cache_is_reported_before_anything_is_made(tmp_path: Path) -> None:
    result = run_up(tmp_path, LOCALCLOUD_CACHE="/proc/labcloud-cache")
    assert result.returncode == 1
    assert "image cache" in result.stderr and "not writable" in result.stderr and "LOCALCLOUD_CACHE" in result.stderr
