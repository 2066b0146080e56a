"""labcloud.jupyter.local_files (an action on the controller) run through `ansible-playbook`, on real files:
templates found beside a playbook or by absolute path, written 0600 in a directory made 0700.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.controller_play import play_tasks

PLAYBOOK = """\
- name: Write the files
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Write them
      labcloud.jupyter.local_files: "{{ local_files_args }}"
"""


def mode(path: Path) -> int:
    """A file's permission bits."""
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A playbook with templates/page.txt.j2 beside it, and an absolute-path template elsewhere."""
    (tmp_path / "play" / "templates").mkdir(parents=True)
    (tmp_path / "play" / "site.yml").write_text(PLAYBOOK)
    (tmp_path / "play" / "templates" / "page.txt.j2").write_text("{{ greeting }}, {{ owner }}!\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "table.csv.j2").write_text("# {{ ansible_managed }}\nowner,port\n{{ owner }},7005\n")
    return tmp_path


def run(site: Path, args: dict[str, Any], check: bool = False, diff: bool = False, **variables: str) -> dict:
    """Run the action with these arguments and variables; return its result."""
    variables = {"local_files_args": args, "greeting": "Hello", "owner": "ada", **variables}
    options = ["--check"] * check + ["--diff"] * diff
    return play_tasks(site / "play" / "site.yml", variables, site / "home", *options)[0]["hosts"]["localhost"]


def files_of(site: Path) -> dict[str, Any]:
    """The action's arguments: the playbook's template and the absolute one, into out/ (not there yet)."""
    return {
        "files": [
            {"src": "page.txt.j2", "dest": str(site / "out" / "page.txt")},
            {"src": str(site / "elsewhere" / "table.csv.j2"), "dest": str(site / "out" / "table.csv")},
        ]
    }


def test_writes_rendered_templates_check_real_check_real(site: Path) -> None:
    args = files_of(site)
    dests = [item["dest"] for item in args["files"]]

    predicted = run(site, args, check=True)
    assert predicted["changed"] is True and predicted["written"] == dests
    assert not (site / "out").exists(), "check mode wrote"

    done = run(site, args)
    assert done["changed"] is True and done["written"] == dests
    assert (site / "out" / "page.txt").read_text() == "Hello, ada!\n"
    table = (site / "out" / "table.csv").read_text().splitlines()
    assert table[1:] == ["owner,port", "ada,7005"]
    assert table[0].startswith("# ") and "{{" not in table[0]
    assert mode(site / "out") == 0o700
    assert [mode(Path(dest)) for dest in dests] == [0o600, 0o600]
    assert sorted(os.listdir(site / "out")) == ["page.txt", "table.csv"], "a staging file was left"

    stamps = [Path(dest).stat().st_mtime_ns for dest in dests]
    for check in (True, False):
        again = run(site, args, check=check)
        assert again["changed"] is False and again["written"] == []
    assert [Path(dest).stat().st_mtime_ns for dest in dests] == stamps, "an identical file was rewritten"


def test_a_changed_file_is_rewritten_check_real_check_real(site: Path) -> None:
    args = files_of(site)
    page, table = (Path(item["dest"]) for item in args["files"])
    run(site, args)
    table_stamp = table.stat().st_mtime_ns

    predicted = run(site, args, check=True, diff=True, greeting="Welcome")
    assert predicted["changed"] is True and predicted["written"] == [str(page)]
    assert predicted["diff"] == [
        {"before_header": str(page), "after_header": str(page), "before": "Hello, ada!\n", "after": "Welcome, ada!\n"}
    ]
    assert page.read_text() == "Hello, ada!\n", "check mode wrote"

    done = run(site, args, diff=True, greeting="Welcome")
    assert done["changed"] is True and done["written"] == [str(page)]
    assert done["diff"][0]["after"] == "Welcome, ada!\n"
    assert page.read_text() == "Welcome, ada!\n"
    assert mode(page) == 0o600
    assert table.stat().st_mtime_ns == table_stamp

    for check in (True, False):
        again = run(site, args, check=check, diff=True, greeting="Welcome")
        assert again["changed"] is False and "diff" not in again


def test_a_new_file_diffs_from_nothing(site: Path) -> None:
    args = files_of(site)
    result = run(site, {"files": args["files"][:1]}, check=True, diff=True)
    assert result["diff"] == [
        {
            "before_header": args["files"][0]["dest"],
            "after_header": args["files"][0]["dest"],
            "before": "",
            "after": "Hello, ada!\n",
        }
    ]


def test_a_wrong_mode_is_fixed_check_real_check_real(site: Path) -> None:
    args = files_of(site)
    page = Path(args["files"][0]["dest"])
    run(site, args)
    page.chmod(0o644)

    predicted = run(site, args, check=True)
    assert predicted["changed"] is True and predicted["written"] == [str(page)]
    assert mode(page) == 0o644

    done = run(site, args)
    assert done["changed"] is True and done["written"] == [str(page)]
    assert (mode(page), page.read_text()) == (0o600, "Hello, ada!\n")

    for check in (True, False):
        assert run(site, args, check=check)["changed"] is False


def test_given_modes_and_a_home_relative_dest(site: Path) -> None:
    args = {"files": [{"src": "page.txt.j2", "dest": "~/shared/page.txt", "mode": "0640"}], "directory_mode": "0750"}
    done = run(site, args)
    page = site / "home" / "shared" / "page.txt"
    assert done["written"] == [str(page)]
    assert (mode(page.parent), mode(page)) == (0o750, 0o640)
    assert run(site, args)["changed"] is False


def test_an_existing_directory_keeps_its_mode(site: Path) -> None:
    (site / "out").mkdir(mode=0o755)
    (site / "out").chmod(0o755)
    run(site, files_of(site))
    assert mode(site / "out") == 0o755


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"files": [{"src": "page.txt.j2", "dest": "DEST", "mode": "rw"}]}, "'rw' is not an octal mode"),
        ({"files": [], "directory_mode": "0o7x"}, "directory_mode '0o7x' is not an octal mode such as 0600"),
        ({"files": [{"src": "missing.j2", "dest": "DEST"}]}, "missing.j2"),
        ({"files": [{"dest": "DEST"}]}, "src"),
    ],
)
def test_bad_arguments_fail_and_write_nothing(site: Path, args: dict[str, Any], message: str) -> None:
    result = run(site, json.loads(json.dumps(args).replace("DEST", str(site / "out" / "x"))))
    assert result.get("failed") is True
    assert message in result["msg"]
    assert not (site / "out").exists()


def test_a_copied_file_is_written_as_it_is_and_never_shown(site: Path) -> None:
    key = site / "key.pem"
    key.write_text("SECRET KEY\n")
    key.chmod(0o400)
    copy = site / "out" / "folder" / "key.pem"
    args = {
        "directories": [str(site / "out"), str(site / "out" / "folder")],
        "files": [{"src": str(key), "dest": str(copy), "template": False}],
    }
    predicted = run(site, args, check=True, diff=True)
    assert predicted["changed"] is True and predicted["written"] == [str(copy)]
    assert predicted["directories"] == [str(site / "out"), str(site / "out" / "folder")]
    assert not (site / "out").exists(), "check mode wrote"
    assert "SECRET" not in json.dumps(predicted)

    done = run(site, args, diff=True)
    assert done["changed"] is True and "SECRET" not in json.dumps(done)
    assert (copy.read_bytes(), mode(copy), mode(key)) == (key.read_bytes(), 0o600, 0o400)
    assert (mode(site / "out"), mode(site / "out" / "folder")) == (0o700, 0o700)

    (site / "out" / "folder").chmod(0o755)
    copy.write_text("SECRET KEY, edited\n")
    fixed = run(site, args, diff=True)
    assert fixed["directories"] == [str(site / "out" / "folder")] and fixed["written"] == [str(copy)]
    assert "SECRET" not in json.dumps(fixed)
    assert (mode(site / "out" / "folder"), copy.read_bytes()) == (0o700, key.read_bytes())
    for check in (True, False):
        again = run(site, args, check=check)
        assert again["changed"] is False and again["written"] == again["directories"] == []


def test_a_missing_copy_source_is_predicted_in_check_mode_and_fails_for_real(site: Path) -> None:
    args = {
        "directories": [str(site / "out")],
        "files": [
            {"src": "page.txt.j2", "dest": str(site / "out" / "page.txt")},
            {"src": str(site / "missing.pem"), "dest": str(site / "out" / "key.pem"), "template": False},
        ],
    }
    predicted = run(site, args, check=True)
    assert predicted["changed"] is True and predicted["written"] == [
        str(site / "out" / n) for n in ("page.txt", "key.pem")
    ]
    failed = run(site, args)
    assert failed.get("failed") is True
    assert (
        f"Could not copy {site / 'missing.pem'} to {site / 'out' / 'key.pem'}: there is no such file" in failed["msg"]
    )
    assert not (site / "out").exists(), "a bad argument changed something"
