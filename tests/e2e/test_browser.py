"""The tutorial's short version, end to end, for a class of two, with a real browser.

launch.yml for a roster of two (each VM configured with JupyterLab and the research packages)
-> tunnel.yml for the roster (one local port per owner) -> headless Chromium opens the first
printed URL, JupyterLab's UI loads, a notebook is created, a cell that imports xarray runs and its
output is read back from the page, an ipywidgets slider renders -> the tunnel is reused, reported,
written into ssh's configuration and removed again -> tunnel_state=closed frees the local ports.
Also: JupyterLab is not reachable on the VM's address without the tunnel, and sshd refuses to
forward anywhere but JupyterLab's port. A screenshot is kept in artifacts/e2e/.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from selenium.common.exceptions import TimeoutException

from tests.localcloud_harness import REPO, SSH_OPTIONS, Cloud

ARTIFACTS = REPO / "artifacts" / "e2e"
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--window-size=1400,1000",
]

pytestmark = pytest.mark.slow


def free_ports(count: int) -> list[int]:
    """A run of consecutive free local ports."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            first = sock.getsockname()[1]
        ports = list(range(first, first + count))
        if all(port_is_free(p) for p in ports) and ports[-1] < 65536:
            return ports
    raise AssertionError("no run of free ports")


def port_is_free(port: int) -> bool:
    """Whether a server could listen on the port now (connections in TIME_WAIT do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class Run:
    """Playbooks against the local cloud, as a user runs them, with a home directory of their own."""

    def __init__(self, cloud: Cloud, home: Path):
        self.env = dict(os.environ, **cloud.env, HOME=str(home), ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
        self.key_dir = home / ".labcloud" / "localcloud" / "keys"

    def playbook(self, name: str, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
        command = [str(PLAYBOOK), "-i", "inventory/localcloud", f"playbooks/{name}", *extra]
        result = subprocess.run(command, cwd=REPO, env=self.env, capture_output=True, text=True, timeout=1800)
        with open(ARTIFACTS / "playbooks.log", "a") as log:
            log.write(f"\n$ {' '.join(command)}\n{result.stdout}{result.stderr}")
        if check:
            assert result.returncode == 0, f"{name} failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
        return result


def changed(result: subprocess.CompletedProcess) -> int:
    return sum(int(n) for n in re.findall(r"changed=(\d+)", result.stdout))


@pytest.fixture(scope="module")
def browser():
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("skipped: Debian's chromium and chromium-driver are not installed (make setup installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    os.environ["SE_OFFLINE"] = "true"
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    yield driver
    driver.quit()


def cell_keys(driver, index: int, *chords: tuple[str, ...]) -> None:
    """Click into code cell number `index` and send it key chords (modifiers held within a chord).

    JupyterLab re-renders a notebook's cells while it connects the kernel, so an editor found a
    moment ago can be gone: it is found again (at most five times) instead of failing the test.
    """
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def editor(d):
        found = d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-CodeCell .cm-content")[index:]
        return found[0] if found and found[0].is_displayed() and found[0].is_enabled() else False

    for _ in range(5):
        try:
            target = WebDriverWait(driver, 60, ignored_exceptions=(StaleElementReferenceException,)).until(editor)
            target.click()
            for chord in chords:
                target.send_keys(*chord)
            return
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"cell {index} kept being re-rendered")


def run_cell(driver, code: str, index: int, expect) -> list:
    """Type code into cell number `index`, run it, and wait until `expect(driver)` finds its output.

    A cell run before the page has connected to the kernel can be dropped by the page; if no output
    comes within 30 s, the cell is run again in place (Ctrl+Enter), at most twice more.
    """
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    # Ctrl+A first: a retry after a re-render replaces what the first attempt typed.
    cell_keys(driver, index, (Keys.CONTROL, "a"), (code,), (Keys.CONTROL, Keys.ENTER))
    for _ in range(3):
        try:
            return WebDriverWait(driver, 30).until(expect)
        except TimeoutException:
            cell_keys(driver, index, (Keys.CONTROL, Keys.ENTER))
    raise AssertionError(f"cell {index} gave no output: {code!r}")


def use_jupyterlab(browser, url: str, port: int) -> None:
    """In the browser: load JupyterLab, run xarray in a new notebook, render a slider."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    wait = WebDriverWait(browser, 120)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#jp-main-dock-panel"))
    token = url.split("token=", 1)[1]
    name = f"e2e-{uuid.uuid4().hex[:6]}.ipynb"
    status = browser.execute_script(
        "return fetch('/api/contents/' + arguments[0], {method: 'PUT', headers: {'Authorization': 'token ' +"
        " arguments[1], 'Content-Type': 'application/json'}, body: JSON.stringify({type: 'notebook', content:"
        " {cells: [], metadata: {kernelspec: {name: 'python3', display_name: 'Python 3 (ipykernel)', language:"
        " 'python'}}, nbformat: 4, nbformat_minor: 5}})}).then(r => r.status)",
        name,
        token,
    )
    assert status == 201, "the notebook was created through the tunnel"
    browser.get(f"http://localhost:{port}/lab/tree/{name}")
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-CodeCell .cm-content"))
    output = run_cell(
        browser,
        "import xarray as xr, numpy as np\nprint('sum=', int(xr.DataArray(np.arange(6).reshape(2, 3)).sum()))",
        0,
        lambda d: [e.text for e in d.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output") if "sum=" in e.text],
    )
    assert output[0].strip() == "sum= 15"
    browser.find_element(
        By.CSS_SELECTOR, ".jp-NotebookPanel-toolbar [data-command='notebook:insert-cell-below']"
    ).click()
    slider = run_cell(
        browser,
        "import ipywidgets\nipywidgets.IntSlider(value=3, description='depth')",
        1,
        lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output .widget-slider"),
    )
    assert slider[0].is_displayed()
    browser.save_screenshot(str(ARTIFACTS / "jupyterlab.png"))


def forward_refused(address: str, key: Path, destination: str) -> bool:
    """Whether sshd on the VM refuses a local forward to destination (PermitOpen)."""
    result = subprocess.run(
        # LogLevel INFO (ssh keeps the first value given): the refusal's reason is logged at that level.
        ["ssh", "-o", "LogLevel=INFO", "-i", str(key), *SSH_OPTIONS, "-W", destination, f"admin@{address}"],
        input="GET /api/status HTTP/1.0\r\n\r\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    return result.returncode != 0 and "administratively prohibited" in result.stderr


def test_a_class_of_two_launches_tunnels_and_uses_jupyterlab_in_a_browser(
    session_cloud: Cloud, browser, tmp_path
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "playbooks.log").write_text("")
    owners = [f"e2e-{uuid.uuid4().hex[:6]}", f"e2e-{uuid.uuid4().hex[:6]}"]
    ports = free_ports(2)
    roster = tmp_path / "roster.yml"
    roster.write_text("roster:\n" + "".join(f"  - {owner}\n" for owner in owners))
    run = Run(session_cloud, tmp_path / "home")
    roster_args = ["-e", f"@{roster}", "-e", f"tunnel_local_port={ports[0]}"]
    try:
        run.playbook("launch.yml", "-e", f"@{roster}")
        ec2 = session_cloud.client()
        reservations = ec2.describe_instances(
            Filters=[{"Name": "tag:Owner", "Values": owners}, {"Name": "instance-state-name", "Values": ["running"]}]
        )["Reservations"]
        addresses = {
            next(t["Value"] for t in i["Tags"] if t["Key"] == "Owner"): i["PublicIpAddress"]
            for r in reservations
            for i in r["Instances"]
        }
        assert sorted(addresses) == sorted(owners)
        for address in addresses.values():
            with pytest.raises(OSError):
                socket.create_connection((address, 8887), timeout=3).close()  # only the tunnel reaches JupyterLab

        opened = run.playbook("tunnel.yml", *roster_args)
        urls = re.findall(r"^http://localhost:\d+/lab\?token=\S+$", opened.stdout, re.M)
        assert sorted(int(u.split(":")[2].split("/")[0]) for u in urls) == ports, opened.stdout[-2000:]
        assert opened.stdout.strip().splitlines()[-1] in urls, "a URL is the last line"
        first_url = next(u for u in urls if f":{ports[0]}/" in u)
        assert opened.stdout.count(first_url) == 1, "each URL is printed once"

        try:
            use_jupyterlab(browser, first_url, ports[0])
        finally:
            browser.save_screenshot(str(ARTIFACTS / "last-page.png"))

        again = run.playbook("tunnel.yml", *roster_args)
        assert changed(again) == 0, "healthy tunnels are reused"
        status = run.playbook("tunnel.yml", *roster_args, "-e", "tunnel_state=status")
        assert status.stdout.count("JupyterLab answers 200") == 2

        key = run.key_dir / f"jupyter-{owners[0]}.pem"
        assert forward_refused(addresses[owners[0]], key, "127.0.0.1:22"), "sshd forwards only to JupyterLab"
        assert not forward_refused(addresses[owners[0]], key, "127.0.0.1:8887")

        run.playbook("tunnel.yml", *roster_args, "-e", "tunnel_ssh_config=present")
        ssh_config = Path(run.env["HOME"]) / ".ssh"
        assert (ssh_config / "config").read_text().startswith(f"Include {ssh_config / 'labcloud.conf'}")
        login = subprocess.run(
            [
                "ssh",
                "-F",
                str(ssh_config / "config"),
                "-o",
                "ClearAllForwardings=yes",
                "-o",
                "BatchMode=yes",
                f"jupyter-{owners[1]}",
                "hostname",
            ],
            capture_output=True,
            text=True,
            env=run.env,
            timeout=60,
        )
        assert login.returncode == 0 and login.stdout.startswith("ip-"), login.stderr
        run.playbook("tunnel.yml", *roster_args, "-e", "tunnel_ssh_config=absent")
        assert f"jupyter-{owners[1]}" not in (ssh_config / "labcloud.conf").read_text()

        closed = run.playbook("tunnel.yml", *roster_args, "-e", "tunnel_state=closed")
        assert closed.stdout.count(": closed") == 2
        deadline = time.monotonic() + 10
        while not all(port_is_free(p) for p in ports):
            assert time.monotonic() < deadline, f"local ports {ports} still taken after the tunnels were closed"
            time.sleep(0.2)
    finally:
        run.playbook(
            "lifecycle.yml",
            "-e",
            f"@{roster}",
            "-e",
            "state=terminated",
            "-e",
            "force=true",
            "-e",
            "purge=true",
            check=False,
        )
