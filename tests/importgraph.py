"""The package's import graph, read from the source with `ast` (nothing is imported).

Every `import`/`from ... import` in a module counts, at module level or inside a function. A name imported
from a package resolves to its submodule where one exists (`from ..ops import slstm` -> `xseq.ops.slstm`).
Rooms are the subpackages (`xseq.ops`, `xseq.nn`, ...) and the top-level modules; floors are the layers."""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "xseq"

# floors, bottom first; a room may import only from its own floor's room or from lower floors, and
# rooms on the application floor never import each other
LAYERS: list[tuple[str, ...]] = [
    ("xseq.lazy",),  # lazy package attributes: used by every package's __init__
    ("xseq.ops",),
    ("xseq.nn",),
    ("xseq.common", "xseq.datasets"),
    ("xseq.forecast", "xseq.classify", "xseq.rl", "xseq.lm", "xseq.synthetic"),
    ("xseq", "xseq.cli", "xseq.stream"),  # the public face: xseq/__init__.py, the command line, aliases
]
APPLICATIONS = set(LAYERS[4])


@dataclass
class Import:
    src: str  # importing module
    dst: str  # imported module
    names: tuple[str, ...] = ()  # names taken from dst (empty for `import dst`)
    line: int = 0


@dataclass
class Graph:
    modules: dict[str, Path] = field(default_factory=dict)
    imports: list[Import] = field(default_factory=list)


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def read_graph(root: Path = ROOT) -> Graph:
    g = Graph()
    for path in sorted(root.rglob("*.py")):
        g.modules[module_name(path, root)] = path
    _PACKAGES.update(m for m, p in g.modules.items() if p.name == "__init__.py")
    for mod, path in g.modules.items():
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] == "xseq":
                        g.imports.append(Import(mod, a.name, (), node.lineno))
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target.split(".")[0] != "xseq":
                    continue
                plain = []
                for a in node.names:
                    sub = f"{target}.{a.name}"
                    if sub in g.modules:
                        g.imports.append(Import(mod, sub, (), node.lineno))
                    else:
                        plain.append(a.name)
                if plain or not node.names:
                    g.imports.append(Import(mod, target, tuple(plain), node.lineno))
    return g


_PACKAGES: set[str] = set()  # packages seen by read_graph


def room(mod: str) -> str:
    parts = mod.split(".")
    if len(parts) == 1:
        return "xseq"
    if len(parts) == 2 and mod not in _PACKAGES:
        return mod  # a top-level module such as xseq.cli
    return ".".join(parts[:2])


def floor(r: str) -> int:
    for k, rooms in enumerate(LAYERS):
        if r in rooms:
            return k
    raise KeyError(f"room {r} is on no floor: add it to LAYERS in tests/importgraph.py")


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def violations(g: Graph) -> list[str]:
    out = []
    for imp in g.imports:
        rs, rd = room(imp.src), room(imp.dst)
        where = f"{imp.src}:{imp.line} imports {imp.dst}" + (f" ({', '.join(imp.names)})" if imp.names else "")
        if rs == rd:
            continue
        fs, fd = floor(rs), floor(rd)
        if fd > fs:
            out.append(f"upward: {where}")
        elif rs in APPLICATIONS and rd in APPLICATIONS:
            out.append(f"between applications: {where}")
        elif fs == fd:
            out.append(f"sideways: {where}")
        private_mod = any(is_private(p) for p in imp.dst.split(".")[1:])
        private_names = [n for n in imp.names if is_private(n)]
        if private_mod or private_names:
            out.append(f"private name of another room: {where}")
    return out


def module_cycles(g: Graph) -> list[list[str]]:
    """Cycles among modules (every import counts, a package's __init__ included)."""
    edges: dict[str, set[str]] = {m: set() for m in g.modules}
    for imp in g.imports:
        if imp.dst in edges and imp.dst != imp.src:
            edges[imp.src].add(imp.dst)
    return _cycles(edges)


def room_graph(g: Graph) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for m in g.modules:
        edges.setdefault(room(m), set())
    for imp in g.imports:
        rs, rd = room(imp.src), room(imp.dst)
        if rs != rd:
            edges[rs].add(rd)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def summary(g: Graph) -> str:
    rg = room_graph(g)
    arrows = sum(len(v) for v in rg.values())
    lines = [f"{len(rg)} rooms, {arrows} arrows, {len(g.modules)} modules"]
    for r in sorted(rg, key=lambda r: (_floor_or(r), r)):
        lines.append(f"  [{_floor_or(r)}] {r} -> {', '.join(sorted(rg[r])) or '-'}")
    up = [f"{a} -> {b}" for a, bs in rg.items() for b in bs if _floor_or(b) > _floor_or(a)]
    lines.append(f"arrows that run back up: {len(up)}" + (f" ({'; '.join(sorted(up))})" if up else ""))
    lines.append(f"room cycles: {_cycles(rg)}")
    lines.append(f"module cycles: {module_cycles(g)}")
    return "\n".join(lines)


def _floor_or(r: str) -> int:
    try:
        return floor(r)
    except KeyError:
        return -1


if __name__ == "__main__":
    graph = read_graph()
    print(summary(graph))
    v = violations(graph)
    print(f"{len(v)} violations")
    for line in v:
        print("  " + line)
