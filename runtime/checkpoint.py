"""Checkpoints: atomic writes, ``weights_only`` loads, and a checksum against tampering.

A kdr checkpoint is a ``torch.save``'d dict of plain data only (tensors, numbers, strings,
bools, None, lists, tuples, dicts, dtypes), so ``torch.load(weights_only=True)`` reads it
without running any pickled code::

    {"format": "kdr-checkpoint", "version": 1, "plan_hash": ..., "pass_id": ...,
     "model": {"spec": {...}, "history": [{"op": ..., "record": {...}}]},
     "state_dict": {...}, "rng": {...}, "metrics": {...}}

The model's *structure* is rebuilt from ``spec`` and the pass ``history`` (see
``runtime/passes/base.py``), then ``state_dict`` is loaded into it.

**Atomicity.** :func:`save_checkpoint` writes to a temporary file in the same directory,
flushes and fsyncs it, ``os.replace``-s it over the target and fsyncs the directory: a crash
at any point leaves either the old file or the new one, never a mix.

**Integrity.** Next to ``ckpt.pt`` it writes ``ckpt.pt.sha256`` (``sha256sum`` format), also
atomically and after the checkpoint itself. :func:`load_checkpoint` verifies the digest when
the sidecar exists, so a truncated, corrupted or edited file is refused with ``KDR504``. (A
crash between the two renames leaves a new checkpoint beside the old digest: it is refused
too, and a resumed run simply redoes that pass.) Files without a sidecar (state dicts saved
by other tools) load unverified.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from recipe_lang.diagnostics import KdrError, Note, error

FORMAT = "kdr-checkpoint"
VERSION = 1
_PLAIN = (int, float, str, bool, type(None), torch.Tensor, torch.dtype, torch.Size, torch.device)


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, _PLAIN):
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            if not isinstance(k, (str, int)):
                raise _internal(f"checkpoint key {k!r} at `{where}` is not a string or int")
            _check_plain(v, f"{where}.{k}")
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_plain(v, f"{where}[{i}]")
        return
    raise _internal(f"checkpoint value at `{where}` is a {type(value).__name__}")


def _internal(message: str) -> KdrError:
    return KdrError(
        error(
            "KDR999",
            message,
            None,
            Note(kind="help", message="checkpoints hold plain data only; this is a bug in kdr"),
        )
    )


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform lets a directory be opened
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file, fsync, ``os.replace``, fsync dir)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual mode
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def sidecar(path: str | Path) -> Path:
    """The digest file that goes with a checkpoint."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> str:
    """Atomically write ``payload`` (plain data only) and its digest; returns the sha256."""
    payload = {"format": FORMAT, "version": VERSION, **payload}
    _check_plain(payload, "payload")
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    atomic_write_bytes(path, data)
    atomic_write_bytes(sidecar(path), f"{digest}  {Path(path).name}\n".encode())
    return digest


def _refuse(path: Path, why: str, help_text: str) -> KdrError:
    return KdrError(
        error("KDR504", f"cannot load `{path}`: {why}", None, Note(kind="help", message=help_text))
    )


def verify_checkpoint(path: str | Path) -> None:
    """Check a checkpoint ``kdr run`` wrote against its sidecar digest without loading it: a
    missing file, a missing sidecar, or a digest mismatch (truncated, corrupted or edited
    file) is refused with KDR504 naming the file."""
    path = Path(path)
    help_text = "the file was truncated, corrupted or edited; start a fresh run (without --resume)"
    try:
        data = path.read_bytes()
        recorded = sidecar(path).read_text().split()
    except OSError as exc:
        raise _refuse(path, exc.strerror or str(exc), help_text) from exc
    if not recorded or hashlib.sha256(data).hexdigest() != recorded[0]:
        raise _refuse(
            path, f"its contents do not match the sha256 in `{sidecar(path).name}`", help_text
        )


def load_checkpoint(path: str | Path, *, require_kdr: bool = True) -> Any:
    """Load a checkpoint with ``weights_only=True``, verifying its digest if it has one.

    With ``require_kdr`` (the default) anything but a kdr checkpoint is refused; without it,
    whatever plain data the file holds (e.g. a bare state dict) is returned.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _refuse(path, exc.strerror or str(exc), "check the path") from exc
    digest_file = sidecar(path)
    if digest_file.is_file():
        expected = digest_file.read_text().split()[0] if digest_file.read_text().strip() else ""
        if hashlib.sha256(data).hexdigest() != expected:
            raise _refuse(
                path,
                f"its contents do not match the sha256 in `{digest_file.name}`",
                "the file was truncated, corrupted or edited; re-run the pass that wrote it",
            )
    try:
        obj = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:
        raise _refuse(
            path,
            f"not a readable weights-only file ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})",
            "the file may be truncated or corrupt, or hold pickled code (refused for safety)",
        ) from exc
    if require_kdr:
        if not isinstance(obj, Mapping) or obj.get("format") != FORMAT:
            raise _refuse(path, "not a kdr checkpoint", "give a file written by `kdr run`")
        if obj.get("version") != VERSION:
            raise _refuse(
                path,
                f"checkpoint version {obj.get('version')!r} is not {VERSION}",
                "re-run with the kdr version that wrote it",
            )
    return obj
