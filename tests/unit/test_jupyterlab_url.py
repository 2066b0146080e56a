"""roles/jupyter_service/templates/usr/local/bin/jupyterlab-url.j2: the root shell script that prints
JupyterLab's URL takes every name it is given as data, never as shell code."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import jinja2

TEMPLATE = Path(__file__).resolve().parents[2] / "roles/jupyter_service/templates/usr/local/bin/jupyterlab-url.j2"


def render(tmp_path: Path, **settings: str) -> Path:
    """The script as the role writes it (ansible.builtin's quote is shlex.quote)."""
    environment = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    environment.filters.update(quote=shlex.quote, comment=lambda text: f"# {text}")
    values = {
        "ansible_managed": "Ansible managed",
        "jupyter_service_auth": "token",
        "jupyter_service_token_file": str(tmp_path / "token"),
        "jupyter_service_user_name": "jupyter",
        "jupyter_service_name": "jupyterlab",
        "jupyter_service_url": "http://localhost:8887/lab",
        **settings,
    }
    script = tmp_path / "jupyterlab-url"
    script.write_text(environment.from_string(TEMPLATE.read_text()).render(values))
    return script


def test_names_are_data_in_the_root_script(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    hostile = f"x$(touch {marker})`touch {marker}`"
    script = render(tmp_path, jupyter_service_user_name=hostile, jupyter_service_name=hostile)
    result = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 1
    assert not marker.exists(), "nothing in a name was run"
    assert f"is the {hostile} service running? (systemctl status {hostile})" in result.stderr


def test_the_url_with_the_token(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("0123abcd\n")
    result = subprocess.run(["sh", str(render(tmp_path))], capture_output=True, text=True, timeout=30, check=True)
    assert result.stdout == "http://localhost:8887/lab?token=0123abcd\n"
