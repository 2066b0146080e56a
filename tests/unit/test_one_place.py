"""Each fact of the owner identity is written in one place: plugins/module_utils/identity.py.

The owner pattern, the `jupyter-<owner>` name format, the ManagedBy value, JupyterLab's default port,
the default key directory and the command that prints the URL must not be restated in the
collection's code (roles, playbooks, inventories, plugins, templates); roles and playbooks reach them
through the identity filter and lookup. Documentation may name them (comments, argument specs,
module and plugin documentation).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOME = REPO / "plugins/module_utils/identity.py"
# Where the collection's code lives.
CODE_DIRS = ("plugins", "roles", "playbooks", "inventory", "tools")
# Documentation files (their text may name the facts).
DOC_FILES = ("argument_specs.yml", "meta/main.yml")
DOC_CONSTANTS = {"DOCUMENTATION", "EXAMPLES", "RETURN"}

YAML_RULES = {
    "owner pattern": re.compile(r"\[a-z\]\[a-z0-9-\]\{1,31\}"),
    "jupyter-<owner> name format": re.compile(r"jupyter-\{\{|['\"]jupyter-['\"]\s*~"),
    "ManagedBy value": re.compile(
        r"ManagedBy['\"]?\s*[:=,]\s*['\"]?labcloud\.jupyter(?![\w.])|==\s*['\"]labcloud\.jupyter['\"]"
    ),
    "JupyterLab's default port": re.compile(r"(?<![\w.])8887(?![\w.])"),
    "default key directory": re.compile(r"\.labcloud/keys"),
    "URL command": re.compile(r"/usr/local/bin/jupyterlab-url"),
}
PYTHON_RULES = {
    "owner pattern": lambda text: bool(YAML_RULES["owner pattern"].search(text)),
    "jupyter-<owner> name format": lambda text: text.startswith("jupyter-") and len(text) <= len("jupyter-"),
    "ManagedBy value": lambda text: text == "labcloud.jupyter",
    "JupyterLab's default port": lambda text: bool(YAML_RULES["JupyterLab's default port"].search(text)),
    "default key directory": lambda text: bool(YAML_RULES["default key directory"].search(text)),
    "URL command": lambda text: bool(YAML_RULES["URL command"].search(text)),
}


def without_comments(line: str) -> str:
    """A YAML, Jinja or shell line without its comment (a # at the start or after a space)."""
    line = re.sub(r"\{#.*?#\}", "", line)
    return re.split(r"(?:^|\s)#", line, maxsplit=1)[0]


def yaml_findings(path: Path, text: str) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        code = without_comments(line)
        for fact, rule in YAML_RULES.items():
            if rule.search(code):
                found.append(f"{path.relative_to(REPO)}:{number}: {fact}: {line.strip()}")
    return found


def documentation_nodes(tree: ast.AST) -> set[int]:
    """The ids of string nodes that are documentation (docstrings and DOCUMENTATION-like constants)."""
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id in DOC_CONSTANTS for target in node.targets
        ):
            ids.update(id(child) for child in ast.walk(node.value))
    return ids


def python_findings(path: Path, text: str) -> list[str]:
    tree = ast.parse(text)
    docs = documentation_nodes(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            for fact, rule in PYTHON_RULES.items():
                if rule(node.value):
                    found.append(f"{path.relative_to(REPO)}:{node.lineno}: {fact}: {node.value!r}")
        if isinstance(node, ast.Constant) and node.value == 8887 and id(node) not in docs:
            found.append(f"{path.relative_to(REPO)}:{node.lineno}: JupyterLab's default port")
    return found


def findings(path: Path) -> list[str]:
    text = path.read_text()
    if path.suffix == ".py":
        return python_findings(path, text)
    return yaml_findings(path, text)


def code_files() -> list[Path]:
    files = []
    for directory in CODE_DIRS:
        for path in sorted((REPO / directory).rglob("*")):
            if not path.is_file() or path == HOME or "__pycache__" in path.parts:
                continue
            relative = str(path.relative_to(REPO))
            if relative.endswith(DOC_FILES) or (relative.startswith("plugins/") and path.suffix == ".yml"):
                continue
            if path.suffix in (".py", ".yml", ".yaml", ".j2", ".cfg") or path.parent.name == "files":
                files.append(path)
    return files


def test_the_facts_are_written_only_in_the_identity_module() -> None:
    problems = [problem for path in code_files() for problem in findings(path)]
    assert not problems, "facts restated outside plugins/module_utils/identity.py:\n" + "\n".join(problems)


def test_the_identity_module_holds_them() -> None:
    text = HOME.read_text()
    assert 'MANAGED_BY = "labcloud.jupyter"' in text and "8887" in text and "~/.labcloud/keys" in text
    assert 'f"jupyter-{owner}"' in text and r"[a-z][a-z0-9-]{1,31}" in text


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("task.yml", '- set_fact:\n    name: "jupyter-{{ owner }}"\n'),
        ("task.yml", "    x: \"{{ 'jupyter-' ~ owner }}\"\n"),
        ("task.yml", "    that: owner is match('^[a-z][a-z0-9-]{1,31}$')\n"),
        ("task.yml", '    "tag:ManagedBy": labcloud.jupyter\n'),
        ("task.yml", "    port: 8887\n"),
        ("task.yml", "    key_dir: ~/.labcloud/keys\n"),
        ("plugin.py", 'NAME = f"jupyter-{owner}"\n'),
        ("plugin.py", 'MARK = "labcloud.jupyter"\n'),
        ("plugin.py", "PORT = 8887\n"),
    ],
)
def test_the_check_finds_a_restated_fact(tmp_path: Path, name: str, text: str) -> None:
    """The check is not blind: each planted restatement is found (and a comment would not be)."""
    planted = REPO / "plugins" / f"_planted_{tmp_path.name}_{name}"
    planted.write_text(text)
    try:
        assert findings(planted), text
    finally:
        planted.unlink()
    commented = "".join(f"# {line}\n" for line in text.splitlines())
    assert not yaml_findings(REPO / "roles" / "x.yml", commented)
