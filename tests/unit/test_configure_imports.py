"""The playbooks that import configure.yml after checking its settings themselves switch off the
check of every role configure.yml runs: a role added to playbooks/vars/configure.yml and forgotten
here would have its settings checked again on every VM."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = yaml.safe_load((REPO / "playbooks/vars/configure.yml").read_text())["labcloud_configure_roles"]


@pytest.mark.parametrize("playbook", ["launch.yml", "update.yml"])
def test_every_role_check_is_switched_off_in_the_import(playbook: str) -> None:
    plays = yaml.safe_load((REPO / "playbooks" / playbook).read_text())
    (imported,) = [play for play in plays if play.get("ansible.builtin.import_playbook") == "configure.yml"]
    switches = {name for name, value in imported["vars"].items() if name.endswith("_check_settings") and value is False}
    assert switches == {f"{role}_check_settings" for role in ROLES}
