"""The molecule scenario (molecule/default) on the local cloud, step by step, as a user runs it.

Two fresh Debian 12 machines: `fresh`, and `handmade`, which prepare.yml sets up by hand the
tutorial's way first. The steps are molecule's own (create, prepare, check, converge,
idempotence, side-effect, verify, destroy); around them this module checks what molecule does not:
that check mode predicted exactly the first converge, that a check-mode run after it predicts no
change, that both machines passed the same verify tests, and that neither machine's token appears
anywhere in the Ansible or test output.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.localcloud_harness import SSH_OPTIONS, Cloud, free_port, ssh

pytestmark = [pytest.mark.localcloud, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
HOSTS = ("fresh", "handmade")
VERIFY_TESTS = REPO / "molecule/default/tests/test_jupyterlab.py"
STEPS = ("create", "prepare", "check", "converge", "idempotence", "check-after", "side-effect", "verify")
# The tasks check mode reports in place of others: systemd cannot be asked about a unit that check
# mode has not installed, nor an environment check mode has not made about what it holds.
CHECK_MODE_STAND_INS = {
    "labcloud.jupyter.jupyterlab : Report that uv would be installed from PyPI into its own virtualenv": (
        "labcloud.jupyter.jupyterlab : Install uv from PyPI into its own virtualenv"
    ),
    "labcloud.jupyter.jupyter_service : Report that the new service would be enabled and started": (
        "labcloud.jupyter.jupyter_service : Enable and start the JupyterLab service"
    ),
    "labcloud.jupyter.research_packages : Report that ffmpeg would be put on the environment's PATH": (
        "labcloud.jupyter.research_packages : Put ffmpeg on the environment's PATH"
    ),
    "labcloud.jupyter.autostop : Report that the new timer would be enabled and started": (
        "labcloud.jupyter.autostop : Enable and start the timer"
    ),
}


def molecule(env: dict[str, str], step: str, *arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(REPO / ".venv/bin/molecule"), step, "--no-command-borders", *arguments],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def changed_tasks(output: str) -> dict[str, set[str]]:
    """The tasks and handlers Ansible reported as changed, per host, in a playbook's output."""
    changed: dict[str, set[str]] = defaultdict(set)
    task = None
    for line in output.splitlines():
        heading = re.match(r"(?:TASK|RUNNING HANDLER) \[(.+)\] \*+$", line)
        if heading:
            task = heading.group(1)
            continue
        result = re.match(r"changed: \[([^\]]+)\]", line)
        if result and task:
            changed[result.group(1)].add(task)
    return changed


def passed_tests(output: str) -> dict[str, set[str]]:
    """The testinfra tests that passed, per host."""
    passed: dict[str, set[str]] = defaultdict(set)
    for name, host in re.findall(r"^PASSED \S+::(test_\w+)\[ansible://(\w+)\]", output, re.MULTILINE):
        passed[host].add(name)
    return passed


@pytest.fixture(scope="module")
def scenario(
    session_cloud: Cloud, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, subprocess.CompletedProcess | dict]]:
    """Run the scenario's steps, stopping at the first failure; read the tokens; destroy."""
    # An ephemeral directory of this test run's own: its instance configuration is read below, and
    # another checkout running the scenario at the same time keeps its own.
    ephemeral = tmp_path_factory.mktemp("molecule")
    env = dict(
        os.environ,
        **session_cloud.env,
        PATH=f"{REPO / '.venv/bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        MOLECULE_GLOB="molecule/*/molecule.yml",
        MOLECULE_EPHEMERAL_DIRECTORY=str(ephemeral),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        NO_COLOR="1",
        PY_COLORS="0",
    )
    results: dict[str, subprocess.CompletedProcess | dict] = {}
    molecule(env, "destroy")
    try:
        for step in STEPS:
            # check-after: configure.yml in check mode on the configured machines (converge's
            # playbook with --check).
            arguments = ("converge", "--", "--check") if step == "check-after" else (step,)
            result = molecule(env, *arguments)
            results[step] = result
            if result.returncode:
                break
        instance_config = ephemeral / "instance_config.yml"
        if instance_config.exists():
            instances = yaml.safe_load(instance_config.read_text()) or []
            results["tokens"] = {
                entry["instance"]: ssh(
                    entry["address"], Path(entry["identity_file"]), "sudo /usr/local/bin/jupyterlab-url", check=False
                ).stdout.strip()
                for entry in instances
            }
            if "verify" in results and results["verify"].returncode == 0:
                results["password"] = switch_to_password(env, next(e for e in instances if e["instance"] == "fresh"))
        yield results
    finally:
        destroyed = molecule(env, "destroy")
        assert destroyed.returncode == 0, destroyed.stdout[-3000:] + destroyed.stderr[-3000:]


def switch_to_password(env: dict[str, str], entry: dict) -> dict:
    """configure.yml again on `fresh` with password authentication; what a browser then gets.

    Before the run, the notebook directory's mode, the configuration directory's owner and the
    service unit are changed by hand: the run must put all three back.
    """
    address, key = entry["address"], Path(entry["identity_file"])
    ssh(
        address,
        key,
        "sudo chmod 0777 ~/notebooks && sudo chown admin:admin /etc/jupyterlab"
        " && echo '# edited by hand' | sudo tee -a /etc/systemd/system/jupyterlab.service",
    )
    make_hash = "from jupyter_server.auth import passwd; print(passwd('molecule password'))"
    password_hash = ssh(address, key, f'/opt/jupyterlab/env/bin/python -c "{make_hash}"').stdout.strip()
    settings = json.dumps({"jupyter_service_auth": "password", "jupyter_service_password_hash": password_hash})
    run = molecule(env, "converge", "--", "--limit", "fresh", "-e", settings)
    outcome: dict = {"run": run, "hash": password_hash}
    if run.returncode == 0:
        outcome["url"] = ssh(address, key, "sudo /usr/local/bin/jupyterlab-url", check=False).stdout.strip()
        outcome["config_mode"] = ssh(address, key, "stat -c %a /etc/jupyterlab/jupyter_server_config.py").stdout.strip()
        outcome["directories"] = ssh(address, key, "stat -c '%a %U:%G' ~/notebooks /etc/jupyterlab").stdout.splitlines()
        edited = "grep -c 'edited by hand' /etc/systemd/system/jupyterlab.service"
        outcome["unit_edited"] = ssh(address, key, edited, check=False).stdout.strip()
        with ssh_tunnel(address, key) as base:
            outcome["anonymous"] = http_status(urllib.request.build_opener(), f"{base}/api/status")
            for label, password in (("wrong", "not the password"), ("right", "molecule password")):
                browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
                outcome[label] = login_and_get_status(browser, base, password)
    return outcome


@contextlib.contextmanager
def ssh_tunnel(address: str, key: Path) -> Iterator[str]:
    """`ssh -N -L` to the server's port, as tunnel.yml opens it; yields the local base URL."""
    local = free_port()
    process = subprocess.Popen(
        ["ssh", "-i", str(key), *SSH_OPTIONS, "-N", "-L", f"127.0.0.1:{local}:127.0.0.1:8887", f"admin@{address}"]
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", local), timeout=1):
                break
            assert time.monotonic() < deadline, "the SSH tunnel did not open within 20 s"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{local}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def http_status(opener: urllib.request.OpenerDirector, url: str, data: bytes | None = None) -> int:
    try:
        with opener.open(urllib.request.Request(url, data=data), timeout=30) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


def login_and_get_status(browser: urllib.request.OpenerDirector, base: str, password: str) -> int:
    """Log in through the login form (with its XSRF token) and ask for /api/status."""
    with browser.open(f"{base}/login", timeout=30) as page:
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.read().decode())
    form = urllib.parse.urlencode({"password": password, "_xsrf": xsrf.group(1) if xsrf else ""}).encode()
    http_status(browser, f"{base}/login", form)
    return http_status(browser, f"{base}/api/status")


def step_output(scenario: dict, step: str) -> str:
    result = scenario.get(step)
    assert result is not None, f"molecule {step} did not run: an earlier step failed"
    assert result.returncode == 0, f"molecule {step} failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def test_converge_idempotence_and_verify_pass(scenario: dict) -> None:
    for step in STEPS:
        step_output(scenario, step)
    assert re.search(r"fresh\s+: ok=\d+\s+changed=0 ", step_output(scenario, "idempotence"))
    assert re.search(r"handmade\s+: ok=\d+\s+changed=0 ", step_output(scenario, "idempotence"))


def test_check_mode_predicts_the_first_converge(scenario: dict) -> None:
    predicted = changed_tasks(step_output(scenario, "check"))
    applied = changed_tasks(step_output(scenario, "converge"))
    for host in HOSTS:
        expected = {CHECK_MODE_STAND_INS.get(task, task) for task in predicted[host]}
        assert applied[host], f"converge changed nothing on {host}"
        assert expected == applied[host], (
            f"{host}: check mode predicted {sorted(expected)}, converge did {sorted(applied[host])}"
        )


def test_check_mode_after_converge_predicts_no_change(scenario: dict) -> None:
    output = step_output(scenario, "check-after")
    for host in HOSTS:
        assert re.search(rf"{host}\s+: ok=\d+\s+changed=0 ", output), output[-3000:]


def test_both_machines_pass_the_same_checks(scenario: dict) -> None:
    output = step_output(scenario, "verify")
    passed = passed_tests(output)
    assert "FAILED" not in output
    written = set(re.findall(r"^def (test_\w+)\(host", VERIFY_TESTS.read_text(), re.MULTILINE))
    assert written, "the scenario's testinfra tests are found"
    assert passed["fresh"] == written
    assert passed["handmade"] == written


def test_handmade_machine_keeps_the_researchers_work(scenario: dict) -> None:
    """The repository update and the hand-made notebook are checked per machine in verify."""
    output = step_output(scenario, "verify")
    assert "test_research_repository_is_updated_and_local_work_kept" in passed_tests(output)["handmade"]
    applied = changed_tasks(step_output(scenario, "converge"))
    assert "labcloud.jupyter.jupyterlab : Clone the research repository" not in applied["handmade"]
    assert "labcloud.jupyter.jupyterlab : Clone the research repository" in applied["fresh"]


def test_tokens_never_appear_in_ansible_or_test_output(scenario: dict) -> None:
    tokens = scenario.get("tokens") or {}
    assert set(tokens) == set(HOSTS), tokens.keys()
    for host, url in tokens.items():
        token = re.fullmatch(r"http://127\.0\.0\.1:8887/lab\?token=([0-9a-f]{64})", url)
        assert token, f"jupyterlab-url on {host} printed no URL with a token"
        for step in STEPS:
            result = scenario[step]
            assert token.group(1) not in result.stdout + result.stderr, f"{host}'s token is in molecule {step}'s output"


def test_password_authentication(scenario: dict) -> None:
    """configure.yml switches `fresh` to an argon2 password: the login form admits the right one only."""
    outcome = scenario.get("password")
    assert outcome is not None, "the password run did not happen: an earlier step failed"
    run = outcome["run"]
    assert run.returncode == 0, run.stdout[-5000:]
    assert outcome["hash"] not in run.stdout + run.stderr, "the password hash is in Ansible's output"
    assert outcome["config_mode"] == "640"
    assert outcome["directories"] == ["750 admin:admin", "755 root:root"], "the run repairs the directories"
    assert outcome["unit_edited"] == "0", "the run rewrites the service unit edited by hand"
    repaired = changed_tasks(run.stdout)["fresh"]
    assert "labcloud.jupyter.jupyterlab : Make the notebook directory" in repaired
    assert "labcloud.jupyter.jupyter_service : Make the configuration directory" in repaired
    assert "labcloud.jupyter.jupyter_service : Install the JupyterLab service unit" in repaired
    assert outcome["url"] == "http://127.0.0.1:8887/lab"
    assert outcome["anonymous"] == 403
    assert outcome["wrong"] == 403
    assert outcome["right"] == 200
