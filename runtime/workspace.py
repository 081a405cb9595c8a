"""The run directory: plan, per-pass checkpoints, a manifest, and a lock.

Layout of ``runs/<recipe>/``::

    plan.json                 the plan this run executes (its hash guards --resume)
    state.json                the manifest: finished passes, each model's latest checkpoint,
                              report entries so far (rewritten atomically after each pass)
    checkpoints/NNN-op-M.pt   one checkpoint per finished pass (+ .sha256 sidecar)
    report.json, report.md, report.png
    .lock                     held (flock) while a run is active; removed when it ends

A rerun over finished passes needs ``--resume`` (continue) or ``--fresh`` (start over): the
fresh run first moves the old directory aside to ``<run dir>.old-<YYYYmmdd-HHMMSS>``, beside it,
and never deletes it. A lock file left by a killed run is stale: its flock died with its holder.

A pass counts as finished only once its checkpoint *and then* the manifest naming it are on
disk, both written atomically; a run killed at any moment leaves a manifest that names only
complete, verified checkpoints, so ``--resume`` never trusts a half-written file.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from recipe_lang.diagnostics import KdrError, Note, error
from runtime.checkpoint import atomic_write_bytes

STATE_VERSION = 1
#: The reports a finished run writes in its run directory (by runtime/report.py).
REPORT_FILES = ("report.json", "report.md", "report.png")


@dataclass
class RunState:
    plan_hash: str
    finished: list[str] = field(default_factory=list)
    #: model name -> checkpoint file (relative to the run directory) holding its latest version
    latest: dict[str, str] = field(default_factory=dict)
    #: model name -> where it came from before any checkpoint ("spec")
    stages: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        return (
            json.dumps(
                {
                    "version": STATE_VERSION,
                    "plan_hash": self.plan_hash,
                    "finished": self.finished,
                    "latest": self.latest,
                    "stages": self.stages,
                },
                indent=2,
            )
            + "\n"
        )


def _fs_error(message: str, exc: OSError, help_text: str) -> KdrError:
    return KdrError(
        error(
            "KDR504",
            f"{message}: {exc.strerror or exc}",
            None,
            Note(kind="help", message=help_text),
        )
    )


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock: IO[str] | None = None

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def create(self) -> None:
        try:
            self.checkpoints.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-probe"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise _fs_error(
                f"cannot write to run directory `{self.path}`",
                exc,
                "choose another --run-dir or free some space",
            ) from exc

    @property
    def lock_path(self) -> Path:
        return self.path / ".lock"

    def lock(self) -> None:
        """Refuse a second run on the same directory while this one is active.

        A lock file whose holder is gone is stale: the kernel released its flock with the
        holder, so it is simply taken over. The file is removed on :meth:`unlock`; a run that
        opened it just before it was removed holds a lock on a file no longer at that path, so
        the lock is taken again on the path's current file.
        """
        for _ in range(10):
            handle = self._open_lock()
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                handle.close()
                raise KdrError(
                    error(
                        "KDR504",
                        f"run directory `{self.path}` is in use by another kdr run",
                        None,
                        Note(
                            kind="help", message="wait for it to finish, or pass another --run-dir"
                        ),
                    )
                ) from exc
            if self._is_current(handle):
                break
            handle.close()  # removed by its previous holder meanwhile: lock the new one
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock = handle

    def _open_lock(self) -> IO[str]:
        try:
            return open(self.lock_path, "a+")  # held for the whole run
        except OSError as exc:
            raise _fs_error(
                f"cannot create a lock in `{self.path}`", exc, "choose another --run-dir"
            ) from exc

    def _is_current(self, handle: IO[str]) -> bool:
        try:
            on_disk, held = os.stat(self.lock_path), os.fstat(handle.fileno())
        except OSError:
            return False
        return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)

    def unlock(self) -> None:
        """Release the lock and remove its file (while still holding it, so that no other
        run is left holding a lock on a removed file unknowingly: see :meth:`lock`)."""
        if self._lock is not None:
            if self._is_current(self._lock):
                self.lock_path.unlink(missing_ok=True)
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def move_aside(self) -> Path:
        """Move this (locked) run directory to ``<name>.old-<timestamp>`` beside it, release
        its lock, and return where it went. Nothing is deleted."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.old-{stamp}")
        n = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.old-{stamp}-{n}")
            n += 1
        try:
            os.rename(self.path, target)
        except OSError as exc:
            raise _fs_error(
                f"cannot move the previous run `{self.path}` aside to `{target}`",
                exc,
                "move or remove it yourself, or pass another --run-dir",
            ) from exc
        if self._lock is not None:
            (target / ".lock").unlink(missing_ok=True)
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None
        return target

    def write_text(self, name: str, text: str) -> Path:
        target = self.path / name
        try:
            atomic_write_bytes(target, text.encode())
        except OSError as exc:
            raise _fs_error(
                f"cannot write `{target}`",
                exc,
                "free some space and rerun with --resume; finished passes are kept",
            ) from exc
        return target

    def read_state(self) -> RunState | None:
        path = self.path / "state.json"
        if not path.exists():
            return None
        try:
            raw = json.loads(path.read_text())
            return RunState(
                plan_hash=raw["plan_hash"],
                finished=list(raw["finished"]),
                latest=dict(raw["latest"]),
                stages=list(raw["stages"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KdrError(
                error(
                    "KDR504",
                    f"the run manifest `{path}` is unreadable",
                    None,
                    Note(message=str(exc)),
                    Note(
                        kind="help",
                        message="start a fresh run without --resume or with another --run-dir",
                    ),
                )
            ) from exc

    def write_state(self, state: RunState) -> None:
        self.write_text("state.json", state.to_json())

    def checkpoint_path(self, pass_id: str) -> Path:
        return self.checkpoints / f"{pass_id}.pt"

    def partial_path(self, pass_id: str) -> Path:
        """A checkpoint taken inside a pass (a gradual prune's last cut), gone when it ends."""
        return self.checkpoints / f"{pass_id}.partial.pt"

    def is_run_dir(self) -> bool:
        return (self.path / "plan.json").exists() or (self.path / "state.json").exists()

    def check_usable(self) -> None:
        """Refuse a non-empty directory that is not a kdr run directory: a fresh run clears
        its run directory, and that must never touch a folder kdr did not create."""
        if (
            self.path.is_dir()
            and not self.is_run_dir()
            and any(f for f in self.path.iterdir() if not self._own_leftover(f))
        ):
            raise KdrError(
                error(
                    "KDR504",
                    f"`{self.path}` is not empty and holds no kdr run",
                    None,
                    Note(kind="help", message="pass an empty or new --run-dir"),
                )
            )

    def _own_leftover(self, f: Path) -> bool:
        """What a run killed before writing ``plan.json`` leaves: the lock, the write probe
        and an empty checkpoints folder (or the lock another run holds right now)."""
        if f.name in (".lock", ".write-probe"):
            return True
        return f == self.checkpoints and f.is_dir() and not any(f.iterdir())

    def clear(self) -> None:
        """Forget a previous run in this directory (a fresh run without --resume): only the
        files kdr writes are removed."""
        for name in ("state.json", *REPORT_FILES):
            (self.path / name).unlink(missing_ok=True)
        if self.checkpoints.exists():
            for f in self.checkpoints.iterdir():
                if f.is_file() and f.suffix in (".pt", ".sha256", ".tmp"):
                    f.unlink()
