"""The local cloud is built in layers, and every import points down.

    cli, __main__      the command line
    server             the process: the API's HTTP server, the controller and the host, wired
    api                moto, patched by resource family (instances, images, volumes, addresses)
    controller         keeps the host in step with the API's state
    host               machines, network, disks, the base image, `down`
    config, errors     settings and the error type everyone uses

A module may import from its own layer or any layer below it, never from one above, and the
imports form no cycle. The check reads every module's imports (also those inside functions).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "localcloud"
LAYERS = [
    ("localcloud.config", "localcloud.errors"),
    ("localcloud.host",),
    ("localcloud.controller", "localcloud.metadata"),
    ("localcloud.api",),
    ("localcloud.server",),
    ("localcloud.cli", "localcloud.__main__", "localcloud"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    """The layer of a module: the last layer one of whose prefixes it matches (longest match first)."""
    best = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best[0]


def local_imports(path: Path) -> set[str]:
    """The localcloud modules a file imports, anywhere in it."""
    found = set()
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.split(".")[0] == "localcloud")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "localcloud":
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(
                    candidate
                    if (PACKAGE.parent / candidate.replace(".", "/")).exists()
                    or (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists()
                    else node.module
                )
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(path): local_imports(path) for path in PACKAGE.rglob("*.py")}


def test_every_module_is_in_a_layer() -> None:
    for module in graph():
        layer_of(module)


@pytest.mark.parametrize("module", sorted(graph()))
def test_imports_point_down(module: str) -> None:
    upward = [imported for imported in graph()[module] if imported != module and layer_of(imported) > layer_of(module)]
    assert not upward, f"{module} (layer {layer_of(module)}) imports from a higher layer: {upward}"


def test_no_import_cycle() -> None:
    edges = graph()
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(edges.get(module, ())):
            if imported == module or imported not in edges:
                continue
            if state.get(imported) == "open":
                raise AssertionError("import cycle: " + " -> ".join([*path, module, imported]))
            if imported not in state:
                visit(imported, [*path, module])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [])


def test_the_check_finds_an_upward_import(tmp_path: Path) -> None:
    """The check is not blind: a host module that imported the controller would be reported."""
    planted = tmp_path / "planted.py"
    planted.write_text("from localcloud.controller import LocalCloud\nfrom localcloud.host import disks\n")
    imported = local_imports(planted)
    assert "localcloud.controller" in imported
    assert layer_of("localcloud.controller") > layer_of("localcloud.host.machines")
