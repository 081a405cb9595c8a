"""The interface through which ``kdr check --models`` calls the runtime's model-aware checks.

The compiler never imports torch; it calls :func:`run_model_checks`, which imports the
runtime's implementation (``runtime.model_checks.check_plan``) lazily. The runtime builds the
models (on the meta device where possible), traces them, and dry-runs the plan's graph passes,
returning KDR500-KDR504 diagnostics and per-pass estimates of params and MACs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from compiler.plan import Plan
from recipe_lang.diagnostics import Diagnostic, Note, error


@dataclass
class Estimate:
    pass_id: str
    op: str
    model: str
    params: int | None
    macs: int | None


@dataclass
class ModelCheckReport:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    estimates: list[Estimate] = field(default_factory=list)

    def table(self) -> str:
        rows = [("pass", "op", "model", "params", "MACs")]
        for e in self.estimates:
            rows.append((e.pass_id, e.op, e.model, _n(e.params), _n(e.macs)))
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        return "\n".join(
            "  ".join(r[i].rjust(widths[i]) if i >= 3 else r[i].ljust(widths[i]) for i in range(5))
            for r in rows
        )


def _n(x: int | None) -> str:
    if x is None:
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if x >= size:
            return f"{x / size:.2f}{unit}"
    return str(x)


class ModelChecker(Protocol):
    def __call__(self, plan: Plan) -> ModelCheckReport: ...


def run_model_checks(plan: Plan) -> ModelCheckReport:
    """Run the runtime's model-aware checks on ``plan`` (imports torch)."""
    try:
        from runtime.model_checks import check_plan
    except ImportError as exc:
        return ModelCheckReport(
            diagnostics=[
                error(
                    "KDR999",
                    "model-aware checks are unavailable: the runtime cannot be imported",
                    None,
                    Note(message=str(exc)),
                )
            ]
        )
    return check_plan(plan)
