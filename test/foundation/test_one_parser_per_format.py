"""
One parser per kernel memory format: /proc/meminfo and memory.stat are split in one module.

The product and the simulated machine read the same files; a second parser drifts (a unit, a
missing field, a different error) and the two then disagree about the same machine. Every
function of the product that names the format and also splits text itself is a second parser.
"""

import ast
from pathlib import Path
from typing import Iterator, List, Set, Tuple

from foundation_helpers import REPO_ROOT

PACKAGE_DIR = REPO_ROOT / 'shadowhound_llm_bench'
THE_PARSER = PACKAGE_DIR / 'common' / 'kernel_text.py'

# What names each format: field names of /proc/meminfo, the file names of a memory cgroup.
MEMINFO_MARKERS = ('MemTotal', 'MemAvailable', 'MemFree', 'NvMapMemUsed', 'meminfo')
MEMORY_STAT_MARKERS = ('memory.stat', 'total_cache', 'total_inactive_file', 'inactive_file')
# How text is split into fields: string methods, and any regular expression.
SPLITTING_METHODS = ('partition', 'rpartition', 'split', 'rsplit')
REGEX_CALLS = ('compile', 'match', 'search', 'findall', 'finditer', 'fullmatch')


def _docstrings(node: ast.AST) -> Set[int]:
    """Return the ids of the docstring constants under node (prose, not code)."""
    found = set()
    for child in ast.walk(node):
        body = getattr(child, 'body', None)
        if (isinstance(body, list) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)):
            found.add(id(body[0].value))
    return found


def _strings(node: ast.AST) -> Iterator[str]:
    """Every string in the code under node (docstrings left out), and the function's name."""
    prose = _docstrings(node)
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        yield node.name
    for child in ast.walk(node):
        if (isinstance(child, ast.Constant) and isinstance(child.value, str)
                and id(child) not in prose):
            yield child.value


def _splits_text(node: ast.AST) -> bool:
    """Tell whether code splits text into fields (a str method or a regular expression)."""
    for child in ast.walk(node):
        if not isinstance(child, ast.Call) or not isinstance(child.func, ast.Attribute):
            continue
        name = child.func.attr
        owner = child.func.value
        if name in SPLITTING_METHODS:
            return True
        if (name in REGEX_CALLS and isinstance(owner, ast.Name) and owner.id == 're'
                and child.args and isinstance(child.args[0], ast.Constant)):
            return True  # a fixed pattern (a user's pattern from a setting is no format)
    return False


def _names_format(node: ast.AST, markers: Tuple[str, ...]) -> bool:
    return any(marker in text for text in _strings(node) for marker in markers)


def _regex_patterns(tree: ast.AST) -> Iterator[str]:
    for child in ast.walk(tree):
        if (isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute)
                and child.func.attr in REGEX_CALLS and isinstance(child.func.value, ast.Name)
                and child.func.value.id == 're' and child.args
                and isinstance(child.args[0], ast.Constant)
                and isinstance(child.args[0].value, str)):
            yield child.args[0].value


def second_parsers(files: List[Path], markers: Tuple[str, ...]) -> List[str]:
    """Name every function outside the parser module that names the format and splits text."""
    found = []
    for path in files:
        if path == THE_PARSER:
            continue
        tree = ast.parse(path.read_text(encoding='utf-8'), filename=str(path))
        where = path.relative_to(REPO_ROOT) if REPO_ROOT in path.parents else path.name
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                if _names_format(node, markers) and _splits_text(node):
                    found.append(f'{where}:{node.lineno} {getattr(node, "name", "lambda")}')
        for pattern in _regex_patterns(tree):
            if any(marker in pattern for marker in markers):
                found.append(f'{where}: regular expression {pattern!r}')
    return found


def product_files() -> List[Path]:
    return sorted(PACKAGE_DIR.rglob('*.py'))


def test_meminfo_is_parsed_in_one_module_only():
    assert second_parsers(product_files(), MEMINFO_MARKERS) == []


def test_memory_stat_is_parsed_in_one_module_only():
    assert second_parsers(product_files(), MEMORY_STAT_MARKERS) == []


def test_the_rule_finds_a_second_meminfo_parser(tmp_path):
    rogue = tmp_path / 'rogue.py'
    rogue.write_text(
        'def available(text):\n'
        '    for line in text.splitlines():\n'
        '        key, _, rest = line.partition(":")\n'
        '        if key == "MemAvailable":\n'
        '            return int(rest.split()[0]) * 1024\n'
        'import re\n'
        'FREE = re.compile(r"^MemFree:\\s+(\\d+) kB")\n', encoding='utf-8')
    found = second_parsers([rogue], MEMINFO_MARKERS)
    assert len(found) == 2
    assert 'available' in found[0] and 'MemFree' in found[1]


def test_the_rule_finds_a_second_memory_stat_parser(tmp_path):
    rogue = tmp_path / 'rogue.py'
    rogue.write_text(
        'def working_set(folder, usage):\n'
        '    with open(folder + "/memory.stat") as handle:\n'
        '        stat = dict(line.split() for line in handle)\n'
        '    return usage - int(stat.get("total_inactive_file", 0))\n', encoding='utf-8')
    assert len(second_parsers([rogue], MEMORY_STAT_MARKERS)) == 1


def test_the_one_parser_reads_both_formats():
    import sys
    sys.path.insert(0, str(REPO_ROOT))
    from shadowhound_llm_bench.common.kernel_text import parse_memory_stat, parse_meminfo
    assert parse_meminfo('MemTotal: 2 kB\nMemAvailable: 1 kB\nHugePages_Total: 3\n') == {
        'MemTotal': 2048, 'MemAvailable': 1024, 'HugePages_Total': 3}
    assert parse_memory_stat('anon 5\nfile 7\n') == {'anon': 5, 'file': 7}
