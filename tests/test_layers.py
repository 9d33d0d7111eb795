"""The package's import graph: dependencies point one way, down the pipeline.

Every module belongs to a layer; a module may import its own layer and the
layers below it, never one above (function-local imports count too: they
are dependencies all the same), and no group of modules imports itself
round in a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "domaintune"

#: Lowest first. A module's layer is the first entry its dotted name starts with.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "foundation",
        (
            "domaintune.errors",
            "domaintune._io",
            "domaintune.cache",
            "domaintune.tf_runtime",
            "domaintune.kt_compat",
        ),
    ),
    ("data", ("domaintune.data",)),
    ("models", ("domaintune.models",)),
    ("evaluation", ("domaintune.evaluation",)),
    ("objectives", ("domaintune.objectives",)),
    ("reporting", ("domaintune.reporting",)),
    ("search", ("domaintune.search",)),
    ("export", ("domaintune.export",)),
    ("api", ("domaintune.api", "domaintune.search_result", "domaintune")),
    ("cli", ("domaintune.cli",)),
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def layer_of(module: str) -> int:
    for rank, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes if p != "domaintune"):
            return rank
    if module == "domaintune":
        return next(r for r, (name, _) in enumerate(LAYERS) if name == "api")
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")


def _resolve(name: str) -> str:
    """The longest known module a dotted import name refers to."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def imports_of(module: str) -> set[str]:
    """The domaintune modules ``module`` imports, anywhere in its body."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            # `from pkg import sub` imports the submodule, `from mod import name` the module.
            names = [
                f"{stem}.{alias.name}" if f"{stem}.{alias.name}" in MODULES else stem
                for alias in node.names
            ]
        else:
            continue
        targets.update(
            _resolve(name)
            for name in names
            if name == "domaintune" or name.startswith("domaintune.")
        )
    targets.discard(module)
    return targets


GRAPH = {module: imports_of(module) for module in MODULES}


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_upward_import(module):
    own = layer_of(module)
    upward = sorted(
        t for t in GRAPH[module] if layer_of(t) > own and not _is_own_package(module, t)
    )
    assert not upward, f"{module} ({LAYERS[own][0]}) imports a higher layer: " + ", ".join(
        f"{t} ({LAYERS[layer_of(t)][0]})" for t in upward
    )


def _is_own_package(module: str, target: str) -> bool:
    """A module naming its own subpackage's ``__init__`` (not the top level's)."""
    return target != "domaintune" and module.startswith(target + ".")


def test_no_import_cycle():
    edges = {m: {t for t in ts if not _is_own_package(m, t)} for m, ts in GRAPH.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                cycle = path[path.index(target) :] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)


def test_the_checker_sees_function_local_imports():
    """The graph is built from every import statement, not only top-level ones."""
    tuner = GRAPH["domaintune.search.tuner"]
    assert "domaintune.tf_runtime" in tuner
    runner = GRAPH["domaintune.search.runner"]
    # runner imports the resolver only inside run_search (to stay light).
    assert "domaintune.models.resolver" in runner
