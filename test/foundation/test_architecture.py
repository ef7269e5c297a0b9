"""The house's rules, read from the code's imports (ast): floors, no circles, no private reach."""

import ast
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

from foundation_helpers import REPO_ROOT

PACKAGE = 'shadowhound_llm_bench'
PACKAGE_DIR = REPO_ROOT / PACKAGE

# What each part may not import (parts: the package's sub-packages and its top-level modules).
# The CLI modules are cli.py, cli_budget.py, cli_history.py.
CLI = {'cli', 'cli_budget', 'cli_history'}
FORBIDDEN: Dict[str, Set[str]] = {
    'core': {'adapters', 'engine', 'ros', 'sim', 'reports', 'real_ollama', 'demo'} | CLI,
    'adapters': {'engine', 'ros', 'sim', 'real_ollama', 'demo'} | CLI,
    'engine': {'ros', 'sim', 'real_ollama', 'demo'} | CLI,
}
# Parts that stand apart: they import only the neutral package and themselves.
STANDING_APART = ('common', 'sim', 'real_ollama')
NEUTRAL = 'common'


def module_name(path: Path) -> str:
    """Dotted module name of a file of the package (a package's __init__ names the package)."""
    parts = list(path.relative_to(REPO_ROOT).with_suffix('').parts)
    if parts[-1] == '__init__':
        parts.pop()
    return '.'.join(parts)


def product_files() -> Dict[str, Path]:
    """Every module of the product, by dotted name."""
    return {module_name(p): p for p in sorted(PACKAGE_DIR.rglob('*.py'))}


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom,
             modules: Set[str]) -> Iterator[str]:
    """Modules of the product an ImportFrom names (a name that is a module counts as one)."""
    if node.level:
        base = importer.split('.')
        base = base if is_package else base[:-1]
        base = base[:len(base) - (node.level - 1)]
        target = '.'.join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ''
    if not target.startswith(PACKAGE):
        return
    for alias in node.names:
        if f'{target}.{alias.name}' in modules:
            yield f'{target}.{alias.name}'
        else:
            yield target


def import_graph() -> Dict[str, Set[str]]:
    """Map each module to the product modules it imports (in functions, TYPE_CHECKING too)."""
    files = product_files()
    modules = set(files)
    graph: Dict[str, Set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding='utf-8'), filename=str(path))
        edges: Set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                edges.update(_resolve(name, path.name == '__init__.py', node, modules))
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name.startswith(PACKAGE))
        graph[name] = {e for e in edges if e != name and e in modules}
    return graph


def part_of(module: str) -> str:
    """Return the sub-package or top-level module a module belongs to ('' for the package)."""
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else ''


def circles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on_stack: Set[str] = set()
    found: List[List[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def crossings(graph: Dict[str, Set[str]]) -> Iterator[Tuple[str, str]]:
    """Every import from one part of the package into another."""
    for importer, imported in graph.items():
        for target in imported:
            if part_of(target) != part_of(importer) and part_of(target):
                yield importer, target


def test_the_graph_is_read():
    """The reader sees the package's known floors (a reader that sees nothing passes anything)."""
    graph = import_graph()
    assert f'{PACKAGE}.core.decider.room_making' in graph[f'{PACKAGE}.core.decider.policy']
    assert f'{PACKAGE}.common.process_group' in graph[f'{PACKAGE}.sim.launcher']
    assert f'{PACKAGE}.core.decider.memory_back' in graph[f'{PACKAGE}.core.decider.policy']
    assert len(graph) > 150


def test_lower_floors_import_no_upper_floor():
    """Core imports no adapters/engine/ros/sim/reports; adapters no engine/ros; engine no ros."""
    wrong = sorted(f'{a} -> {b}' for a, b in crossings(import_graph())
                   if part_of(b) in FORBIDDEN.get(part_of(a), set()))
    assert not wrong, 'imports that run up a floor:\n' + '\n'.join(wrong)


def test_simulator_and_real_ollama_stand_apart():
    """The simulator and the real-Ollama launcher import only common/ and themselves."""
    wrong = sorted(f'{a} -> {b}' for a, b in crossings(import_graph())
                   if part_of(a) in STANDING_APART and part_of(b) != NEUTRAL)
    assert not wrong, 'imports out of a part that stands apart:\n' + '\n'.join(wrong)


def test_no_import_circles():
    """No modules import each other in a loop (type-only and in-function imports count too)."""
    found = circles(import_graph())
    assert not found, 'import circles:\n' + '\n'.join(' <-> '.join(c) for c in found)


def test_circle_finder_finds_a_circle():
    """The circle finder is not blind: a made-up loop of three is found, a chain is not."""
    assert circles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]
    assert circles({'a': {'b'}, 'b': {'c'}, 'c': set()}) == []


def test_no_private_name_imported_from_another_module():
    """No module imports another module's _private name (from x import _name, x._name)."""
    files = product_files()
    modules = set(files)
    wrong: List[str] = []
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding='utf-8'), filename=str(path))
        module_aliases: Set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                targets = list(_resolve(name, path.name == '__init__.py', node, modules))
                for alias, target in zip(node.names, targets):
                    if target.endswith('.' + alias.name):
                        module_aliases.add(alias.asname or alias.name)
                    elif alias.name.startswith('_') and not alias.name.startswith('__'):
                        wrong.append(f'{name}: from {target} import {alias.name}')
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in module_aliases and node.attr.startswith('_')
                    and not node.attr.startswith('__')):
                wrong.append(f'{name}: {node.value.id}.{node.attr}')
    assert not wrong, 'private names used across modules:\n' + '\n'.join(sorted(wrong))
