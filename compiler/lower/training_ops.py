"""The training pass a step's training phase becomes (shared by every stage kind that trains)."""

from __future__ import annotations

from typing import Any

from compiler.ops import OpParams, TrainingParams
from compiler.program import Step


def training_pass(step: Step, **flags: Any) -> tuple[str, OpParams]:
    """``("distill", ...)`` when the phase has a teacher, else ``("train", ...)``."""
    assert step.training is not None
    params = TrainingParams.model_validate({**step.training, **flags})
    return ("distill" if params.distill is not None else "train"), params
