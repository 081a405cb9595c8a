"""``report.md``: every figure of every entry, with the latency method spelled out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime.latency import NOISY_FLOOR_MS, NOISY_SPREAD, NOISY_WAIT
from runtime.report import fields as f
from runtime.weight_stats import COMPRESSED_SIZE_METHOD

Cell = Callable[[dict[str, Any]], str]


def _ms(batch: int, suffix: str = "") -> Cell:
    key = f"latency_ms_b{batch}{suffix}"
    return lambda e: f.fmt_ms(e.get(key)) + ("*" if not suffix and f.noisy(e, batch) else "")


def _pct(value: float | None) -> str:
    return "-" if value is None else f.fmt_pct(value) + "%"


#: The columns of the markdown table: title and how an entry reads.
COLUMNS: tuple[tuple[str, Cell], ...] = (
    ("pass", lambda e: f"`{e.get('pass_id')}`"),
    ("op", lambda e: str(e.get("op"))),
    ("model", lambda e: str(e.get("model"))),
    ("acc %", lambda e: f.fmt_acc(e.get("accuracy"))),
    ("params", lambda e: f.fmt_count(e.get("params"))),
    ("MACs", lambda e: f.fmt_count(e.get("macs"))),
    ("size", lambda e: f.fmt_size(e.get("size_bytes"))),
    ("zipped", lambda e: f.fmt_size(e.get("compressed_size_bytes"))),
    ("sparsity", lambda e: _pct(e.get("sparsity"))),
    ("N:M", f.fmt_nm),
    ("ms@1", _ms(1)),
    ("min@1", _ms(1, "_min")),
    ("spread@1", lambda e: f.fmt_spread(e.get("latency_spread_b1"))),
    ("cpu@1", _ms(1, "_cpu")),
    ("ms@32", _ms(32)),
    ("min@32", _ms(32, "_min")),
    ("spread@32", lambda e: f.fmt_spread(e.get("latency_spread_b32"))),
    ("cpu@32", _ms(32, "_cpu")),
    ("load", lambda e: "-" if e.get("load_avg") is None else f"{e['load_avg']:.2f}"),
    ("wall", lambda e: f.fmt_wall(e.get("wall_s"))),
)


#: How the sparsity columns are measured.
SPARSITY_NOTE = (
    "Sparsity: share of exactly-zero entries in the weights of every convolution and linear "
    "layer, counted on the model after the stage. `zipped`: the size on disk once compressed, "
    f"{COMPRESSED_SIZE_METHOD} (zeros compress: what unstructured sparsity saves). `N:M`: the "
    "pattern of an N:M prune in the model's history and the share of its groups that still "
    "hold it."
)


def latency_note(report: dict[str, Any]) -> str:
    """How the latency was measured, and how busy the machine was meanwhile."""
    stages = report["stages"]
    threads = sorted({e["threads"] for e in stages if e.get("threads") is not None})
    loads = [e["load_avg"] for e in stages if e.get("load_avg") is not None]
    cpus = report.get("machine", {}).get("cpus")
    text = (
        f"Latency: CPU wall time of one forward pass at batch 1 and 32 with "
        f"{'/'.join(map(str, threads)) or '?'} intra-op thread(s), median (`ms`) and minimum "
        f"(`min`) of interleaved rounds after a warm-up; spread = (p90 - min) / min; `cpu`: "
        f"median CPU time of the same calls. `*` marks a noisy figure: spread above "
        f"{100 * NOISY_SPREAD:.0f}% with a tail more than {NOISY_FLOOR_MS} ms above the "
        f"minimum, or a median wall time more than {100 * NOISY_WAIT:.0f}% above the CPU time "
        f"(the process waited for a core)."
    )
    if loads:
        text += f" Load average while measuring: {min(loads):.2f} to {max(loads):.2f}" + (
            f" on {cpus} CPUs." if cpus else "."
        )
    return text


def markdown(report: dict[str, Any]) -> str:
    head = [title for title, _ in COLUMNS]
    lines = [
        f"# kdr run: {report['recipe']}",
        "",
        f"plan `{report['plan_hash'][:12]}`, device `{report['device']}`, "
        f"{f.fmt_wall(report['wall_s'])} in all",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    lines += ["| " + " | ".join(cell(e) for _, cell in COLUMNS) + " |" for e in report["stages"]]
    lines += ["", latency_note(report), "", SPARSITY_NOTE, ""]
    notes = [(e, n) for e in report["stages"] for n in e.get("notes") or []]
    if notes:
        lines += ["Notes:", ""]
        lines += [f"- `{e.get('pass_id')}` {e.get('model')}: {n}" for e, n in notes]
        lines.append("")
    lines += ["![accuracy against size and latency, sparsity per stage](report.png)", ""]
    return "\n".join(lines)
