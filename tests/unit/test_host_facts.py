"""labcloud.jupyter.host_facts on this machine, run through ansible-playbook as the roles run it.

One playbook of two plays: within a play, a request that an earlier look answered is answered
again without running the module, and a required path that the earlier look did not find is
looked for again (an earlier role may have made it since); a new play looks again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

PLAYS = """
- name: Look, reuse, look again
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Look at the host
      labcloud.jupyter.host_facts:
        requests: &first
          - user: ""
            packages: [dpkg, labcloud-no-such-package]
            paths: {{first_conf: /etc/host*, first_home: "~/", first_made: "{made}", first_link: "{link}"}}
            services: [labcloud-no-such-unit]
            devices: {{first_devices: [/dev/nul?, /dev/zer?, /dev/stdi?, "{made}"], first_none: /dev/labcloud-no-such*}}
      register: first

    - name: Ask the same again
      labcloud.jupyter.host_facts:
        requests: *first
      register: same

    - name: Make a file, as an earlier role would
      ansible.builtin.file:
        path: "{made}"
        state: touch
        mode: "0644"

    - name: Ask for it, required
      labcloud.jupyter.host_facts:
        requests:
          - paths: {{second_made: "{made}"}}
            require: [second_made]
      register: required

    - name: Report
      ansible.builtin.debug:
        msg: "{{{{ {{'first': first.reused, 'same': same.reused, 'required': required.reused,
                   'host': ansible_facts.labcloud_host}} | to_json }}}}"

- name: Another play
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Ask what the first play asked
      labcloud.jupyter.host_facts:
        requests:
          - paths: {{second_made: "{made}"}}
      register: later

    - name: Report
      ansible.builtin.debug:
        msg: "{{{{ {{'later': later.reused}} | to_json }}}}"
"""


def run(tmp_path: Path) -> list[dict]:
    """Run the plays; the messages of their Report tasks."""
    playbook = tmp_path / "look.yml"
    # A link to a directory, as a user could plant where a role expects a directory of its own.
    (tmp_path / "target").mkdir()
    (tmp_path / "planted").symlink_to(tmp_path / "target")
    playbook.write_text(PLAYS.format(made=tmp_path / "made", link=tmp_path / "planted"))
    environ = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
    )
    result = subprocess.run(
        [str(PLAYBOOK), str(playbook)], cwd=REPO, capture_output=True, text=True, env=environ, timeout=120
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    plays = json.loads(result.stdout)["plays"]
    return [json.loads(play["tasks"][-1]["hosts"]["localhost"]["msg"]) for play in plays]


def test_one_look_is_reused_within_a_play_only(tmp_path: Path) -> None:
    first, second = run(tmp_path)
    assert (first["first"], first["same"], first["required"]) == (False, True, False)
    assert second["later"] is False


def test_the_answer_describes_what_was_asked(tmp_path: Path) -> None:
    host = run(tmp_path)[0]["host"]
    home = os.path.expanduser("~")
    assert host["users"][""]["home"] == home
    assert host["paths"]["first_home"]["path"] == home + "/"
    assert host["paths"]["first_home"]["directory"] is True
    assert host["paths"]["first_conf"]["path"].startswith("/etc/host")
    assert host["paths"]["first_conf"]["sha1"]
    # The link itself is described (lstat), never the directory it points to.
    planted = host["paths"]["first_link"]
    assert planted["link"] == str(tmp_path / "target")
    assert planted["directory"] is False
    assert "link" not in host["paths"]["first_home"]
    assert host["missing_packages"] == ["labcloud-no-such-package"]
    assert host["services"]["labcloud-no-such-unit"] == {"enabled": False, "active": False}
    # Character devices only: the link /dev/stdin and the regular file made meanwhile are left out.
    assert host["devices"] == {"first_devices": ["/dev/null", "/dev/zero"], "first_none": []}
    # Looked at again for the required file, with the first request too: one answer for both.
    assert host["exists"] == {
        "first_conf": True,
        "first_home": True,
        "first_made": True,
        "first_link": True,
        "second_made": True,
    }
    assert len(host["requests"]) == 2
