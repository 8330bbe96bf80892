"""The package's layers only look down (tests/importgraph.py reads the imports from the source):
ops <- nn <- common, datasets <- applications (forecast, classify, rl, lm, synthetic) <- xseq, xseq.cli.
No application imports another, nothing imports another room's private name, and no import cycle exists;
benchmarks use the public API only."""
import ast
from pathlib import Path

import pytest

from tests import importgraph as ig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def graph():
    return ig.read_graph()


def test_every_room_has_a_floor(graph):
    for mod in graph.modules:
        ig.floor(ig.room(mod))  # raises, naming the room, for a new package nobody placed


def test_layers_only_look_down(graph):
    assert ig.violations(graph) == []


def test_no_import_cycles(graph):
    assert ig.module_cycles(graph) == []
    assert ig._cycles(ig.room_graph(graph)) == []


def test_benchmarks_use_public_names_only():
    bad = []
    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "xseq":
                parts = node.module.split(".") + [a.name for a in node.names]
                if any(ig.is_private(p) for p in parts):
                    bad.append(f"{path.name}:{node.lineno} from {node.module} import "
                               f"{', '.join(a.name for a in node.names)}")
            elif isinstance(node, ast.Import):
                bad += [f"{path.name}:{node.lineno} import {a.name}" for a in node.names
                        if a.name.split(".")[0] == "xseq" and any(ig.is_private(p) for p in a.name.split("."))]
    assert bad == []


def test_the_checker_catches_what_it_should(tmp_path):
    """The rules fire on a package written to break each of them."""
    pkg = tmp_path / "xseq"
    for room in ("ops", "nn", "forecast", "classify"):
        (pkg / room).mkdir(parents=True)
        (pkg / room / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "ops" / "_hidden.py").write_text("X = 1\n")
    (pkg / "ops" / "up.py").write_text("from ..nn import layer\n")  # upward
    (pkg / "nn" / "layer.py").write_text("from ..ops._hidden import X\n")  # private
    (pkg / "forecast" / "a.py").write_text("from ..classify import b\n")  # between applications
    (pkg / "classify" / "b.py").write_text("from . import c\n")
    (pkg / "classify" / "c.py").write_text("from . import b\n")  # cycle
    g = ig.read_graph(pkg)
    kinds = sorted({v.split(":")[0] for v in ig.violations(g)})
    assert kinds == ["between applications", "private name of another room", "upward"]
    assert ig.module_cycles(g) == [["xseq.classify.b", "xseq.classify.c"]]
