"""README and docs/: the parameters page is the generated one; every relative link resolves."""

import re
from pathlib import Path
from typing import Dict, List, Set, Tuple

from foundation_helpers import REPO_ROOT
import pytest

from shadowhound_llm_bench.core.settings.parameter_docs import render_parameter_docs

README = REPO_ROOT / 'README.md'
PAGES = [README] + sorted((REPO_ROOT / 'docs').glob('*.md'))
_LINK = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)\)')
_FENCE = re.compile(r'^(```|~~~)')


def _prose_lines(path: Path) -> List[Tuple[int, str]]:
    """Lines outside fenced code blocks, with their numbers."""
    lines, fenced = [], False
    for number, line in enumerate(path.read_text(encoding='utf-8').splitlines(), 1):
        if _FENCE.match(line.strip()):
            fenced = not fenced
        elif not fenced:
            lines.append((number, line))
    return lines


def _slug(heading: str) -> str:
    """Return the anchor GitHub gives a heading: lower case, punctuation dropped, hyphens."""
    text = re.sub(r'`|\*\*|\[([^\]]*)\]\([^)]*\)', r'\1', heading.strip().lower())
    text = re.sub(r'[^\w\- ]', '', text)
    return text.replace(' ', '-')


def _anchors(path: Path) -> Set[str]:
    anchors: Set[str] = set()
    seen: Dict[str, int] = {}
    for _, line in _prose_lines(path):
        match = re.match(r'^#{1,6}\s+(.*?)\s*#*$', line)
        if match:
            slug = _slug(match.group(1))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.add(slug if count == 0 else f'{slug}-{count}')
    return anchors


def test_parameters_page_is_the_generated_one():
    committed = (REPO_ROOT / 'docs' / 'parameters.md').read_text(encoding='utf-8')
    assert committed == render_parameter_docs(), (
        'docs/parameters.md differs from the parameter table: run '
        'python scripts/generate_parameter_docs.py')


def test_readme_fits_a_screen_and_starts_with_the_two_commands():
    lines = README.read_text(encoding='utf-8').splitlines()
    assert len(lines) <= 200, f'README.md has {len(lines)} lines'
    top = '\n'.join(lines[:30])
    assert 'make demo' in top and 'make test' in top


@pytest.mark.parametrize('page', PAGES, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_every_relative_link_resolves(page: Path):
    broken = []
    for number, line in _prose_lines(page):
        for target in _LINK.findall(line):
            if re.match(r'^[a-z]+:', target):
                continue  # https:, mailto: - not a file of this repository
            file_part, _, anchor = target.partition('#')
            linked = (page.parent / file_part).resolve() if file_part else page
            if not linked.exists():
                broken.append(f'{number}: {target} (no file {file_part})')
            elif anchor and linked.suffix == '.md' and anchor not in _anchors(linked):
                broken.append(f'{number}: {target} (no heading #{anchor})')
    assert not broken, f'{page.name}: ' + '; '.join(broken)


def test_every_docs_page_opens_with_a_title_and_what_it_answers():
    for page in sorted((REPO_ROOT / 'docs').glob('*.md')):
        lines = page.read_text(encoding='utf-8').splitlines()
        assert lines[0].startswith('# '), page.name
        assert lines[1] == '' and lines[2].strip(), page.name
