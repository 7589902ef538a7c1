"""The layout's rules, checked on the imports of the product code (at module level and inside
functions alike): the kernel imports no domain, no domain imports another domain's storage,
and no two domains import each other, directly or round a longer circle."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("server", "question_bank", "scoring", "content")
# Folders below a package that are domains of their own; the package itself is one otherwise.
SUBDOMAIN_PARENTS = ("server", "scoring")
WIRING = {"server.app", "server.routes", "server.__main__", "server.seed", "server.dashboard"}


def modules() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            yield name.removesuffix(".__init__"), path


def imported(path: Path, module: str) -> set[str]:
    """Every project module this file imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    known = {name for name, _ in modules()}
    return {name for name in found if name in known and name != module}


def domain_of(module: str) -> str:
    parts = module.split(".")
    if parts[0] in SUBDOMAIN_PARENTS and len(parts) >= 2:
        return ".".join(parts[:2])
    return parts[0]


def edges() -> dict[str, set[str]]:
    return {name: imported(path, name) for name, path in modules()}


def test_the_kernel_imports_no_domain() -> None:
    offenders = {
        (module, target)
        for module, targets in edges().items()
        if module.startswith("server.kernel")
        for target in targets
        if not target.startswith("server.kernel")
    }
    assert offenders == set()


def test_no_domain_imports_another_domains_storage() -> None:
    offenders = {
        (module, target)
        for module, targets in edges().items()
        if module not in WIRING
        for target in targets
        if target.endswith(".storage") and domain_of(target) != domain_of(module)
    }
    assert offenders == set()


def test_no_two_domains_depend_on_each_other() -> None:
    """Domains form layers (accounts and county at the bottom, statistics at the top); a
    circle between them, even through a function-level import, means one of them is in the
    wrong room."""
    graph: dict[str, set[str]] = {}
    for module, targets in edges().items():
        if module in WIRING:
            continue
        source = domain_of(module)
        graph.setdefault(source, set()).update(
            domain_of(t) for t in targets if domain_of(t) != source and t not in WIRING
        )
    graph.pop("server", None)  # the wiring package itself
    for domain in graph:
        graph[domain].discard("server")
    circles = [(a, b) for a in graph for b in graph[a] if a in reachable(graph, b)]
    assert circles == []


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), set()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen
