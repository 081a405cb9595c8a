"""The summary table printed at the end of ``kdr run``: one row per entry, in 80 columns.

It keeps what a decision needs (accuracy, parameters, size on disk and compressed, sparsity,
median latency, wall time) in short formats, one space between columns; ``report.md`` has
every figure (MACs, latency minima and spreads, load average, N:M conformance). A noisy
latency is marked ``*``.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import IO, Any

from runtime.latency import NOISY_SPREAD
from runtime.report import fields as f

#: The printed table is meant to fit a terminal this wide.
WIDTH = 80
OP_WIDTH = 15
MODEL_WIDTH = 8

Cell = Callable[[dict[str, Any]], str]


def _ms(batch: int) -> Cell:
    key = f"latency_ms_b{batch}"
    return lambda e: f.fmt_ms(e.get(key)) + ("*" if f.noisy(e, batch) else "")


def _number(e: dict[str, Any]) -> str:
    n = f.pass_number(e)
    return "-" if n is None else str(n)


#: The table's columns: title, how an entry reads, whether it is right-aligned.
COLUMNS: tuple[tuple[str, Cell, bool], ...] = (
    ("#", _number, True),
    ("op", lambda e: str(e.get("op")), False),
    ("model", lambda e: str(e.get("model")), False),
    ("acc %", lambda e: f.fmt_acc(e.get("accuracy")), True),
    ("params", lambda e: f.fmt_count(e.get("params")), True),
    ("size", lambda e: f.fmt_size(e.get("size_bytes")), True),
    ("zipped", lambda e: f.fmt_size(e.get("compressed_size_bytes")), True),
    ("sp %", lambda e: f.fmt_pct(e.get("sparsity")), True),
    ("ms@1", _ms(1), True),
    ("ms@32", _ms(32), True),
    ("wall", lambda e: f.fmt_wall(e.get("wall_s")), True),
)


def caption(report: dict[str, Any]) -> str:
    stages = report["stages"]
    threads = sorted({e["threads"] for e in stages if e.get("threads") is not None})
    loads = [e["load_avg"] for e in stages if e.get("load_avg") is not None]
    cpus = report.get("machine", {}).get("cpus")
    parts = [f"ms: median, {'/'.join(map(str, threads)) or '?'} thread(s)"]
    if any(f.noisy(e) for e in stages):
        parts.append(f"* noisy (p90 > {1 + NOISY_SPREAD:g}x min)")
    if loads:
        parts.append(f"load {max(loads):.1f}" + (f" on {cpus} CPUs" if cpus else ""))
    return "; ".join(parts)


def build(report: dict[str, Any]) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(
        title=f"kdr run: {report['recipe']}",
        caption=caption(report),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 0),
        collapse_padding=True,
    )
    for title, _, right in COLUMNS:
        limit = {"op": OP_WIDTH, "model": MODEL_WIDTH}.get(title)
        table.add_column(
            title,
            justify="right" if right else "left",
            max_width=limit,
            overflow="ellipsis",
            no_wrap=True,
        )
    for e in report["stages"]:
        table.add_row(*(cell(e) for _, cell, _ in COLUMNS))
    return table


def render(report: dict[str, Any], width: int = WIDTH) -> str:
    """The table as plain text, for a console ``width`` wide."""
    from rich.console import Console

    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(build(report))
    return out.getvalue()


def summary_table(report: dict[str, Any], file: IO[str] | None = None) -> None:
    """Print the table on ``file`` (stderr by default), at most ``WIDTH`` columns wide."""
    import sys

    from rich.console import Console

    stream = file if file is not None else sys.stderr
    console = Console(file=stream)
    if not console.is_terminal or console.width > WIDTH:
        console = Console(file=stream, width=WIDTH)
    console.print(build(report))
