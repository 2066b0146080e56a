"""Each owner's hand-out (roles/ec2_instance/tasks/handouts.yml and templates/handout/): the page rendered from a
sample result, in Markdown and HTML, and the role's tasks run through `ansible-playbook` on real files: a 0700
folder per owner with a 0600 copy of the owner's key and the page, written again only when something differs."""

from __future__ import annotations

import json
import os
import re
import stat
from html import unescape
from pathlib import Path
from typing import Any

import jinja2
import pytest

from tests.controller_play import REPO, play_tasks

TEMPLATES = REPO / "roles/ec2_instance/templates/handout"
PLAYBOOK = """\
- name: Write the hand-outs as the ec2_instance role does
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Run the role's hand-out tasks
      ansible.builtin.include_role:
        name: labcloud.jupyter.ec2_instance
        tasks_from: handouts.yml
"""
# Characters that HTML must escape, in a value that reaches the page.
HOSTILE_COST = 'about <script>alert("x")</script> & more'


def sample(owner: str = "ada", **changes: Any) -> dict[str, Any]:
    """An owner's entry of ec2_instance_results, as tasks/result.yml makes it, with what handouts.yml adds."""
    key_file = f"/home/teacher/.labcloud/keys/jupyter-{owner}.pem"
    result = {
        "owner": owner,
        "name": f"jupyter-{owner}",
        "instance_id": "i-0123456789abcdef0",
        "instance_type": "t3.micro",
        "region": "eu-west-1",
        "public_ip": "203.0.113.7",
        "elastic_ip": True,
        "user": "ubuntu",
        "key_file": key_file,
        "local_port": 7006,
        "ssh": f"ssh -i {key_file} ubuntu@203.0.113.7",
        "key_name": f"jupyter-{owner}.pem",
        "remote_port": 8887,
        "cost": "0.0154 USD/hour = the instance 0.0104 USD/hour",
    }
    return {**result, **changes}


def render(name: str, handout: dict[str, Any]) -> str:
    """A page template rendered as Ansible renders it (trim_blocks), with the owner's entry."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["comment"] = lambda text, style: f"<!--\n{text}\n-->"
    return environment.get_template(name).render(ansible_managed="Ansible managed", ec2_instance_handout=handout)


def commands_of_markdown(page: str) -> list[str]:
    """The lines of the Markdown page's code blocks."""
    return [line for block in re.findall(r"```\w*\n(.*?)\n```", page, re.S) for line in block.splitlines()]


def commands_of_html(page: str) -> list[str]:
    """The lines of the HTML page's code blocks, unescaped."""
    return [
        line
        for block in re.findall(r"<pre><code>(.*?)</code></pre>", page, re.S)
        for line in unescape(block).splitlines()
    ]


def test_the_page_has_the_ssh_line_and_the_four_tunnel_lines_with_paths_in_the_folder() -> None:
    page = render("README.md.j2", sample())
    commands = commands_of_markdown(page)
    forward = "-L localhost:7006:localhost:8887 ubuntu@203.0.113.7"
    assert "ssh -i jupyter-ada.pem ubuntu@203.0.113.7" in commands
    assert f"ssh -N -i jupyter-ada.pem {forward}" in commands  # Linux and macOS
    assert 'icacls .\\jupyter-ada.pem /inheritance:r /grant:r "$($env:USERNAME):(R)"' in commands
    assert f"ssh.exe -N -i .\\jupyter-ada.pem {forward}" in commands  # PowerShell
    wsl = "mkdir -p ~/.ssh && cp jupyter-ada.pem ~/.ssh/jupyter-ada.pem && chmod 600 ~/.ssh/jupyter-ada.pem"
    assert commands.index(wsl) + 1 == commands.index(f"ssh -N -i ~/.ssh/jupyter-ada.pem {forward}")  # WSL
    assert "ssh -i jupyter-ada.pem ubuntu@203.0.113.7 sudo jupyterlab-url" in commands
    assert "ssh -i jupyter-ada.pem ubuntu@203.0.113.7 sudo poweroff" in commands
    assert "ansible-playbook playbooks/lifecycle.yml -e owner=ada -e state=running" in commands
    assert "http://localhost:7006/lab?token=" in page
    # Nothing points at the instructor's machine: the student gets the folder.
    assert "/home/teacher" not in page and ".labcloud" not in page
    assert page.startswith("<!--\nAnsible managed\n-->\n") and "{{" not in page and "{%" not in page


def test_the_page_says_whether_the_address_changes_on_stop_and_start() -> None:
    assert "stays the same when the VM is stopped and started" in render("README.md.j2", sample())
    moving = render("README.md.j2", sample(elastic_ip=False))
    assert "changes each time the VM is stopped and started" in moving and "stays the same" not in moving


def test_html_and_markdown_hold_the_same_commands_and_every_value_is_escaped() -> None:
    handout = sample(cost=HOSTILE_COST, name="jupyter-<ada>")
    markdown, html = render("README.md.j2", handout), render("index.html.j2", handout)
    assert commands_of_html(html) == commands_of_markdown(markdown)
    assert "<script>" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; more" in html
    assert (
        "<title>JupyterLab on jupyter-&lt;ada&gt;</title>" in html
        and "<h1>JupyterLab on jupyter-&lt;ada&gt;</h1>" in html
    )
    assert "&amp;&amp; chmod 600" in html and "&#34;$($env:USERNAME):(R)&#34;" in html
    assert html.startswith("<!DOCTYPE html>\n<!--") and html.rstrip().endswith("</html>")
    assert HOSTILE_COST in markdown


def test_the_page_holds_no_token() -> None:
    for name in ("README.md.j2", "index.html.j2"):
        page = render(name, sample())
        assert re.search(r"token=[0-9a-f]", page) is None, page


def mode(path: Path) -> int:
    """A file's permission bits."""
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A playbook that runs the role's hand-out tasks, and two owners' keys (0400) in a key directory."""
    (tmp_path / "site.yml").write_text(PLAYBOOK)
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    for owner in ("ada", "grace"):
        key = keys / f"jupyter-{owner}.pem"
        key.write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\n{owner}\n-----END OPENSSH PRIVATE KEY-----\n")
        key.chmod(0o400)
    return tmp_path


def run(site: Path, check: bool = False) -> dict[str, Any]:
    """Run the hand-out tasks for the two owners; return the result of the task that writes the folders."""
    results = {
        owner: sample(owner, key_file=str(site / "keys" / f"jupyter-{owner}.pem"), local_port=port)
        for owner, port in (("ada", 7005), ("grace", 7006))
    }
    extra = {
        "ec2_instance_results": {
            owner: {k: v for k, v in r.items() if k not in ("cost", "key_name", "remote_port")}
            for owner, r in results.items()
        },
        "ec2_instance_costs": {owner: f"cost of {owner}" for owner in results},
        "ec2_instance_report_dir": str(site / "launches"),
        "ec2_instance_report_name": "roster",
        "ec2_instance_tunnel_remote_port": 8887,
    }
    tasks = play_tasks(site / "site.yml", extra, site / "home", *["--check"] * check)
    name = "labcloud.jupyter.ec2_instance : Write each owner's folder with a copy of their key and their page"
    (written,) = [task for task in tasks if task["task"]["name"] == name]
    return written["hosts"]["localhost"]


def test_each_owner_gets_a_private_folder_with_a_copy_of_their_key_check_real_check_real(site: Path) -> None:
    handouts = site / "launches" / "handouts"
    predicted = run(site, check=True)
    assert predicted["changed"] is True, predicted
    assert not handouts.exists(), "check mode wrote"

    done = run(site)
    assert done["changed"] is True, done
    assert mode(handouts) == 0o700
    for owner in ("ada", "grace"):
        folder, key = handouts / owner, site / "keys" / f"jupyter-{owner}.pem"
        assert mode(folder) == 0o700
        assert sorted(os.listdir(folder)) == sorted([key.name, "README.md", "index.html"]), "only the owner's files"
        assert (folder / key.name).read_bytes() == key.read_bytes()
        assert (mode(folder / key.name), mode(key)) == (0o600, 0o400), "the original stays 0400"
        page = (folder / "README.md").read_text()
        assert f"ssh -i {key.name} ubuntu@203.0.113.7" in page and f"cost of {owner}" in page
        assert str(site) not in page
    assert "jupyter-grace" not in (handouts / "ada" / "README.md").read_text()
    key_text = (site / "keys" / "jupyter-ada.pem").read_text()
    assert key_text not in json.dumps(done), "the key's content is never in the result"

    stamps = {path: path.stat().st_mtime_ns for path in handouts.rglob("*")}
    for check in (True, False):
        assert run(site, check=check)["changed"] is False
    assert {path: path.stat().st_mtime_ns for path in handouts.rglob("*")} == stamps, "an identical file was rewritten"


def test_a_loosened_folder_or_a_changed_key_copy_is_put_back(site: Path) -> None:
    run(site)
    folder = site / "launches" / "handouts" / "ada"
    folder.chmod(0o755)
    (folder / "jupyter-ada.pem").chmod(0o644)
    (folder / "jupyter-ada.pem").write_text("not the key\n")
    assert run(site)["changed"] is True
    assert (mode(folder), mode(folder / "jupyter-ada.pem")) == (0o700, 0o600)
    assert (folder / "jupyter-ada.pem").read_bytes() == (site / "keys" / "jupyter-ada.pem").read_bytes()
    assert run(site)["changed"] is False
