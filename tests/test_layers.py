"""The package's shape stays true: imports point down the layers and never close a circle.

Every module of ``src/soundgen`` is parsed (not imported) and every ``soundgen`` import it holds is collected,
including those inside functions and under ``TYPE_CHECKING``: a lazy import is still a dependency. The layers
are those of docs/ARCHITECTURE.md; a new top-level module or package must be placed in one of them here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "soundgen"

# Bottom first. A module may import from its own layer or a lower one, never from a higher one. Units are the
# top-level packages and modules of soundgen ("__init__" is the package's own __init__.py).
LAYERS: list[set[str]] = [
    {"audio", "__init__", "utils", "errors", "config", "tokenizer", "distributed", "model_files"},
    {"codec", "lm", "data"},
    {"pipeline"},  # codec + LM + text encoder: what training samples, eval and the service generate with
    {"train", "eval", "release"},  # release: the model card, which 'lm export' writes too
    {"service", "cli", "__main__"},
]
# The wings on the bottom layer know each other only through the root's protocols (tokenizer.AudioTokenizer).
WINGS = {"codec", "lm", "data"}

Edges = dict[str, dict[str, int]]  # module -> imported module -> line of the first such import


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules: set[str]) -> Iterator[str]:
    """The soundgen modules an import statement names (``from a import b`` names a.b when b is a module, else a;
    the parent packages every import runs first are left out, as they would make each package a circle)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            origin = ".".join(base + ([node.module] if node.module else []))
        else:
            origin = node.module or ""
        names = [f"{origin}.{alias.name}" if f"{origin}.{alias.name}" in modules else origin for alias in node.names]
    for name in names:
        if name == PACKAGE or name.startswith(PACKAGE + "."):
            while name not in modules:  # an attribute of a module
                name = name.rpartition(".")[0]
            yield name


def import_graph(root: Path = SRC) -> Edges:
    """Every module of the package under ``root`` and the package modules it imports, with line numbers."""
    files = {_module_name(p, root): p for p in sorted((root / PACKAGE).rglob("*.py"))}
    modules = set(files)
    edges: Edges = {}
    for module, path in files.items():
        out = edges.setdefault(module, {})
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                for target in _targets(node, module, path.name == "__init__.py", modules):
                    if target != module:
                        out.setdefault(target, node.lineno)
    return edges


def unit(module: str) -> str:
    """The top-level package or module of soundgen that ``module`` belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layer(name: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if name in names)


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def layer_violations(edges: Edges) -> list[str]:
    """Imports from a lower layer into a higher one, and between the wings, as readable lines."""
    out = []
    for module, targets in sorted(edges.items()):
        src = unit(module)
        for target, line in sorted(targets.items()):
            dst = unit(target)
            if src == dst:
                continue
            if layer(dst) > layer(src):
                out.append(f"{module}:{line} imports {target} (layer {layer(dst)} above {layer(src)})")
            elif src in WINGS and dst in WINGS:
                out.append(f"{module}:{line} imports {target} (wing into wing)")
    return out


def package_circles(edges: Edges) -> list[list[str]]:
    graph: dict[str, set[str]] = {}
    for module, targets in edges.items():
        graph.setdefault(unit(module), set()).update(unit(t) for t in targets if unit(t) != unit(module))
    return circles(graph)


def module_circles(edges: Edges) -> list[list[str]]:
    return circles({m: set(t) for m, t in edges.items()})


@pytest.fixture(scope="module")
def edges() -> Edges:
    return import_graph()


def test_every_unit_has_a_layer(edges: Edges) -> None:
    placed = set().union(*LAYERS)
    missing = sorted({unit(m) for m in edges} - placed)
    assert not missing, f"place {missing} in a layer of LAYERS (and in docs/ARCHITECTURE.md)"


def test_imports_point_down_the_layers(edges: Edges) -> None:
    found = layer_violations(edges)
    assert not found, "upward imports (move the helper down, or the importer up):\n" + "\n".join(found)


def test_no_import_circles(edges: Edges) -> None:
    found = package_circles(edges) + module_circles(edges)
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_checks_catch_what_they_guard(tmp_path: Path) -> None:
    """A planted upward import, wing-to-wing import and circle are each reported (the checks can fail)."""
    pkg = tmp_path / PACKAGE
    for sub in ("audio", "codec", "lm", "train"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "audio" / "io.py").write_text("def f():\n    from soundgen.train.loop import run\n")
    (pkg / "codec" / "model.py").write_text("from ..lm import model\n")
    (pkg / "lm" / "model.py").write_text("import soundgen.train.loop\n")
    (pkg / "train" / "loop.py").write_text("from soundgen.lm.model import x\nrun = 1\n")
    fake = import_graph(tmp_path)
    assert fake["soundgen.codec.model"] == {"soundgen.lm.model": 1}
    assert layer_violations(fake) == [
        "soundgen.audio.io:2 imports soundgen.train.loop (layer 3 above 0)",
        "soundgen.codec.model:1 imports soundgen.lm.model (wing into wing)",
        "soundgen.lm.model:1 imports soundgen.train.loop (layer 3 above 1)",
    ]
    assert package_circles(fake) == [["lm", "train"]]
    assert module_circles(fake) == [["soundgen.lm.model", "soundgen.train.loop"]]
