"""labcloud.jupyter.image_hygiene: the check and the clean plan on a directory tree taken as "/".

The module_utils functions run on a tree built in a temporary directory (the module's `root`
option), so nothing of this machine is read or removed. The last tests run the module itself
through `ansible-playbook` on such a tree: the failure message, check mode, diff, the clean step
and its cloud-init fallback.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.labcloud.jupyter.plugins.module_utils import image_hygiene as hygiene

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

# Not real keys: the first lines of each kind, which is all the test reads.
OPENSSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ==\n"
RSA_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA0test\n-----END RSA PRIVATE KEY-----\n"
PKCS8_KEY = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAAStest\n-----END PRIVATE KEY-----\n"
CERTIFICATE = "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkq\n-----END CERTIFICATE-----\n"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE0test admin@builder\n"
AWS_FILE = "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG\n"

PASSWD = """\
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
sshd:x:100:65534::/run/sshd:/usr/sbin/nologin
backup:x:34:34:backup:/var/backups:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
admin:x:1000:1000:Debian:/home/admin:/bin/bash
ada:x:1001:1001::/home/ada:/bin/bash
"""


def write(root: Path, path: str, text: str = "x\n", mode: int = 0o644) -> Path:
    """A file at a host path below root, its directories made."""
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    target.chmod(mode)
    return target


def base_host(root: Path) -> Path:
    """A host with users and nothing secret: what a clean image looks like."""
    write(root, "/etc/passwd", PASSWD)
    write(root, "/etc/machine-id", "")
    write(root, "/etc/environment", 'AWS_ENDPOINT_URL="http://169.254.0.1:5000"\n')
    write(root, "/etc/profile.d/locale.sh", "export LANG=C.UTF-8\n")
    write(root, "/etc/ssl/certs/ca.pem", CERTIFICATE)
    for path in ("/root", "/home/admin/notebooks", "/home/ada", "/usr/sbin", "/var/backups", "/srv", "/tmp"):
        (root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
    (root / "var/tmp").mkdir(parents=True, exist_ok=True)
    write(root, "/home/admin/.bashrc", 'export PATH="$HOME/bin:$PATH"\nunset AWS_SECRET_ACCESS_KEY\n')
    write(root, "/home/admin/.profile", 'export AWS_ACCESS_KEY_ID="$VAULT_KEY"\n')
    write(root, "/home/admin/.aws/config", "[default]\nregion = eu-west-1\n")
    write(root, "/home/admin/.ssh/id_ed25519.pub", PUBLIC_KEY)
    write(root, "/home/admin/.ssh/known_hosts", "github.com ssh-ed25519 AAAA\n")
    write(root, "/home/admin/notebooks/ocean/.git/config", '[remote "origin"]\n\turl = https://github.com/lab/ocean\n')
    write(root, "/home/admin/notebooks/ocean/analysis.ipynb", '{"cells": []}\n')
    return root


def check(root: Path, **options: Any) -> dict[str, Any]:
    return hygiene.check(hygiene.Tree(str(root)), **options)


def paths_of(items: list[dict[str, str]]) -> list[str]:
    return [item["path"] for item in items]


def kinds_of(items: list[dict[str, str]]) -> dict[str, str]:
    return {item["path"]: item["kind"] for item in items}


@pytest.fixture
def host(tmp_path: Path) -> Path:
    return base_host(tmp_path / "host")


def test_a_clean_host_has_no_findings(host: Path) -> None:
    result = check(host)
    assert result["findings"] == [] and result["allowed"] == []
    assert result["scanned"]["trees"] == ["/root", "/home", "/srv", "/etc"]
    # Every existing home, root's first; /run/sshd and /nonexistent are none.
    assert result["scanned"]["homes"] == ["/root", "/usr/sbin", "/var/backups", "/home/admin", "/home/ada"]
    assert result["scanned"]["files"] >= 10 and result["scanned"]["read"] == result["scanned"]["files"]


# AWS credentials.


def test_aws_credentials_files_of_every_user_root_included(host: Path) -> None:
    write(host, "/home/admin/.aws/credentials", AWS_FILE)
    write(host, "/root/.aws/config", "[profile ci]\nregion = us-east-1\naws_secret_access_key=abc+def\n")
    write(host, "/var/backups/.aws/credentials", AWS_FILE)  # a system user's home, not scanned in full
    write(host, "/home/ada/.aws/credentials", "[default]\n")  # no keys
    write(host, "/home/ada/.aws/cli/cache/0a1b.json", '{"Credentials": {}}')
    findings = check(host)["findings"]
    assert kinds_of(findings) == {
        "/home/ada/.aws/cli/cache/0a1b.json": "aws_credentials",
        "/home/admin/.aws/credentials": "aws_credentials",
        "/root/.aws/config": "aws_credentials",
        "/var/backups/.aws/credentials": "aws_credentials",
    }
    admin = next(item for item in findings if item["path"] == "/home/admin/.aws/credentials")
    assert admin["detail"] == "AWS credentials file: aws_access_key_id on line 2, aws_secret_access_key on line 3"
    assert "AKIA" not in json.dumps(findings), "a finding never carries the secret"


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/home/admin/.bashrc", "export AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n"),
        ("/home/ada/.profile", "# old: export AWS_SECRET_ACCESS_KEY='wJalrXUtnFEMI'\n"),
        ("/root/.bash_profile", "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI\n"),
        ("/home/admin/.zshrc", "export aws_secret_access_key=wJalrXUtnFEMI\n"),
        ("/etc/environment", 'AWS_ACCESS_KEY_ID="AKIAIOSFODNN7EXAMPLE"\n'),
        ("/etc/profile.d/aws.sh", "export AWS_SESSION_TOKEN=IQoJb3JpZ2luX2VjE\n"),
    ],
)
def test_aws_keys_in_shell_profiles_and_environment_files(host: Path, path: str, text: str) -> None:
    target = host / path.lstrip("/")
    write(host, path, (target.read_text() if target.exists() else "") + text)
    findings = check(host)["findings"]
    assert kinds_of(findings) == {path: "aws_credentials"}
    assert "shell start-up or environment file" in findings[0]["detail"]


def test_aws_references_that_are_not_keys_are_no_findings(host: Path) -> None:
    write(host, "/home/admin/.bashrc", 'export AWS_PROFILE=lab\nexport AWS_ACCESS_KEY_ID="$(pass aws/id)"\n')
    write(host, "/etc/profile.d/aws.sh", "export AWS_SECRET_ACCESS_KEY=\nexport AWS_REGION=eu-west-1\n")
    assert check(host)["findings"] == []


# Private keys.


def test_private_keys_in_homes_srv_etc_and_the_notebook_directory(host: Path) -> None:
    write(host, "/home/admin/.ssh/id_ed25519", OPENSSH_KEY, 0o600)
    write(host, "/root/.ssh/id_rsa", RSA_KEY, 0o600)
    write(host, "/srv/tls/lab.key", PKCS8_KEY)
    write(host, "/etc/ssl/private/jupyter.pem", CERTIFICATE + PKCS8_KEY)  # a certificate, then its key
    write(host, "/home/ada/notebooks/keys/builder.ppk", "PuTTY-User-Key-File-3: ssh-ed25519\n")
    write(host, "/data/notebooks/deploy_key", OPENSSH_KEY)  # a notebook directory elsewhere
    write(host, "/usr/sbin/.ssh/id_rsa", RSA_KEY)  # a system user's ~/.ssh
    write(host, "/home/admin/.gnupg/private-keys-v1.d/0A1B.key", "Key: (private-key (rsa))\n")
    found = kinds_of(check(host, paths=["/data/notebooks"])["findings"])
    assert found == {
        "/data/notebooks/deploy_key": "private_key",
        "/etc/ssl/private/jupyter.pem": "private_key",
        "/home/ada/notebooks/keys/builder.ppk": "private_key",
        "/home/admin/.gnupg/private-keys-v1.d/0A1B.key": "private_key",
        "/home/admin/.ssh/id_ed25519": "private_key",
        "/root/.ssh/id_rsa": "private_key",
        "/srv/tls/lab.key": "private_key",
        "/usr/sbin/.ssh/id_rsa": "private_key",
    }
    details = {item["path"]: item["detail"] for item in check(host, paths=["/data/notebooks"])["findings"]}
    assert details["/home/admin/.ssh/id_ed25519"] == "OpenSSH private key"
    assert details["/root/.ssh/id_rsa"] == "RSA private key (PEM)"
    assert details["/srv/tls/lab.key"] == "private key (PEM, PKCS#8)"
    assert details["/home/ada/notebooks/keys/builder.ppk"] == "PuTTY private key"


def test_outside_the_scanned_trees_nothing_is_read(host: Path) -> None:
    write(host, "/data/notebooks/deploy_key", OPENSSH_KEY)
    write(host, "/var/lib/app/server.key", RSA_KEY)
    write(host, "/usr/sbin/notes/id_rsa", RSA_KEY)  # a system user's home is not scanned in full
    assert check(host)["findings"] == []


def test_host_keys_and_software_environments_are_excluded(host: Path) -> None:
    write(host, "/etc/ssh/ssh_host_ed25519_key", OPENSSH_KEY, 0o600)
    write(host, "/etc/ssh/ssh_host_rsa_key", RSA_KEY, 0o600)
    test_keys = [
        "/home/admin/venv/lib/python3.12/site-packages/tornado/test/test.key",
        "/home/admin/venv/share/certs/test.key",  # a virtualenv (pyvenv.cfg)
        "/home/admin/miniforge3/pkgs/openssl/info/test/keys/rsa.pem",  # a conda root (conda-meta)
        "/root/.cache/uv/archive-v0/0a1b/tornado/test/test.key",  # a cache (CACHEDIR.TAG)
        "/srv/app/node_modules/agent-base/test/ssl-cert-snakeoil.key",
        "/home/ada/.local/share/uv/python/cpython-3.12/lib/python3.12/test/certdata/keycert.pem",
        "/root/.local/lib/python3.11/site-packages/certifi/test.key",
        "/opt/jupyterlab/env/lib/python3.12/site-packages/tornado/test/test.key",
    ]
    for path in test_keys:
        write(host, path, RSA_KEY)
    write(host, "/home/admin/venv/pyvenv.cfg", "home = /usr/bin\n")
    (host / "home/admin/miniforge3/conda-meta").mkdir(parents=True)
    write(host, "/root/.cache/uv/CACHEDIR.TAG", "Signature: 8a477f597d28d172789f06886806bc55\n")
    result = check(host)
    assert result["findings"] == []
    assert {
        "/home/admin/venv",
        "/home/admin/miniforge3",
        "/root/.cache/uv",
        "/srv/app/node_modules",
        "/home/ada/.local/share/uv/python/cpython-3.12/lib/python3.12",
        "/root/.local/lib/python3.11",
    } == set(result["scanned"]["software"])


def test_symbolic_links_are_never_followed(host: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside, "/keys/id_rsa", RSA_KEY)
    write(outside, "/aws/credentials", AWS_FILE)
    write(host, "/root/secret.key", RSA_KEY)
    (host / "home/admin/keys").symlink_to(outside / "keys")  # a directory link out of the tree
    (host / "home/admin/notebooks/id_rsa").symlink_to(outside / "keys/id_rsa")  # a file link out of it
    (host / "home/ada/.aws").symlink_to(outside / "aws")  # ~/.aws planted as a link
    (host / "home/ada/root.key").symlink_to("/root/secret.key")  # into the tree: found at its own path only
    assert paths_of(check(host)["findings"]) == ["/root/secret.key"]


# Git credentials.


def test_git_credentials(host: Path) -> None:
    write(host, "/home/admin/.git-credentials", "https://admin:ghp_0123456789abcdef@github.com\n", 0o600)
    write(host, "/home/ada/.config/git/credentials", "https://ada:glpat-0123@gitlab.com\n")
    write(
        host,
        "/home/admin/notebooks/ocean/.git/config",
        '[remote "origin"]\n\turl = https://admin:ghp_0a1b@github.com/lab/ocean\n',
    )
    write(host, "/srv/repo/.git/config", '[remote "origin"]\n\turl = https://github.com/lab/open\n')
    write(
        host,
        "/root/.gitconfig",
        "[credential]\n\thelper = store --file /srv/git/creds\n"
        '[url "https://ci:tok@git.example.org/"]\n\tinsteadOf = https://git.example.org/\n',
    )
    write(host, "/srv/git/creds", "https://ci:tok@git.example.org\n")
    write(host, "/home/ada/.netrc", "machine github.com login ada password ghp_0a1b\n")
    write(host, "/home/ada/.gitconfig", "[credential]\n\thelper = store\n")  # no store file written yet
    findings = check(host)["findings"]
    assert kinds_of(findings) == {
        "/home/ada/.config/git/credentials": "git_credentials",
        "/home/ada/.netrc": "git_credentials",
        "/home/admin/.git-credentials": "git_credentials",
        "/home/admin/notebooks/ocean/.git/config": "git_credentials",
        "/root/.gitconfig": "git_credentials",
        "/srv/git/creds": "git_credentials",
    }
    assert "ghp_" not in json.dumps(findings)


# Histories and Jupyter secrets outside the places the clean step empties.


def test_histories_and_jupyter_secrets_outside_the_cleaned_places(host: Path) -> None:
    cleaned = [
        "/home/admin/.bash_history",
        "/root/.python_history",
        "/home/admin/.ipython/profile_default/history.sqlite",
        "/home/admin/.local/share/jupyter/runtime/jpserver-4242.json",
        "/home/admin/.local/share/jupyter/runtime/jupyter_cookie_secret",
        "/home/admin/.local/share/jupyter/notebook_secret",
        "/var/lib/jupyterlab/token",
    ]
    strays = {
        "/home/admin/notebooks/.bash_history": "history",
        "/home/admin/notebooks/backup/history.sqlite": "history",
        "/srv/notebooks/.python_history": "history",
        "/etc/skel/.viminfo": "history",
        "/home/admin/notebooks/jpserver-1234.json": "jupyter_secret",
        "/home/admin/notebooks/old/jupyter_cookie_secret": "jupyter_secret",
        "/home/ada/work/kernel-5e0c7c42-8f8e-4b0d-9a4e-2d3c0f1e9a77.json": "jupyter_secret",
    }
    for path in cleaned + list(strays):
        write(host, path)
    write(host, "/home/admin/notebooks/kernel-density.json", "{}")  # a research file, not a connection file
    assert kinds_of(check(host, cleaned_files=["/var/lib/jupyterlab/token"])["findings"]) == strays


# The allow-list.


def test_allow_list_moves_reviewed_findings_to_allowed(host: Path) -> None:
    write(host, "/home/admin/.aws/credentials", AWS_FILE)
    write(host, "/etc/ssl/private/snakeoil.key", PKCS8_KEY)
    write(host, "/srv/tls/a.key", PKCS8_KEY)
    write(host, "/srv/tls/b.key", PKCS8_KEY)
    write(host, "/srv/certs/c.key", PKCS8_KEY)
    result = check(host, allow=["/home/admin/.aws/credentials", "/srv/tls", "/etc/ssl/private/*.key", "/srv/cert"])
    assert paths_of(result["findings"]) == ["/srv/certs/c.key"], "a plain path allows itself and what is below it"
    assert paths_of(result["allowed"]) == [
        "/etc/ssl/private/snakeoil.key",
        "/home/admin/.aws/credentials",
        "/srv/tls/a.key",
        "/srv/tls/b.key",
    ]
    assert paths_of(check(host, allow=["/srv/*"])["findings"]) == [
        "/etc/ssl/private/snakeoil.key",
        "/home/admin/.aws/credentials",
    ]


@pytest.mark.parametrize(
    ("path", "pattern", "allowed"),
    [
        ("/srv/tls/a.key", "/srv/tls/a.key", True),
        ("/srv/tls/a.key", "/srv/tls/", True),
        ("/srv/tls/a.key", "/srv/tl", False),
        ("/srv/tls/a.key", "/srv/*.key", True),
        ("/srv/tls/a.key", "/srv/tls/?.key", True),
        ("/srv/tls/a.key", "/srv/tls/[bc].key", False),
        ("/home/ada/.ssh/id_rsa", "/home/*/.ssh/id_rsa", True),
    ],
)
def test_allow_patterns(path: str, pattern: str, allowed: bool) -> None:
    assert hygiene.is_allowed(path, [pattern]) is allowed


# The bounds of the scan.


def test_reading_is_bounded(host: Path) -> None:
    write(host, "/srv/late.pem", "x" * 5000 + "\n" + RSA_KEY)  # a key beyond the first 4 KiB
    big = write(host, "/srv/big.pem", RSA_KEY + "x" * (2 << 20))  # a key at the start of a 2 MiB file
    os.mkfifo(host / "srv/pipe")  # never opened: reading it would block
    result = check(host)
    assert result["findings"] == []
    assert result["scanned"]["too_large"] == 1
    read = result["scanned"]["read"]
    assert result["scanned"]["files"] == read + 1, "every regular file but the large one is read"
    assert paths_of(check(host, read_size=8192)["findings"]) == ["/srv/late.pem"]
    assert paths_of(check(host, max_file_size=4 << 20)["findings"]) == ["/srv/big.pem"]
    assert big.stat().st_size > hygiene.MAX_FILE_SIZE


def test_depth_is_bounded(host: Path) -> None:
    deep = "/srv/" + "/".join(["d"] * (hygiene.MAX_DEPTH + 2)) + "/id_rsa"
    write(host, deep, RSA_KEY)
    result = check(host)
    assert result["findings"] == [] and result["scanned"]["too_deep"] == 1


def test_pseudo_file_systems_are_not_entered(host: Path) -> None:
    write(host, "/proc/1/environ", "AWS_SECRET_ACCESS_KEY=x\n")
    write(host, "/run/user/1000/key.pem", RSA_KEY)
    assert check(host, paths=["/run", "/proc/1", "/"])["findings"] == []


def test_the_message_lists_every_finding_and_what_to_do(host: Path) -> None:
    write(host, "/home/admin/.aws/credentials", AWS_FILE)
    write(host, "/home/admin/.ssh/id_ed25519", OPENSSH_KEY)
    write(host, "/srv/notebooks/.bash_history")
    message = hygiene.findings_message(check(host)["findings"])
    for path in ("/home/admin/.aws/credentials", "/home/admin/.ssh/id_ed25519", "/srv/notebooks/.bash_history"):
        assert path in message
    assert "3 secret(s)" in message and "image_hygiene_allow" in message and "Remove each" in message


# The clean plan.


def dirty(host: Path) -> Path:
    """What a configured VM holds that every image loses."""
    write(host, "/etc/machine-id", "3f1c0e9a2b7d4c5e8f6a1b2c3d4e5f60\n")
    for name in ("ssh_host_ed25519_key", "ssh_host_ed25519_key.pub", "ssh_host_rsa_key", "ssh_host_rsa_key.pub"):
        write(host, f"/etc/ssh/{name}")
    write(host, "/etc/ssh/sshd_config")
    write(host, "/var/lib/jupyterlab/token", "f" * 64)
    write(host, "/run/jupyterlab/cookie_secret")
    write(host, "/home/admin/.local/share/jupyter/runtime/jpserver-4242.json")
    write(host, "/home/admin/.local/share/jupyter/runtime/kernel-5e0c.json")
    write(host, "/home/admin/.local/share/jupyter/notebook_secret")
    write(host, "/home/admin/.local/share/jupyter/lab/workspaces/default.json")
    for path in ("/root/.bash_history", "/home/admin/.bash_history", "/home/admin/.python_history"):
        write(host, path)
    write(host, "/home/ada/.lesshst")
    write(host, "/home/admin/.ipython/profile_default/history.sqlite")
    write(host, "/home/admin/.ipython/profile_default/startup/README")
    (host / "home/ada/.zsh_history").symlink_to("/dev/null")  # holds no history: left alone
    write(host, "/tmp/build.log")
    write(host, "/tmp/pip-unpack-0a1b/setup.py")
    write(host, "/tmp/systemd-private-0a1b-jupyterlab.service-Xy/tmp/kernel.tmp")
    write(host, "/var/tmp/cache.bin")
    write(host, "/var/lib/cloud/instances/i-0a1b/boot-finished")
    (host / "var/lib/cloud/instance").symlink_to("/var/lib/cloud/instances/i-0a1b")
    write(host, "/var/lib/cloud/seed/nocloud/user-data")
    write(host, "/var/log/cloud-init.log")
    write(host, "/var/log/cloud-init-output.log")
    for home in ("/root", "/home/admin", "/home/ada"):
        write(host, f"{home}/.ssh/authorized_keys", PUBLIC_KEY, 0o600)
    return host


def plan_of(host: Path, keep: tuple[str, ...] = ()) -> tuple[list[dict[str, str]], list[str]]:
    tree = hygiene.Tree(str(host))
    every_home = hygiene.homes(tree)[0]
    return hygiene.clean_plan(tree, every_home, "/var/lib/jupyterlab/token", "/run/jupyterlab/cookie_secret", keep)


def test_the_clean_plan_lists_everything_in_order_authorized_keys_last(host: Path) -> None:
    entries, skipped = plan_of(dirty(host))
    assert skipped == []
    assert hygiene.public(entries) == [
        {"path": "/var/lib/jupyterlab/token", "kind": "jupyter_token"},
        {"path": "/run/jupyterlab/cookie_secret", "kind": "jupyter_cookie_secret"},
        {"path": "/home/admin/.local/share/jupyter/runtime/jpserver-4242.json", "kind": "jupyter_runtime"},
        {"path": "/home/admin/.local/share/jupyter/runtime/kernel-5e0c.json", "kind": "jupyter_runtime"},
        {"path": "/home/admin/.local/share/jupyter/notebook_secret", "kind": "jupyter_secret"},
        {"path": "/root/.bash_history", "kind": "history"},
        {"path": "/home/admin/.bash_history", "kind": "history"},
        {"path": "/home/admin/.python_history", "kind": "history"},
        {"path": "/home/admin/.ipython/profile_default/history.sqlite", "kind": "history"},
        {"path": "/home/ada/.lesshst", "kind": "history"},
        {"path": "/tmp/build.log", "kind": "temporary"},
        {"path": "/tmp/pip-unpack-0a1b", "kind": "temporary"},
        {"path": "/var/tmp/cache.bin", "kind": "temporary"},
        {"path": "/var/lib/cloud/instance", "kind": "cloud_init"},
        {"path": "/var/lib/cloud/instances", "kind": "cloud_init"},
        {"path": "/var/log/cloud-init.log", "kind": "cloud_init"},
        {"path": "/var/log/cloud-init-output.log", "kind": "cloud_init"},
        {"path": "/etc/machine-id", "kind": "machine_id"},
        {"path": "/etc/ssh/ssh_host_ed25519_key", "kind": "ssh_host_key"},
        {"path": "/etc/ssh/ssh_host_ed25519_key.pub", "kind": "ssh_host_key"},
        {"path": "/etc/ssh/ssh_host_rsa_key", "kind": "ssh_host_key"},
        {"path": "/etc/ssh/ssh_host_rsa_key.pub", "kind": "ssh_host_key"},
        {"path": "/root/.ssh/authorized_keys", "kind": "authorized_keys"},
        {"path": "/home/admin/.ssh/authorized_keys", "kind": "authorized_keys"},
        {"path": "/home/ada/.ssh/authorized_keys", "kind": "authorized_keys"},
    ]


def test_the_plan_keeps_sockets_in_use_and_the_modules_own_files(host: Path) -> None:
    dirty(host)
    write(host, "/tmp/ansible_image_hygiene_payload_0a1b/ansible_image_hygiene_payload.zip")
    write(host, "/tmp/ssh-XXXX0a1b/stale")
    (host / "tmp/.X11-unix").mkdir()
    write(host, "/tmp/.X11-unix/old-file")
    proc_net_unix = (
        "Num       RefCount Protocol Flags    Type St Inode Path\n"
        "0000000000000000: 00000002 00000000 00010000 0001 01 20211 /tmp/.X11-unix/X0\n"
        "0000000000000000: 00000002 00000000 00010000 0001 01 20212 /tmp/ssh-XXXX0a1b/agent.4242\n"
        "0000000000000000: 00000002 00000000 00010000 0001 01 20213 @/tmp/.abstract\n"
        "0000000000000000: 00000003 00000000 00000000 0001 03 20214\n"
    )
    sockets = hygiene.in_use_sockets(proc_net_unix)
    assert sockets == {"/tmp/.X11-unix/X0", "/tmp/ssh-XXXX0a1b/agent.4242"}
    keep = (*sorted(sockets), "/tmp/ansible_image_hygiene_payload_0a1b/ansible_image_hygiene_payload.zip/ansible/x.py")
    temporary = [entry["path"] for entry in plan_of(host, keep)[0] if entry["kind"] == "temporary"]
    assert temporary == [
        "/tmp/.X11-unix/old-file",
        "/tmp/build.log",
        "/tmp/pip-unpack-0a1b",
        "/tmp/ssh-XXXX0a1b/stale",
        "/var/tmp/cache.bin",
    ]


def test_the_machine_id_is_planned_only_while_it_holds_an_id(host: Path) -> None:
    for content, planned in (("3f1c0e9a\n", True), ("", False), ("uninitialized\n", False)):
        write(host, "/etc/machine-id", content)
        assert any(entry["kind"] == "machine_id" for entry in plan_of(host)[0]) is planned


def test_a_link_on_the_way_is_not_followed_and_is_reported(host: Path, tmp_path: Path) -> None:
    victim = write(tmp_path / "elsewhere", "/profile_default/history.sqlite")
    keys = write(tmp_path / "elsewhere", "/ssh/authorized_keys")
    (host / "home/ada/.ipython").symlink_to(victim.parent.parent)
    (host / "home/ada/.ssh").symlink_to(keys.parent)
    entries, skipped = plan_of(host)
    assert not any(entry["path"].startswith("/home/ada/") for entry in entries)
    assert skipped == ["/home/ada/.ssh/authorized_keys: a symbolic link on the way, which is not followed"]


def test_removing_the_plan_leaves_what_is_kept(host: Path, tmp_path: Path) -> None:
    dirty(host)
    outside = write(tmp_path / "elsewhere", "/precious")
    (host / "tmp/link").symlink_to(outside)
    (host / "tmp/dirlink").symlink_to(outside.parent)
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(host / "tmp/app.sock"))
    tree = hygiene.Tree(str(host))
    entries, _skipped = plan_of(host, keep=("/tmp/app.sock",))
    for entry in entries:
        hygiene.remove(tree, entry)
    listener.close()
    for entry in entries:
        if entry["kind"] != "machine_id":
            assert not os.path.lexists(host / entry["path"].lstrip("/")), entry
    assert (host / "etc/machine-id").read_text() == "", "the machine ID is emptied, not removed"
    assert outside.read_text() == "x\n" and outside.parent.is_dir(), "links are removed, not followed"
    assert stat.S_ISSOCK((host / "tmp/app.sock").lstat().st_mode)
    assert (host / "tmp/systemd-private-0a1b-jupyterlab.service-Xy/tmp/kernel.tmp").exists()
    assert (host / "var/lib/cloud/seed/nocloud/user-data").exists()
    assert (host / "home/admin/.local/share/jupyter/lab/workspaces/default.json").exists()
    assert (host / "home/admin/.ipython/profile_default/startup/README").exists()
    assert os.path.islink(host / "home/ada/.zsh_history")
    assert (host / "etc/ssh/sshd_config").exists()
    assert plan_of(host, keep=("/tmp/app.sock",))[0] == [], "a second plan finds nothing left"


# The module, run through ansible-playbook on a tree.

PLAYBOOK = """\
- name: Image hygiene on a tree
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Run the module
      labcloud.jupyter.image_hygiene: "{{ image_hygiene_args }}"
"""


def run_module(tmp_path: Path, args: dict[str, Any], check: bool = False, diff: bool = False) -> dict[str, Any]:
    """Run the module with these arguments; return its result."""
    playbook = tmp_path / "site.yml"
    playbook.write_text(PLAYBOOK)
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"image_hygiene_args": args}))
    command = [str(ANSIBLE_PLAYBOOK), str(playbook), "-e", f"@{extra}"] + ["--check"] * check + ["--diff"] * diff
    environ = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
    )
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=environ, timeout=120, check=False)
    try:
        return json.loads(done.stdout[done.stdout.index("{") :])["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError) as e:
        raise AssertionError(f"ansible-playbook gave no result ({e}):\n{done.stdout}\n{done.stderr}") from e


def test_module_fails_naming_every_finding_and_changes_nothing(host: Path, tmp_path: Path) -> None:
    dirty(host)
    write(host, "/home/admin/.aws/credentials", AWS_FILE)
    write(host, "/srv/notebooks/.bash_history")
    for state in ("checked", "clean"):
        result = run_module(tmp_path, {"root": str(host), "state": state})
        assert result["failed"] is True and result["changed"] is False
        assert "/home/admin/.aws/credentials" in result["msg"] and "/srv/notebooks/.bash_history" in result["msg"]
        assert paths_of(result["findings"]) == ["/home/admin/.aws/credentials", "/srv/notebooks/.bash_history"]
        assert "/home/admin/.ssh/authorized_keys" in paths_of(result["to_clean"])
    assert "Nothing was removed." in result["msg"]
    assert (host / "home/admin/.ssh/authorized_keys").exists() and (host / "var/lib/jupyterlab/token").exists()

    unfailing = run_module(tmp_path, {"root": str(host), "fail_on_findings": False})
    assert unfailing.get("failed") is not True and len(unfailing["findings"]) == 2


def test_module_cleans_check_real_check_real(host: Path, tmp_path: Path) -> None:
    dirty(host)
    write(host, "/home/admin/.aws/credentials", AWS_FILE)
    args = {"root": str(host), "state": "clean", "allow": ["/home/admin/.aws/credentials"]}

    predicted = run_module(tmp_path, args, check=True, diff=True)
    assert predicted["changed"] is True and predicted.get("failed") is not True
    assert paths_of(predicted["allowed"]) == ["/home/admin/.aws/credentials"]
    assert predicted["removed"] == predicted["to_clean"]
    assert predicted["to_clean"][-1] == {"path": "/home/ada/.ssh/authorized_keys", "kind": "authorized_keys"}
    assert "/etc/ssh/ssh_host_rsa_key (ssh_host_key)\n" in predicted["diff"]["before"]
    assert predicted["diff"]["after"] == "/etc/machine-id (emptied)\n"
    assert (host / "home/admin/.ssh/authorized_keys").exists(), "check mode removes nothing"

    cleaned = run_module(tmp_path, args, diff=True)
    assert cleaned["changed"] is True and cleaned["removed"] == predicted["to_clean"]
    assert cleaned["cloud_init"]["fallback"] is True and cleaned["cloud_init"]["command"] is None
    assert any("removed directly" in warning for warning in cleaned["warnings"])
    assert not (host / "home/admin/.ssh/authorized_keys").exists() and not (host / "var/lib/cloud/instances").exists()
    assert (host / "etc/machine-id").read_text() == ""
    assert (host / "home/admin/.aws/credentials").exists(), "an allowed finding stays"

    again = run_module(tmp_path, args, check=True)
    assert again["changed"] is False and again["to_clean"] == []
    assert run_module(tmp_path, args)["changed"] is False


def test_module_refuses_bad_options(tmp_path: Path) -> None:
    result = run_module(tmp_path, {"root": str(tmp_path / "missing")})
    assert result["failed"] is True and "is not a directory" in result["msg"]
    result = run_module(tmp_path, {"root": str(tmp_path), "read_size": 0})
    assert result["failed"] is True and "read_size" in result["msg"]
