"""Safe artifact I/O: atomic writes, checksummed checkpoints, weights-only loading.

A file is written under a temporary name in the same folder and renamed into place,
so a crash or a full disk never leaves a half-written file that looks complete.
Checkpoints carry a SHA-256 sidecar; a truncated or corrupted one is detected and
never used. Loading always uses ``torch.load(weights_only=True)``.

torch is imported only by the functions that save or load torch objects, so code that
writes text (tables, claims) imports this module without paying for torch.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp makes 0600; results should read like any file
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def torch_bytes(obj) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def save_torch(obj, path: str | Path) -> str:
    """Atomically save `obj`; write `<path>.sha256` beside it; return the digest."""
    data = torch_bytes(obj)
    digest = hashlib.sha256(data).hexdigest()
    atomic_write_bytes(path, data)
    atomic_write_text(f"{path}.sha256", digest + "\n")
    return digest


class CorruptArtifact(RuntimeError):
    """A checkpoint or snapshot whose bytes do not match its checksum or fail to load."""


def _check_digest(path: Path, data: bytes) -> None:
    sidecar = Path(f"{path}.sha256")
    if not sidecar.exists():
        raise CorruptArtifact(f"{path}: checksum file {sidecar.name} is missing")
    if hashlib.sha256(data).hexdigest() != sidecar.read_text().strip():
        raise CorruptArtifact(f"{path}: checksum mismatch (truncated or corrupted file)")


def verify_checksum(path: str | Path) -> None:
    """Raise CorruptArtifact unless `path` exists and matches its SHA-256 sidecar."""
    path = Path(path)
    if not path.exists():
        raise CorruptArtifact(f"{path}: file is missing")
    _check_digest(path, path.read_bytes())


def load_torch(path: str | Path, map_location="cpu", verify: bool = True):
    """Load with weights_only=True; with `verify`, check the SHA-256 sidecar first."""
    import torch

    path = Path(path)
    data = path.read_bytes()
    if verify:
        _check_digest(path, data)
    try:
        return torch.load(io.BytesIO(data), map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means corrupt
        raise CorruptArtifact(f"{path}: cannot be loaded ({exc})") from exc
