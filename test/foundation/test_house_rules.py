"""The house's size and privacy rules: no product file over 500 lines, no reach into privates."""

import ast
from pathlib import Path
from typing import Dict, List, Set

from foundation_helpers import REPO_ROOT

PACKAGE_DIR = REPO_ROOT / 'shadowhound_llm_bench'
MAX_LINES = 500
# Private members of other people's libraries, used knowingly (each with its reason).
FOREIGN_PRIVATES = {
    # The type argparse's add_subparsers returns; the stdlib exports no public name for it.
    ('shadowhound_llm_bench.cli_history', '_SubParsersAction'),
    # httpcore's connection pool and network backend: the only place a blocked read can be
    # interrupted (adapters/http_interrupt.py says how and pins the versions it was checked on).
    ('shadowhound_llm_bench.adapters.http_interrupt', '_pool'),
    ('shadowhound_llm_bench.adapters.http_interrupt', '_network_backend'),
    # rclpy keeps the parameters rcl matched to this node (files, -p) only in
    # Node._parameter_overrides (Humble to Kilted): the one way to name the unknown ones.
    ('shadowhound_llm_bench.ros.parameters', '_parameter_overrides'),
}


def _module(path: Path) -> str:
    parts = list(path.with_suffix('').parts)
    if path.is_relative_to(REPO_ROOT):
        parts = list(path.relative_to(REPO_ROOT).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def _private(name: str) -> bool:
    return name.startswith('_') and not name.startswith('__')


def _is_protocol(node: ast.ClassDef) -> bool:
    return any('Protocol' in ast.unparse(base) for base in node.bases)


def owned_privates(tree: ast.AST) -> Set[str]:
    """
    Private members the classes of a module define: self._x / cls._x, _methods, class-level _x.

    A Protocol's members are declarations of someone else's, not definitions: they own nothing.
    """
    owned: Set[str] = set()
    for cls in ast.walk(tree):
        if not isinstance(cls, ast.ClassDef) or _is_protocol(cls):
            continue
        for node in cls.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                owned.add(node.name)
            elif isinstance(node, ast.Assign):
                owned.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                owned.add(node.target.id)  # a field (dataclass) or a class attribute
        for node in ast.walk(cls):
            if (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                    and isinstance(node.value, ast.Name) and node.value.id in ('self', 'cls')):
                owned.add(node.attr)
    return {name for name in owned if _private(name)}


def reaches_into_privates(path: Path) -> List[str]:
    """`x._name` uses where x is not self/cls and no part of this module defines _name."""
    tree = ast.parse(path.read_text(encoding='utf-8'), filename=str(path))
    own = owned_privates(tree)
    module = _module(path)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner, name = node.value, node.attr
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ('getattr', 'setattr', 'hasattr', 'delattr')
              and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
              and isinstance(node.args[1].value, str)):
            owner, name = node.args[0], node.args[1].value  # getattr(guard, '_x')
        else:
            continue
        if not _private(name):
            continue
        if isinstance(owner, ast.Name) and owner.id in ('self', 'cls'):
            continue
        if name in own or (module, name) in FOREIGN_PRIVATES:
            continue
        found.append(f'{module}:{node.lineno}: {ast.unparse(node)}')
    return found


def test_no_product_file_is_over_500_lines():
    sizes: Dict[str, int] = {}
    for path in sorted(PACKAGE_DIR.rglob('*.py')):
        lines = len(path.read_text(encoding='utf-8').splitlines())
        if lines > MAX_LINES:
            sizes[str(path.relative_to(REPO_ROOT))] = lines
    assert len(list(PACKAGE_DIR.rglob('*.py'))) > 150  # the walk sees the package
    assert not sizes, f'files over {MAX_LINES} lines: {sizes}'


def test_no_module_reaches_into_another_modules_private_members():
    found = [line for path in sorted(PACKAGE_DIR.rglob('*.py'))
             for line in reaches_into_privates(path)]
    assert not found, 'private members used from outside their module:\n' + '\n'.join(found)


def test_the_privacy_rule_sees_a_reach_and_lets_a_module_use_its_own(tmp_path):
    """The rule is not blind: guard._unload from elsewhere is found; self._x and own _x pass."""
    outside = tmp_path / 'outside.py'
    outside.write_text('def stop(guard):\n    guard._unload("m")\n'
                       '    return guard.unload, getattr(guard, "_busy", 0)\n')
    inside = tmp_path / 'inside.py'
    inside.write_text('class Guard:\n    def _unload(self):\n        self._busy = True\n\n'
                      'def helper(guard):\n    guard._unload()\n    return guard._busy\n')
    declared = tmp_path / 'declared.py'
    declared.write_text('class GuardLike(Protocol):\n    _stop: object\n\n'
                        '    def _tags(self): ...\n\n'
                        'def calibrate(guard: GuardLike):\n'
                        '    return guard._tags(), guard._stop\n')
    assert sorted(line.split(': ', 1)[1] for line in reaches_into_privates(outside)) == [
        "getattr(guard, '_busy', 0)", 'guard._unload']
    assert reaches_into_privates(inside) == []
    assert sorted(line.split(': ', 1)[1] for line in reaches_into_privates(declared)) == [
        'guard._stop', 'guard._tags']
