"""Lowering: the pipeline's stages -> checked :class:`~compiler.program.Step` s -> plan ops.

One module per stage kind, each with ``KIND``, ``lower(state, stage, step)`` (check the stage,
fill ``step.params`` / ``step.training``) and ``expand(step)`` (the ``(op, params)`` passes the
step becomes, in order). :data:`STAGE_KINDS` is their registry; ``repeat`` is unrolled in
:mod:`.unroll`.
"""

from __future__ import annotations

from compiler.lower.kinds import STAGE_KINDS, STAGES, StageKind, expand
from compiler.lower.unroll import lower_pipeline

__all__ = ["STAGES", "STAGE_KINDS", "StageKind", "expand", "lower_pipeline"]
