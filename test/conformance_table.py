"""docs/ollama_conformance.md read as data: the field rows and the real server's behaviour rows."""

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / 'docs' / 'ollama_conformance.md'
REAL_RELEASES = ('0.12.6', '0.32.15')
_TIME = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$')
TYPES = {
    'string': lambda v: isinstance(v, str),
    'int': lambda v: isinstance(v, int) and not isinstance(v, bool),
    'ns': lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    'bytes': lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    'time': lambda v: isinstance(v, str) and bool(_TIME.match(v)),
    'list': lambda v: isinstance(v, list),
    'object': lambda v: isinstance(v, dict),
    'bool': lambda v: isinstance(v, bool),
}


def _cells(line):
    return [c.strip() for c in line.strip().strip('|').split('|')]


def field_rows():
    """Rows of the field table: endpoint, field, type, product, simulator, real."""
    rows = []
    for line in DOC.read_text().splitlines():
        cells = _cells(line)
        if len(cells) != 7 or not (cells[0].startswith('`') or cells[0].startswith('any')):
            continue
        rows.append(dict(endpoint=cells[0].replace('`', ''), field=cells[1], type=cells[2],
                         product=cells[3], simulator=cells[4], real=cells[6]))
    return rows


def behaviour_rows():
    """Rows of the behaviours table: row id, v0.12.6, v0.32.15 difference, simulator."""
    rows = []
    for line in DOC.read_text().splitlines():
        cells = _cells(line)
        if len(cells) == 4 and re.match(r'^`[a-z0-9-]+`$', cells[0]):
            rows.append(dict(row=cells[0].strip('`'), old=cells[1], new=cells[2],
                             simulator=cells[3]))
    return rows


def field_path(row):
    """Return the field path and, for `done_reason` = `load` rows, the value it must have."""
    match = re.match(r'^`([^`]+)`(?: = `([^`]+)`)?(?: line)?$', row['field'])
    assert match, row
    return match.group(1), match.group(2)


def values_at(obj, path):
    """Every value at a dotted path ('models[].size'); model_info keys hold dots themselves."""
    if path.startswith('model_info.') and isinstance(obj, dict):
        info = obj.get('model_info') or {}
        key = path[len('model_info.'):].replace('<arch>', str(info.get('general.architecture')))
        return [info[key]] if key in info else []
    head, _, rest = path.partition('.')
    many = head.endswith('[]')
    name = head[:-2] if many else head
    if not isinstance(obj, dict) or name not in obj:
        return []
    value = obj[name]
    items = value if many and isinstance(value, list) else [value]
    if not rest:
        return items
    return [v for item in items for v in values_at(item, rest)]


def assert_serves_field(row, replies, where):
    """Assert the replies carry the row's field with the row's type (and its value, if named)."""
    path, expected = field_path(row)
    found = [v for reply in replies for v in values_at(reply, path)]
    assert found, f"no {path} in {where}: {replies[:2]}"
    assert all(TYPES[row['type']](v) for v in found), found[:5]
    if expected is not None:
        assert expected in found
