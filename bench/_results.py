"""What every benchmark shares: where its results go, and how a failed command stops it.

- ``results_path(name, quick, out)`` is the only place that names a result file: a ``--quick``
  run writes ``NAME_quick.json`` (``.md``, ...), never over the full run's ``NAME.json``.
  ``write_results`` writes through it. ``tests/test_doc_figures.py`` checks that no bench
  script spells the results directory or writes a file by another route.
- ``run_checked`` runs a command and raises ``BenchFailure`` when it fails, so that a bench
  never times (or reports) a command that did not do its job; ``timed_run`` is the same with a
  wall-clock time. ``check_exit`` does it for in-process entry points (``kdr.cli.main``).
  ``BenchFailure`` is a ``SystemExit``: uncaught, the bench exits with status 1 and the message.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
QUICK_SUFFIX = "_quick"


class BenchFailure(SystemExit):
    """A benchmark step failed: the run stops with exit status 1 and says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def results_path(
    name: str, quick: bool, out: str | Path | None = None, suffix: str = ".json"
) -> Path:
    """``OUT/NAME.json``, or ``OUT/NAME_quick.json`` for a ``--quick`` run (default OUT:
    ``bench/results/``).

    >>> results_path("quant", True, "/tmp/r").name
    'quant_quick.json'
    """
    directory = Path(out) if out is not None else RESULTS_DIR
    return directory / f"{name}{QUICK_SUFFIX if quick else ''}{suffix}"


def add_out_option(parser: argparse.ArgumentParser) -> None:
    """The ``--out DIR`` option every bench takes (default: ``bench/results/``)."""
    parser.add_argument(
        "--out", default=None, help="directory for the result files (default: bench/results/)"
    )


def write_results(
    name: str,
    quick: bool,
    data: Any,
    out: str | Path | None = None,
    suffix: str = ".json",
) -> Path:
    """Write ``data`` (JSON unless it is already text) to ``results_path(...)``; returns it."""
    path = results_path(name, quick, out, suffix)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = data if isinstance(data, str) else json.dumps(data, indent=2) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def _tail(text: str | bytes | None, lines: int = 30) -> str:
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return "\n".join(text.rstrip().splitlines()[-lines:])


def run_checked(cmd: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(cmd, ...)`` that raises ``BenchFailure`` unless the command exits 0.

    Output is captured (and quoted in the failure) unless the caller passes its own
    ``stdout``/``stderr``.
    """
    if "stdout" not in kwargs and "stderr" not in kwargs:
        kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs["check"] = False
    try:
        done = subprocess.run(list(cmd), **kwargs)
    except OSError as exc:
        raise BenchFailure(f"{' '.join(cmd)} could not start: {exc}") from exc
    if done.returncode != 0:
        raise BenchFailure(
            f"{' '.join(cmd)} failed with exit status {done.returncode}:\n"
            f"{_tail(done.stderr) or _tail(done.stdout)}"
        )
    return done


def timed_run(cmd: Sequence[str], **kwargs: Any) -> float:
    """Wall seconds of ``run_checked(cmd, ...)``: a failing command raises, it is not timed."""
    start = time.perf_counter()
    run_checked(cmd, **kwargs)
    return time.perf_counter() - start


def check_exit(code: int | None, what: str, output: str = "") -> None:
    """Raise ``BenchFailure`` unless an in-process entry point returned 0 (or None)."""
    if code not in (0, None):
        raise BenchFailure(f"{what} failed with exit status {code}:\n{_tail(output)}")
