"""Run a playbook on this machine (localhost) with the repository's ansible.cfg and read its tasks' results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


def play_tasks(playbook: Path, variables: dict[str, Any], home: Path, *options: str) -> list[dict[str, Any]]:
    """Run the playbook's first play with these extra variables (written beside it) and HOME; return its tasks
    as the json callback gives them."""
    extra = playbook.parent / "extra.json"
    extra.write_text(json.dumps(variables))
    command = [str(ANSIBLE_PLAYBOOK), str(playbook), "-e", f"@{extra}", *options]
    environ = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        HOME=str(home),
    )
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=environ, timeout=120, check=False)
    try:
        return json.loads(done.stdout[done.stdout.index("{") :])["plays"][0]["tasks"]
    except (ValueError, KeyError, IndexError) as e:
        raise AssertionError(f"ansible-playbook gave no result ({e}):\n{done.stdout}\n{done.stderr}") from e
