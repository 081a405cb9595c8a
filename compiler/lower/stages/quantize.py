"""``quantize [M] int8 [static|dynamic|qat] [per_channel|per_tensor] [calibrate N batches]
[with MODS for N epochs]``: fuse, prepare, calibrate or train, convert."""

from __future__ import annotations

from typing import Any

from compiler.lower import clauses
from compiler.lower.base import LowerState
from compiler.lower.training_ops import training_pass
from compiler.ops import CalibrateParams, FuseParams, OpParams, QuantParams
from compiler.program import Step
from compiler.values import unknown
from compiler.vocab import DEFAULT_CALIBRATION_BATCHES, QUANT_PRECISIONS, QUANT_WORDS, StageTraits
from recipe_lang import ast
from recipe_lang.diagnostics import Note, error

KIND = "quantize"
#: A second quantization is KDR203's to report, not KDR200's.
TRAITS = StageTraits(mutates=True, after_int8=True)


def lower(st: LowerState, s: ast.QuantizeStage, step: Step) -> None:
    params: dict[str, Any] = {"precision": "int8"}
    if s.precision.value not in QUANT_PRECISIONS:
        st.report(
            unknown("KDR103", "precision", s.precision.value, s.precision.span, QUANT_PRECISIONS)
        )
        step.broken = True
    params.update(
        clauses.words(
            st, s.words, QUANT_WORDS, "quantize", {"mode": "static", "granularity": "per_channel"}
        )
    )
    if s.calibrate is not None:
        _calibrate(st, s.calibrate, params)
    if params["mode"] == "static":
        params.setdefault("calibrate_batches", DEFAULT_CALIBRATION_BATCHES)
    step.params = params
    clauses.recovery(st, step, s.duration, s.modifiers)


def _calibrate(st: LowerState, c: ast.Calibrate, params: dict[str, Any]) -> None:
    if params["mode"] != "static":
        st.report(
            error(
                "KDR103",
                f"`calibrate` does not apply to `{params['mode']}` quantization",
                c.span,
                Note(kind="help", message="only `static` quantization calibrates; remove it"),
            )
        )
    else:
        params["calibrate_batches"] = st.values.count(c.count, "the number of calibration batches")
    if c.unit is not None and c.unit.value not in ("batch", "batches"):
        st.report(unknown("KDR103", "calibration unit", c.unit.value, c.unit.span, ["batches"]))


def expand(step: Step) -> list[tuple[str, OpParams]]:
    p = step.params
    q = QuantParams(precision=p["precision"], mode=p["mode"], granularity=p["granularity"])
    if p["mode"] == "static":
        return [
            ("fuse.bn", FuseParams()),
            ("quant.prepare", q),
            ("quant.calibrate", CalibrateParams(batches=p["calibrate_batches"])),
            ("quant.convert", q),
        ]
    if p["mode"] == "dynamic":
        return [("quant.prepare", q), ("quant.convert", q)]
    out: list[tuple[str, OpParams]] = [("quant.prepare_qat", q)]
    if step.training is not None:
        out.append(training_pass(step, qat=True))
    return [*out, ("quant.convert", q)]
