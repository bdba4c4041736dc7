"""File digests: sha256 of a file (streamed), and the cheap identity of an artifact used to verify it before reuse."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

#: files larger than this are identified by size + mtime instead of a full hash (datasets)
LARGE_FILE_BYTES = 64 * 2**20

#: the file inside a directory artifact whose hash stands for the directory (an HLS project's manifest.json
#: lists the sha256 of every file it wrote)
DIR_MANIFEST = "manifest.json"


def sha256_file(path: str | os.PathLike, chunk: int = 2**20) -> str:
    """Hex sha256 of the file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def artifact_digest(path: str | os.PathLike) -> dict | None:
    """How to recognise ``path`` later, cheaply; None when it does not exist.

    file <= 64 MiB:  {"size", "sha256"}
    larger file:     {"size", "mtime_ns"}
    directory:       {"dir": True, "manifest_sha256"} (sha256 of its manifest.json, None without one)
    """
    p = Path(path)
    if p.is_dir():
        m = p / DIR_MANIFEST
        return {"dir": True, "manifest_sha256": sha256_file(m) if m.is_file() else None}
    if not p.is_file():
        return None
    st = p.stat()
    if st.st_size > LARGE_FILE_BYTES:
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    return {"size": st.st_size, "sha256": sha256_file(p)}


def verify_artifact(path: str | os.PathLike, recorded: dict | None) -> str | None:
    """None when ``path`` still matches the ``recorded`` digest, else a one-line reason (for the log)."""
    p = Path(path)
    if recorded is None:
        return f"{p}: no digest recorded"
    if not p.exists():
        return f"{p}: missing"
    now = artifact_digest(p)
    if recorded.get("dir"):
        if now is None or not now.get("dir"):
            return f"{p}: no longer a directory"
        if now["manifest_sha256"] != recorded.get("manifest_sha256"):
            return f"{p}: {DIR_MANIFEST} changed or missing"
        return None
    if now is None or now.get("dir"):
        return f"{p}: not a file any more"
    if now["size"] != recorded.get("size"):
        return f"{p}: size {now['size']} bytes, recorded {recorded.get('size')} (truncated or rewritten)"
    for key in ("sha256", "mtime_ns"):
        if key in recorded and now.get(key) != recorded[key]:
            return f"{p}: {key} differs from the recorded one (modified since the step wrote it)"
    if not any(k in recorded for k in ("sha256", "mtime_ns")):
        return f"{p}: recorded digest has no hash"
    return None
