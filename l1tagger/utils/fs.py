"""Guarded removal: the only way the pipeline deletes a directory or file it wrote.

``remove_inside(path, root)`` removes ``path`` only when it lies strictly inside ``root`` (both resolved, so ``..``
and symlinks cannot lead outside) and is not itself a symlink; anything else raises :class:`UnsafeRemovalError`
and removes nothing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from l1tagger.errors import L1TaggerError


class UnsafeRemovalError(L1TaggerError):
    """A removal that would reach outside the folder it is confined to (names both paths)."""


def is_strictly_inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """True when the resolved ``path`` is below the resolved ``root`` (not equal to it)."""
    p, r = Path(path).resolve(), Path(root).resolve()
    return p != r and r in p.parents


def remove_inside(path: str | os.PathLike, root: str | os.PathLike) -> bool:
    """Remove the directory tree or file ``path`` if it exists; it must lie strictly inside ``root``.

    Returns True when something was removed.
    """
    path = Path(path)
    if path.is_symlink():
        raise UnsafeRemovalError(f"refusing to remove {path}: it is a symlink (to {os.readlink(path)})")
    if not is_strictly_inside(path, root):
        raise UnsafeRemovalError(f"refusing to remove {path}: it is not strictly inside {root} "
                                 f"(resolved {Path(path).resolve()} vs {Path(root).resolve()})")
    if not path.exists():
        return False
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()
    return True
