"""How the report's figures read: short formats shared by ``report.md``, the final table and
the plot, and the stage entries the plot keeps.

>>> fmt_count(11_175_370), fmt_size(384_871), fmt_ms(0.37812), fmt_wall(245.2)
('11.2M', '385 KB', '0.378', '4m05s')
"""

from __future__ import annotations

from typing import Any

from compiler.ops import OPS
from runtime.latency import is_noisy


def fmt_acc(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _three_digits(value: float) -> str:
    """Three significant digits, never in scientific notation."""
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def fmt_count(value: int | None) -> str:
    if value is None:
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if value >= size:
            return _three_digits(value / size) + unit
    return str(value)


def fmt_size(value: int | None) -> str:
    if value is None:
        return "-"
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if value >= size:
            return f"{_three_digits(value / size)} {unit}"
    return f"{value} B"


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 1 else _three_digits(value)


def fmt_wall(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def fmt_spread(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def fmt_pct(value: float | None) -> str:
    """A share as a percentage with one decimal: ``0.5`` -> ``50.0``."""
    return "-" if value is None else f"{100 * value:.1f}"


def fmt_nm(entry: dict[str, Any]) -> str:
    """An N:M pattern and how much of it holds (``2:4 100%``), or ``-``."""
    pattern, held = entry.get("nm_pattern"), entry.get("nm_conformance")
    if not pattern:
        return "-"
    return f"{pattern} {fmt_spread(held)}" if held is not None else str(pattern)


def pass_number(entry: dict[str, Any]) -> int | None:
    """The pass's 1-based position in the plan (as ``kdr run`` counts ``[i/N]``); None for
    an input model's entry."""
    head = str(entry.get("pass_id", "")).split("-", 1)[0]
    return int(head) + 1 if head.isdigit() else None


def noisy(entry: dict[str, Any], batch: int | None = None) -> bool:
    """The entry's ``noisy`` flag, or whether the figure at ``batch`` is the noisy one."""
    if batch is None or not entry.get("noisy"):
        return bool(entry.get("noisy"))
    low, p90 = entry.get(f"latency_ms_b{batch}_min"), p90_ms(entry, batch)
    median, cpu = entry.get(f"latency_ms_b{batch}"), entry.get(f"latency_ms_b{batch}_cpu")
    if low is None or p90 is None or median is None:
        return True
    return is_noisy(float(low), p90, float(median), float(cpu or 0.0))


def p90_ms(entry: dict[str, Any], batch: int = 1) -> float | None:
    """The slow tail of a latency figure, from its minimum and spread."""
    low, spread = entry.get(f"latency_ms_b{batch}_min"), entry.get(f"latency_spread_b{batch}")
    if low is None or spread is None:
        return None
    return float(low) * (1 + float(spread))


def _family(op: str) -> str:
    return op.split(".", 1)[0]


def stage_label(passes: list[dict[str, Any]]) -> str:
    """A stage's short name from its passes: the family of its last graph pass (``prune`` for
    ``prune.channels`` then its recovery ``distill``, ``quant`` for ``fuse.bn`` ...
    ``quant.convert``), else its first pass's op; prefixed with its pass numbers."""
    ops = [str(p["op"]) for p in passes]
    graph = [op for op in ops if op in OPS and OPS[op].graph]
    name = _family(graph[-1]) if graph else ops[0]
    numbers = [n for n in (pass_number(p) for p in passes) if n is not None]
    if not numbers:
        return name
    span = str(numbers[0]) if len(numbers) == 1 else f"{numbers[0]}-{numbers[-1]}"
    return f"{span} {name}"


def trained_points(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries worth a point on the plot: each stage's last entry (its result), except
    read-only stages (a snapshot or an export has its subject's figures), each with a
    ``label``. A report without stage numbers gets one point per pass that changed a model."""
    groups: dict[Any, list[dict[str, Any]]] = {}
    for e in report["stages"]:
        if e.get("op") == "input":
            continue
        key = e.get("stage", e.get("pass_id"))
        groups.setdefault(key, []).append(e)
    points = []
    for passes in groups.values():
        last = passes[-1]
        if all(p["op"] in OPS and OPS[p["op"]].read_only for p in passes):
            continue
        if last.get("accuracy") is None:
            continue
        points.append({**last, "label": stage_label(passes)})
    return points


def training_passes(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of training passes that recorded their curves (``train.lr_curve`` or
    ``train.loss_curve``), in plan order, each with a ``label`` (``2 distill``)."""
    out = []
    for e in report["stages"]:
        train = e.get("train")
        if not isinstance(train, dict) or not (train.get("lr_curve") or train.get("loss_curve")):
            continue
        number = pass_number(e)
        out.append({**e, "label": f"{number} {e['op']}" if number is not None else str(e["op"])})
    return out
