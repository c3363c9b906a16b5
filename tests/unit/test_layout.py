"""INK's packages depend one way only. A forbidden import fails here, naming the file and the
line:

- ``ink_core``: shared (names, units, arrays, private writes, checksums); imports nothing of INK.
- ``ink_client``: the light client (the `ink` command on a laptop, the REST client); core only,
  so it installs without the hub's dependencies.
- ``ink_spawner``: the hub side (spawner, backends, job wrapper, apps, site configurator).
- ``ink_services``: the hub-managed services and the hub-side `ink` commands.
- ``ink``: what notebooks import (jobs, Dask); core and the client."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ALLOWED = {
    "ink_core": set(),
    "ink_client": {"ink_core"},
    "ink_spawner": {"ink_core"},
    "ink_services": {"ink_core", "ink_spawner"},
    "ink": {"ink_core", "ink_client"},
}
LAYERS = list(ALLOWED)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in a file, relative ones resolved."""
    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
    return found


def forbidden(layer: str) -> set[str]:
    return set(LAYERS) - ALLOWED[layer] - {layer}


@pytest.mark.parametrize("layer", LAYERS)
def test_imports_run_one_way(layer):
    problems = []
    files = sorted((REPO / layer).rglob("*.py"))
    assert files, layer
    for path in files:
        for line, module in imports_of(path):
            if module.split(".")[0] in forbidden(layer):
                problems.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    assert not problems, f"{layer} may import only {sorted(ALLOWED[layer])}:\n" + "\n".join(problems)


def test_the_rule_sees_relative_and_late_imports(tmp_path, monkeypatch):
    """The check itself: a relative import and an import inside a function are both found."""
    module = REPO / "ink_core" / "layout_probe_for_test.py"
    module.write_text("def f():\n    from ink_services import cli\n    from ..ink_spawner import spawner\n")
    try:
        found = imports_of(module)
    finally:
        module.unlink()
    assert (2, "ink_services") in [(line, name.split(".")[0]) for line, name in found]
    assert any(name.endswith("ink_spawner") for _, name in found)
