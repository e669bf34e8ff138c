"""Report notebooks are committed as clean, thin views: no outputs, the standard parameters cell."""
from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from mailaudit.report.params import REPORT_NAMES

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_report_notebooks():
    assert NOTEBOOKS, "notebooks/ holds no notebook"
    assert {p.stem for p in NOTEBOOKS} <= set(REPORT_NAMES)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for number, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"cell {number} has outputs"
            assert cell.execution_count is None, f"cell {number} has an execution count"
    assert "papermill" not in nb.metadata
    assert "widgets" not in nb.metadata


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_holds_only_the_paths(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged `parameters`"
    assigned = {node.targets[0].id: ast.literal_eval(node.value)
                for node in ast.parse(tagged[0].source).body if isinstance(node, ast.Assign)}
    assert assigned == {"params_path": "../params/demo.yaml", "out_dir": "../reports/interactive",
                        "snapshot_path": None}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_opens_its_own_report_context(path):
    source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    assert f'ReportContext.open("{path.stem}", params_path, out_dir, snapshot_path)' in source
