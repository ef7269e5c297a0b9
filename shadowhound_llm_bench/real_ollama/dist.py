"""Where the real Ollama releases come from and where they are unpacked (once, under a lock)."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

REPO_ROOT = Path(__file__).resolve().parents[2]
# The versions whose archives the shared folder holds; tests run on every one found.
KNOWN_VERSIONS = ('0.12.6', '0.32.15')
_ARCHIVE = re.compile(r'^ollama-(\d+\.\d+\.\d+)-linux-amd64-cpu\.tar\.gz$')


@dataclass(frozen=True)
class OllamaDist:
    """One unpacked release: its version, its `ollama` binary and the folder holding bin/ lib/."""

    version: str
    binary: Path
    root: Path

    @property
    def needs_no_cloud(self) -> bool:
        """Tell whether the release tries to reach its cloud service without OLLAMA_NO_CLOUD."""
        return tuple(int(p) for p in self.version.split('.')) >= (0, 13, 0)


def cache_root() -> Path:
    """
    Return the folder of unpacked releases and made models, kept across test runs.

    Not XDG_CACHE_HOME: the tests point that at a throw-away folder.
    """
    env = os.environ.get('SHB_REAL_OLLAMA_CACHE')
    return Path(env) if env else Path.home() / '.cache' / 'shb-real-ollama'


def archive_dirs() -> List[Path]:
    """Folders that may hold release archives: SHB_OLLAMA_DIST, then ../shared/ollama."""
    dirs = []
    env = os.environ.get('SHB_OLLAMA_DIST')
    if env:
        dirs.append(Path(env))
    dirs.append(REPO_ROOT.parent / 'shared' / 'ollama')
    return [d for d in dirs if d.is_dir()]


def _archives() -> Dict[str, Path]:
    found: Dict[str, Path] = {}
    for folder in archive_dirs():
        for path in sorted(folder.iterdir()):
            match = _ARCHIVE.match(path.name)
            if match and match.group(1) not in found:
                found[match.group(1)] = path
    return found


class FileLock:
    """An exclusive file lock (parallel test runs unpack and make models once)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(path, 'a+')

    def __enter__(self) -> 'FileLock':
        fcntl.flock(self._handle, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._handle, fcntl.LOCK_UN)
        self._handle.close()


def _safe_members(archive: tarfile.TarFile, prefix: str) -> List[tarfile.TarInfo]:
    members = []
    for member in archive.getmembers():
        name = member.name
        if name.startswith('/') or '..' in Path(name).parts or not name.startswith(prefix):
            raise RuntimeError(f'unexpected path {name!r} in the Ollama archive')
        # The releases link libraries to their siblings only (libggml.so -> libggml.so.0).
        if (member.issym() or member.islnk()) and '/' in member.linkname:
            raise RuntimeError(f'link {name!r} -> {member.linkname!r} leaves its folder')
        if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
            raise RuntimeError(f'unexpected member {name!r} in the Ollama archive')
        members.append(member)
    return members


def _unpack(version: str, archive: Path) -> OllamaDist:
    root = cache_root() / 'dist'
    target = root / f'ollama-{version}'
    binary = target / 'bin' / 'ollama'
    with FileLock(root / '.lock'):
        if not binary.exists():
            partial = root / f'.ollama-{version}.partial'
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            with tarfile.open(archive) as tar:
                tar.extractall(partial, members=_safe_members(tar, f'ollama-{version}'))
            (partial / f'ollama-{version}').rename(target)
            partial.rmdir()
    return OllamaDist(version=version, binary=binary, root=target)


def _version_of(binary: str) -> Optional[str]:
    try:
        out = subprocess.run([binary, '--version'], capture_output=True, text=True, timeout=10,
                             env={**os.environ, 'OLLAMA_HOST': '127.0.0.1:1'})
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'(\d+\.\d+\.\d+)', out.stdout + out.stderr)
    return match.group(1) if match else None


def available_dists() -> List[OllamaDist]:
    """Every release that can run here: the archives found (unpacked on first use), else PATH's."""
    dists = [_unpack(version, path) for version, path in sorted(_archives().items())]
    if not dists:
        on_path = shutil.which('ollama')
        version = _version_of(on_path) if on_path else None
        if on_path and version:
            dists.append(OllamaDist(version=version, binary=Path(on_path),
                                    root=Path(on_path).resolve().parent.parent))
    return dists


def find_dist(version: Optional[str] = None) -> OllamaDist:
    """Return the release of that version (default: the newest); LookupError when none is."""
    dists = available_dists()
    if version is not None:
        dists = [d for d in dists if d.version == version]
    if not dists:
        where = ', '.join(str(d) for d in archive_dirs()) or '../shared/ollama (missing)'
        raise LookupError(f'no real Ollama {version or ""} found (looked in {where} and PATH)')
    return max(dists, key=lambda d: tuple(int(p) for p in d.version.split('.')))
