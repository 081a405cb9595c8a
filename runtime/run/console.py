"""What ``kdr run`` tells the user while it works: one line as each pass starts and finishes,
the passes a resumed run skips. Plain text on stderr (no ANSI codes), rank 0 only, and
nothing under ``--quiet``.

>>> result_line({"accuracy": 0.9834, "params": 12345, "size_bytes": 51200,
...              "latency_ms_b1": 0.412, "wall_s": 3.2})
'acc 98.34%  12.3K params  51.2 KB  0.41 ms@1  3.2 s'
>>> resume_line(["000-train-teacher", "001-snapshot-teacher", "002-distill-student"], 5)
'resuming: 3 passes done (000-train-teacher ... 002-distill-student), 2 to go'
"""

from __future__ import annotations

import sys
from typing import Any

from runtime import distributed
from runtime.run.options import RunOptions


def say(options: RunOptions, text: str) -> None:
    if not options.quiet and distributed.is_main():
        print(text, file=sys.stderr, flush=True)


def _count(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return str(int(value))


def _bytes(value: float) -> str:
    for unit, size in (("MB", 1e6), ("KB", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{int(value)} B"


def result_line(entry: dict[str, Any]) -> str:
    """The figures of a finished pass's report entry, in one short line."""
    parts = []
    if entry.get("accuracy") is not None:
        parts.append(f"acc {100 * entry['accuracy']:.2f}%")
    if entry.get("params") is not None:
        parts.append(f"{_count(entry['params'])} params")
    if entry.get("size_bytes") is not None:
        parts.append(_bytes(entry["size_bytes"]))
    if entry.get("latency_ms_b1") is not None:
        parts.append(f"{entry['latency_ms_b1']:.2f} ms@1")
    parts.append(f"{entry.get('wall_s', 0.0):.1f} s")
    return "  ".join(parts)


def resume_line(finished: list[str], total: int) -> str:
    """What a resumed run skips, in one line."""
    done = len(finished)
    names = finished[0] if done == 1 else f"{finished[0]} ... {finished[-1]}"
    return f"resuming: {done} pass{'es' * (done != 1)} done ({names}), {total - done} to go"
