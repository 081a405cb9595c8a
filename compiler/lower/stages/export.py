"""``export [M] onnx|torchscript|pt2|checkpoint "path"``."""

from __future__ import annotations

from compiler.lower.base import LowerState
from compiler.ops import ExportParams, OpParams
from compiler.program import Step
from compiler.values import unknown
from compiler.vocab import EXPORT_FORMATS, StageTraits
from recipe_lang import ast
from recipe_lang.diagnostics import error

KIND = "export"
TRAITS = StageTraits(mutates=False, after_int8=True, on_frozen=True)


def lower(st: LowerState, s: ast.ExportStage, step: Step) -> None:
    fmt = s.format.value
    if fmt not in EXPORT_FORMATS:
        st.report(unknown("KDR103", "export format", fmt, s.format.span, EXPORT_FORMATS))
        step.broken = True
    if not s.path.value:
        st.report(error("KDR104", "the export path is empty", s.path.span))
        step.broken = True
    step.params = {"format": fmt, "path": s.path.value}


def expand(step: Step) -> list[tuple[str, OpParams]]:
    return [("export", ExportParams.model_validate(step.params))]
