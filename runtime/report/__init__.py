"""Reports of a run: ``report.json`` (stable fields), ``report.md`` (every figure),
``report.png`` (accuracy against size and latency) and the summary table printed at the end of
``kdr run`` (80 columns).

``report.json`` holds the run's identity (``recipe``, ``plan_hash``, ``device``, ``wall_s``),
the ``machine`` it was measured on (``cpus``), the ``teachers`` of the plan, ``stages`` (one
entry per input model and per pass, in execution order, with the pass's ``stage`` number) and
``final`` (each model's last entry). A graph pass's entry holds its ``info`` (a channel prune's
``asked_fraction``, ``removed_fraction``, ``blocked`` and ``kept_whole``), and its ``notes`` say
in words which blocks it kept whole and whether a prune fell short (:func:`prune_notes`).
"""

from __future__ import annotations

import json
import os
from typing import Any

from compiler.plan import Plan
from runtime.passes.channels.shortfall import kept_whole_message, shortfall_message
from runtime.report.md import markdown
from runtime.report.plot import plot
from runtime.report.table import summary_table
from runtime.workspace import RunDir

__all__ = ["build_report", "markdown", "plot", "prune_notes", "summary_table", "write_reports"]


def build_report(
    plan: Plan, stages: list[dict[str, Any]], device: str, wall_s: float
) -> dict[str, Any]:
    """The report's dict: ``stages`` annotated with the plan's stage numbers."""
    stage_of = {p.id: p.stage for p in plan.passes}
    annotated = [
        {**s, "stage": stage_of[s["pass_id"]]} if s.get("pass_id") in stage_of else dict(s)
        for s in stages
    ]
    for s in annotated:
        notes = prune_notes(s.get("info") or {})
        if notes:
            s["notes"] = [*(s.get("notes") or []), *notes]
    final: dict[str, dict[str, Any]] = {}
    for s in annotated:
        final[s["model"]] = s
    teachers = sorted({m for p in plan.passes for m in p.reads})
    return {
        "recipe": plan.recipe,
        "plan_hash": plan.hash,
        "device": device,
        "wall_s": round(wall_s, 3),
        "machine": {"cpus": os.cpu_count()},
        "teachers": teachers,
        "stages": annotated,
        "final": final,
    }


def prune_notes(info: dict[str, Any]) -> list[str]:
    """A graph pass's notes for the report: the blocks it kept whole, and a prune's shortfall
    (the same words as ``kdr check --models``' KDR508 and KDR506)."""
    notes = [kept_whole_message(e) for e in info.get("kept_whole", [])]
    short = shortfall_message(info)
    return notes + ([f"the prune falls short (KDR506): {short}"] if short else [])


def write_reports(
    rundir: RunDir, plan: Plan, stages: list[dict[str, Any]], device: str, wall_s: float
) -> dict[str, Any]:
    """Write ``report.json``, ``report.md`` and ``report.png`` in the run directory."""
    report = build_report(plan, stages, device, wall_s)
    rundir.write_text("report.json", json.dumps(report, indent=2) + "\n")
    rundir.write_text("report.md", markdown(report))
    plot(report, str(rundir.path / "report.png"))
    return report
