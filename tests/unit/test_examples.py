"""The example notebooks in examples/ stay valid: well-formed, their code parses, and the INK
names they use exist (the Dask scale-out itself is proven by tests/integration/test_dask.py)."""

import ast
from pathlib import Path

import nbformat
import pytest

import ink.dask
import ink.jobs

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.ipynb"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_notebook_is_valid_and_names_what_exists(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), "runnable as a batch job"
    modules = {"ink.dask": ink.dask, "ink.jobs": ink.jobs}
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.ImportFrom) and node.module in modules:
                for alias in node.names:
                    assert hasattr(modules[node.module], alias.name), f"{node.module}.{alias.name}"


def test_there_is_an_example():
    assert EXAMPLES
