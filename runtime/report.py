"""Reports of a run: ``report.json`` (stable fields), ``report.md``, ``report.png`` and the
summary table printed at the end of ``kdr run``.

The plot uses matplotlib (Agg backend, no display needed): accuracy against serialized size and
against batch-1 CPU latency, one marker per stage, one line per model, so what each stage
bought or cost is visible at a glance.
"""

from __future__ import annotations

import json
from typing import Any

from compiler.plan import Plan
from runtime.workspace import RunDir

COLUMNS = (
    ("pass_id", "pass"),
    ("op", "op"),
    ("model", "model"),
    ("accuracy", "acc"),
    ("params", "params"),
    ("macs", "MACs"),
    ("size_bytes", "size"),
    ("latency_ms_b1", "ms@1"),
    ("latency_ms_b32", "ms@32"),
    ("wall_s", "wall s"),
)


def _fmt(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key == "accuracy":
        return f"{100 * value:.2f}%"
    if key in ("params", "macs"):
        for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
            if value >= size:
                return f"{value / size:.2f}{unit}"
        return str(value)
    if key == "size_bytes":
        for unit, size in (("MB", 1e6), ("KB", 1e3)):
            if value >= size:
                return f"{value / size:.2f} {unit}"
        return f"{value} B"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def rows(stages: list[dict[str, Any]]) -> list[list[str]]:
    return [[_fmt(k, s.get(k)) for k, _ in COLUMNS] for s in stages]


def markdown(report: dict[str, Any]) -> str:
    head = [title for _, title in COLUMNS]
    lines = [
        f"# kdr run: {report['recipe']}",
        "",
        f"plan `{report['plan_hash'][:12]}`, device `{report['device']}`, "
        f"{report['wall_s']:.1f} s in all",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows(report["stages"])]
    lines += ["", "![accuracy against size and latency](report.png)", ""]
    return "\n".join(lines)


def plot(report: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    by_model: dict[str, list[dict[str, Any]]] = {}
    for s in report["stages"]:
        if s.get("accuracy") is not None:
            by_model.setdefault(s["model"], []).append(s)
    for ax, key, label in (
        (axes[0], "size_bytes", "serialized size (KB)"),
        (axes[1], "latency_ms_b1", "CPU latency, batch 1 (ms)"),
    ):
        for model, stages in by_model.items():
            xs = [(s[key] or 0) / (1000 if key == "size_bytes" else 1) for s in stages]
            ys = [100 * s["accuracy"] for s in stages]
            ax.plot(xs, ys, marker="o", label=model)
            for x, y, s in zip(xs, ys, stages, strict=True):
                ax.annotate(s["op"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("top-1 accuracy (%)")
        ax.grid(True, alpha=0.3)
    axes[0].legend()
    fig.suptitle(f"kdr: {report['recipe']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(
    rundir: RunDir, plan: Plan, stages: list[dict[str, Any]], device: str, wall_s: float
) -> dict[str, Any]:
    final: dict[str, dict[str, Any]] = {}
    for s in stages:
        final[s["model"]] = s
    report = {
        "recipe": plan.recipe,
        "plan_hash": plan.hash,
        "device": device,
        "wall_s": round(wall_s, 3),
        "stages": stages,
        "final": final,
    }
    rundir.write_text("report.json", json.dumps(report, indent=2) + "\n")
    rundir.write_text("report.md", markdown(report))
    plot(report, str(rundir.path / "report.png"))
    return report


def summary_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"kdr run: {report['recipe']}")
    for key, title in COLUMNS:
        table.add_column(
            title, justify="right" if key not in ("pass_id", "op", "model") else "left"
        )
    for r in rows(report["stages"]):
        table.add_row(*r)
    console = Console(stderr=True)
    if not console.is_terminal:
        console = Console(stderr=True, width=160)
    console.print(table)
