"""The tutorial's short version, end to end, with a real browser.

launch.yml -> (configure) -> tunnel.yml -> headless Chromium opens the printed URL, JupyterLab's UI
loads, a notebook is created, a cell that imports xarray runs and its output is read back from the
page, an ipywidgets slider renders; then tunnel_state=closed and the local port is free. A
screenshot is kept in artifacts/e2e/.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.localcloud_harness import REPO, Cloud

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def playbook(cloud: Cloud, name: str, *extra: str, key_dir: Path) -> subprocess.CompletedProcess:
    """Run a playbook against the local cloud exactly as a user would."""
    env = dict(os.environ, **cloud.env, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    command = [
        str(PLAYBOOK),
        "-i",
        "inventory/localcloud",
        f"playbooks/{name}",
        "-e",
        f"labcloud_key_dir={key_dir}",
        *extra,
    ]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    (ARTIFACTS / f"{name}.log").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, f"{name} failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
    return result


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


def run_cell(driver, code: str, index: int) -> None:
    """Type code into the notebook's cell number `index` and run it with Shift+Enter."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 60)
    editors = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-CodeCell .cm-content"))
    editor = editors[index]
    wait.until(ec.element_to_be_clickable(editor)).click()
    editor.send_keys(code)
    editor.send_keys(Keys.SHIFT, Keys.ENTER)


def test_launch_configure_tunnel_and_use_jupyterlab_in_a_browser(session_cloud: Cloud, browser, tmp_path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    owner = f"e2e-{uuid.uuid4().hex[:6]}"
    port = free_port()
    key_dir = tmp_path / "keys"
    ec2 = session_cloud.client()
    try:
        playbook(session_cloud, "launch.yml", "-e", f"owner={owner}", key_dir=key_dir)
        instance = ec2.describe_instances(
            Filters=[{"Name": "tag:Owner", "Values": [owner]}, {"Name": "instance-state-name", "Values": ["running"]}]
        )["Reservations"][0]["Instances"][0]
        address = instance["PublicIpAddress"]
        with pytest.raises(OSError):
            socket.create_connection((address, 8887), timeout=3).close()  # only the tunnel reaches it

        opened = playbook(
            session_cloud, "tunnel.yml", "-e", f"owner={owner}", "-e", f"tunnel_local_port={port}", key_dir=key_dir
        )
        url = opened.stdout.strip().splitlines()[-1]
        assert url.startswith(f"http://localhost:{port}/lab?token="), opened.stdout[-2000:]
        assert opened.stdout.count(url) == 1, "the URL is printed once"

        browser.get(url)
        wait = WebDriverWait(browser, 120)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-Launcher, #jp-main-dock-panel"))
        token = url.split("token=", 1)[1]
        name = f"e2e-{owner}.ipynb"
        browser.execute_script(
            "return fetch('/api/contents/' + arguments[0], {method: 'PUT', headers: {'Authorization': 'token ' +"
            " arguments[1], 'Content-Type': 'application/json'}, body: JSON.stringify({type: 'notebook', content:"
            " {cells: [], metadata: {}, nbformat: 4, nbformat_minor: 5}})}).then(r => r.status)",
            name,
            token,
        )
        browser.get(f"http://localhost:{port}/lab/tree/{name}")
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-CodeCell .cm-content"))
        wait.until(lambda d: "Idle" in (d.find_element(By.CSS_SELECTOR, ".jp-NotebookPanel").text + d.page_source))
        run_cell(
            browser,
            "import xarray as xr, numpy as np\nprint('sum=', int(xr.DataArray(np.arange(6).reshape(2, 3)).sum()))",
            0,
        )
        output = wait.until(
            lambda d: [e.text for e in d.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output") if "sum=" in e.text]
        )
        assert output[0].strip() == "sum= 15"
        run_cell(browser, "import ipywidgets\nipywidgets.IntSlider(value=3, description='depth')", 1)
        slider = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output .widget-slider"))
        assert slider[0].is_displayed()
        browser.save_screenshot(str(ARTIFACTS / "jupyterlab.png"))

        playbook(
            session_cloud,
            "tunnel.yml",
            "-e",
            f"owner={owner}",
            "-e",
            f"tunnel_local_port={port}",
            "-e",
            "tunnel_state=closed",
            key_dir=key_dir,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"local port {port} still answers after the tunnel was closed")
    finally:
        subprocess.run(
            [
                str(PLAYBOOK),
                "-i",
                "inventory/localcloud",
                "playbooks/lifecycle.yml",
                "-e",
                f"owner={owner}",
                "-e",
                "state=terminated",
                "-e",
                "force=true",
                "-e",
                "purge=true",
                "-e",
                f"labcloud_key_dir={key_dir}",
            ],
            cwd=REPO,
            env=dict(os.environ, **session_cloud.env),
            capture_output=True,
            timeout=600,
        )
