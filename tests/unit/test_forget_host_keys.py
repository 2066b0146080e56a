"""labcloud.jupyter.forget_host_keys on real known_hosts files, run through `ansible` as the roles run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = Path(sys.executable).parent / "ansible"


def run_module(args: dict, check: bool = False) -> dict:
    command = [str(ANSIBLE), "localhost", "-m", "labcloud.jupyter.forget_host_keys", "-a", json.dumps(args)]
    if check:
        command.append("--check")
    environ = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
    )
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=environ, timeout=120)
    return json.loads(result.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


def host_key(tmp_path: Path, name: str) -> str:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / name)], check=True)
    return " ".join((tmp_path / f"{name}.pub").read_text().split()[:2])


def found(path: Path, host: str) -> bool:
    return subprocess.run(["ssh-keygen", "-F", host, "-f", str(path)], capture_output=True).returncode == 0


@pytest.fixture
def known_hosts(tmp_path: Path) -> Path:
    """Entries as OpenSSH writes them: one hashed, one plain, one for another port, one for another host."""
    hashed = tmp_path / "hashed"
    hashed.write_text(f"198.51.100.7 {host_key(tmp_path, 'a')}\n")
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(hashed)], check=True, capture_output=True)
    path = tmp_path / "known_hosts"
    path.write_text(
        hashed.read_text()
        + f"198.51.100.8 {host_key(tmp_path, 'b')}\n"
        + f"[198.51.100.7]:2222 {host_key(tmp_path, 'c')}\n"
        + f"203.0.113.9 {host_key(tmp_path, 'd')}\n"
    )
    path.chmod(0o600)
    assert "198.51.100.7" not in path.read_text().splitlines()[0], "the first entry is hashed"
    return path


def test_check_mode_predicts_then_removes_only_those_hosts_once(known_hosts: Path) -> None:
    before = known_hosts.read_bytes()
    args = {"path": str(known_hosts), "hosts": ["198.51.100.7", "198.51.100.8", "198.51.100.99", "198.51.100.7"]}

    predicted = run_module(args, check=True)
    assert predicted["changed"] is True and predicted["removed"] == ["198.51.100.7", "198.51.100.8"]
    assert known_hosts.read_bytes() == before, "check mode changed the file"

    done = run_module(args)
    assert done["changed"] is True and done["removed"] == ["198.51.100.7", "198.51.100.8"]
    assert not found(known_hosts, "198.51.100.7") and not found(known_hosts, "198.51.100.8")
    assert found(known_hosts, "[198.51.100.7]:2222") and found(known_hosts, "203.0.113.9")
    assert len(known_hosts.read_text().splitlines()) == 2
    assert not Path(f"{known_hosts}.old").exists(), "ssh-keygen's backup copy was left behind"
    assert known_hosts.stat().st_mode & 0o077 == 0

    again = run_module(args)
    assert again["changed"] is False and again["removed"] == []
    assert run_module(args, check=True)["changed"] is False


def test_a_missing_file_has_nothing_to_forget(tmp_path: Path) -> None:
    result = run_module({"path": str(tmp_path / "absent"), "hosts": ["198.51.100.7"]})
    assert result["changed"] is False and result["removed"] == []
    assert not (tmp_path / "absent").exists()


@pytest.mark.parametrize("host", ["-v", "two words", ""])
def test_a_value_that_is_not_a_host_is_refused(known_hosts: Path, host: str) -> None:
    before = known_hosts.read_bytes()
    result = run_module({"path": str(known_hosts), "hosts": ["198.51.100.8", host]})
    assert result.get("failed") is True
    assert "is not a host name or address" in result["msg"]
    assert known_hosts.read_bytes() == before
