"""The local destination, vidmill's own output storage: publish files under ``files_root/<unguessable id>/``.

A publish is all-or-nothing: the files are renamed into a hidden staging directory and that directory is
renamed to its final ``<id>`` name in one step, so a reader (or a retried job) never sees half a set.
Renames only: the work dir and ``files_root`` must be on the same filesystem (both live in DATA_DIR).
``safe_join`` is what the file-serving route uses to turn a request path into a file under the root.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from vidmill.destinations.location import check_path
from vidmill.errors import StorageError

ID_BYTES = 24  # secrets.token_urlsafe(24): 32 characters, 192 bits
STAGING_PREFIX = ".staging-"


@dataclass(frozen=True)
class Published:
    """One published file: ``relative_path`` is ``<id>/<basename>`` (the URL path under /files), ``path`` absolute."""

    relative_path: str
    size: int
    path: Path


def publish(files: list[Path], *, files_root: Path, names: list[str] | None = None) -> list[Published]:
    """Move ``files`` (regular files, distinct names) to ``files_root/<new id>/<name>``.

    ``names`` are relative paths (``720p/seg_001.ts``) checked like destination keys; by default each
    file's base name. Raises ``StorageError`` without moving anything permanently if a file is missing, not
    a regular file, a duplicate name, or on another filesystem; on failure, files already moved are put back.
    """
    sources = [Path(f) for f in files]
    if not sources:
        raise StorageError("nothing to publish")
    names = [check_path(n) for n in names] if names is not None else [p.name for p in sources]
    if len(names) != len(sources):
        raise StorageError("one name per file is needed")
    if len(set(names)) != len(names):
        raise StorageError("cannot publish two files with the same name")
    sizes = [_regular_size(p) for p in sources]

    files_root = Path(files_root)
    try:
        files_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the files directory ({exc.strerror or exc})") from exc
    file_id = secrets.token_urlsafe(ID_BYTES)
    staging = files_root / f"{STAGING_PREFIX}{file_id}"
    final = files_root / file_id
    moved: list[tuple[Path, Path]] = []
    try:
        staging.mkdir()
        for src, name in zip(sources, names):
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.rename(src, target)
            moved.append((target, src))
        os.rename(staging, final)
    except OSError as exc:
        _roll_back(moved, staging)
        raise StorageError(f"cannot publish outputs ({exc.strerror or exc})") from exc
    return [
        Published(relative_path=f"{file_id}/{name}", size=size, path=final / name) for name, size in zip(names, sizes)
    ]


def safe_join(root: Path, relative: str) -> Path:
    """``root / relative``, refusing anything that could leave ``root`` (raises ``StorageError``).

    Refused: NUL bytes, backslashes, absolute paths, ``..`` components, empty paths, and any path whose
    resolved form (symlinks followed) is not strictly inside the resolved root.
    """
    if "\x00" in relative:
        raise StorageError("path refused: NUL byte")
    if "\\" in relative:
        raise StorageError("path refused: backslash")
    if relative.startswith("/") or os.path.isabs(relative):
        raise StorageError("path refused: absolute path")
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if not parts:
        raise StorageError("path refused: empty path")
    if ".." in parts:
        raise StorageError("path refused: '..' component")
    base = Path(root).resolve()
    candidate = base.joinpath(*parts)
    try:
        resolved = candidate.resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # symlink loops
        raise StorageError(f"path refused: cannot resolve ({exc})") from exc
    if resolved == base or not resolved.is_relative_to(base):
        raise StorageError("path refused: outside the files root")
    return resolved


def _regular_size(path: Path) -> int:
    try:
        info = os.lstat(path)
    except OSError as exc:
        raise StorageError(f"cannot publish {path.name}: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(info.st_mode):
        raise StorageError(f"cannot publish {path.name}: not a regular file")
    return info.st_size


def _roll_back(moved: list[tuple[Path, Path]], staging: Path) -> None:
    for target, src in reversed(moved):
        try:
            os.rename(target, src)
        except OSError:
            pass  # best effort; the staging dir is hidden and never served
    shutil.rmtree(staging, ignore_errors=True)  # what is left: empty subfolders
