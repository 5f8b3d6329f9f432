"""Who may import whom, checked on the import graph of hub/ (every ``import`` and
``from ... import``, at module level and inside functions, parsed with ast):

- no cycles between modules;
- the domain core (formats, inspect, compat, merge, combine) imports no registry, sync,
  cli, tui, SQLAlchemy, click, textual or huggingface_hub;
- only registry/ and the migrations import SQLAlchemy;
- cli/ and tui/ import nothing of registry/; tui/ imports nothing of cli/.

ALLOWED lists the violations that remain, each with the lane that removes it; it must
shrink to empty, and an entry that no longer occurs fails the test (so it is removed).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CORE = ("hub.formats", "hub.inspect", "hub.compat", "hub.merge", "hub.combine")
CORE_FORBIDDEN = ("hub.registry", "hub.sync", "hub.cli", "hub.tui", "sqlalchemy", "click", "textual",
                  "huggingface_hub")

CLI_REGISTRY = "cli/ and tui/ import nothing of registry/"
SQL = "only registry/ and migrations import sqlalchemy"

# Violations still to be removed: (importer, imported, rule) -> who removes it.
ALLOWED: dict[tuple[str, str, str], str] = {
}
# Import cycles still to be broken: the modules of each (sorted) -> who breaks it.
ALLOWED_CYCLES: dict[tuple[str, ...], str] = {
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _sources() -> dict[str, Path]:
    out = {_module_name(p): p for p in (REPO / "hub").rglob("*.py")}
    out.update({f"migrations.{_module_name(p)}": p for p in (REPO / "migrations").rglob("*.py")})
    return out


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module ``name`` imports: absolute names, submodules resolved (``from hub import
    plugins`` is hub.plugins), wherever the statement stands in the file."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(name, path.name == "__init__.py", node)
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                out.add(sub if sub in known else target)
    out.discard(name)
    return out


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    sources = _sources()
    known = set(sources)
    return {name: imports_of(name, path, known) for name, path in sources.items()}


def _within(module: str, prefixes) -> bool:
    if isinstance(prefixes, str):
        prefixes = (prefixes,)
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def violations(graph) -> set[tuple[str, str, str]]:
    found = set()
    for importer, targets in graph.items():
        for target in targets:
            if _within(importer, CORE) and _within(target, CORE_FORBIDDEN):
                found.add((importer, target, "core imports a front-end, the registry or a service library"))
            if _within(target, "sqlalchemy") and not _within(importer, ("hub.registry", "migrations")):
                found.add((importer, target, "only registry/ and migrations import sqlalchemy"))
            if _within(importer, ("hub.cli", "hub.tui")) and _within(target, "hub.registry"):
                found.add((importer, target, "cli/ and tui/ import nothing of registry/"))
            if _within(importer, "hub.tui") and _within(target, "hub.cli"):
                found.add((importer, target, "tui/ imports nothing of cli/"))
    return found


def cycles(graph) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), as sorted lists."""
    nodes = {n: {t for t in ts if t in graph} for n, ts in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(root: str) -> None:   # iterative: deep import chains must not hit the recursion limit
        work = [(root, iter(sorted(nodes[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(nodes[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    out.append(sorted(component))

    for n in sorted(nodes):
        if n not in index:
            visit(n)
    return sorted(out)


def test_the_graph_sees_every_kind_of_import(graph):
    # module level, inside a function, and `from package import submodule`
    assert "hub.errors" in graph["hub.combine.declare"]
    assert "hub.plugins" in graph["hub.combine.registry"]
    assert "sqlalchemy" in graph["hub.registry.db"]
    assert len(graph) > 100


def test_no_import_cycles(graph):
    found = {tuple(c) for c in cycles(graph)}
    assert sorted(found - set(ALLOWED_CYCLES)) == [], "new import cycles"
    assert sorted(set(ALLOWED_CYCLES) - found) == [], "broken: remove these from ALLOWED_CYCLES"


def test_layering_rules(graph):
    found = violations(graph)
    assert sorted(found - set(ALLOWED)) == [], "new import-rule violations"
    assert sorted(set(ALLOWED) - found) == [], "fixed: remove these from ALLOWED"


def test_the_rules_catch_a_violation():
    fake = {"hub.merge.plan": {"hub.registry.db"}, "hub.tui.app": {"hub.cli._errors"},
            "hub.service": {"sqlalchemy.orm"}, "hub.a": {"hub.b"}, "hub.b": {"hub.a"}}
    assert {(a, b) for a, b, _ in violations(fake)} == {("hub.merge.plan", "hub.registry.db"),
                                                        ("hub.tui.app", "hub.cli._errors"),
                                                        ("hub.service", "sqlalchemy.orm")}
    assert cycles(fake) == [["hub.a", "hub.b"]]
