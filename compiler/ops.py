"""The plan's ops: one pydantic params model per op, and one pass model per op keyed by ``op``.

This is the contract between the compiler and the runtime. The compiler builds these models
(never a free-form dict); the runtime's handlers receive them, typed, and look themselves up by
op. A plan JSON is validated against the same classes when it is read back, so a plan written
by an older kdr that no longer fits fails with the field that does not (see
:func:`compiler.plan.load_plan_json`).

>>> p = make_pass("prune.channels", id="003-prune.channels-student", subject="student",
...               params={"ratio": 0.5})
>>> type(p.params).__name__, p.params.criterion
('PruneChannelsParams', 'l1')
>>> PruneChannelsParams(budget={"unit": "macs", "fraction": 0.4}).budget.fraction
0.4
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from compiler.optim_params import LrSchedule, OptimizerSpec, Warmup
from compiler.param_types import OpParams, Ratio
from compiler.params import (
    Budget,
    CalibrateParams,
    DistillSpec,
    EvaluateParams,
    ExportParams,
    FuseParams,
    NMPattern,
    PruneChannelsGradualParams,
    PruneChannelsParams,
    PruneWeightsGradualParams,
    PruneWeightsParams,
    QuantParams,
    ReplaceGroupParams,
    ReplaceParams,
    Schedule,
    SnapshotParams,
    TrainingParams,
    training_of,
)
from compiler.vocab import HeadCriterion, Ranking
from recipe_lang.diagnostics import Span


class PruneHeadsParams(OpParams):
    """``prune 25% heads``: whole attention heads removed, ``ratio`` of the heads of every
    attention module in scope (``local``, at least one kept per module) or of all of them
    ranked together (``global``). A head's importance is the ``criterion`` norm of its query,
    key and value rows and its out-projection columns."""

    ratio: Ratio
    criterion: HeadCriterion = "l1"
    ranking: Ranking = "local"
    #: Glob patterns on module qualified names (empty ``include``: the whole model).
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)


# ---- the op table ------------------------------------------------------------------------------
@dataclass(frozen=True)
class OpInfo:
    """An op: its params model and what the runtime does with it."""

    op: str
    params: type[OpParams]
    #: It only reads its subject (the subject's version is unchanged after it).
    read_only: bool = False
    #: A training pass (runs the training engine; ``training_of(params)`` is its training).
    training: bool = False
    #: A graph pass registered in ``runtime.passes`` (dry-run by ``kdr check --models``).
    graph: bool = False
    #: The subject must trace with torch.fx before any training (checked up front, KDR500).
    traced: bool = False
    #: The params field that names a new model this op makes from its subject (a snapshot);
    #: None: the op's result is its subject's next version.
    produces: str | None = None
    #: The graph op a training op cuts with as it trains (a gradual prune: ``params.cut``);
    #: the dry run estimates it with one such cut at the target.
    cuts: str | None = None


OPS: dict[str, OpInfo] = {
    info.op: info
    for info in (
        OpInfo("train", TrainingParams, training=True),
        OpInfo("distill", TrainingParams, training=True),
        OpInfo("snapshot", SnapshotParams, read_only=True, produces="name"),
        OpInfo("evaluate", EvaluateParams, read_only=True),
        OpInfo("export", ExportParams, read_only=True),
        OpInfo("prune.channels", PruneChannelsParams, graph=True, traced=True),
        OpInfo("prune.weights", PruneWeightsParams, graph=True),
        OpInfo("prune.heads", PruneHeadsParams, graph=True),
        OpInfo(
            "prune.channels.gradual",
            PruneChannelsGradualParams,
            training=True,
            traced=True,
            cuts="prune.channels",
        ),
        OpInfo(
            "prune.weights.gradual", PruneWeightsGradualParams, training=True, cuts="prune.weights"
        ),
        OpInfo("replace.depthwise_separable", ReplaceParams, graph=True),
        OpInfo("replace.ghost", ReplaceParams, graph=True),
        OpInfo("replace.group", ReplaceGroupParams, graph=True),
        OpInfo("fuse.bn", FuseParams, graph=True, traced=True),
        OpInfo("quant.prepare", QuantParams, graph=True, traced=True),
        OpInfo("quant.prepare_qat", QuantParams, graph=True, traced=True),
        OpInfo("quant.calibrate", CalibrateParams, graph=True, traced=True),
        OpInfo("quant.convert", QuantParams, graph=True, traced=True),
    )
}


# ---- passes ------------------------------------------------------------------------------------
class PassBase(BaseModel):
    """One pass of the plan; the concrete model per op narrows ``op`` and ``params``."""

    model_config = ConfigDict(extra="forbid")
    id: str
    op: str
    subject: str
    params: OpParams
    depends_on: list[str] = Field(default_factory=list)
    #: Models this pass reads besides its subject (teachers).
    reads: list[str] = Field(default_factory=list)
    #: Index of the stage occurrence (after ``repeat`` unrolling) it comes from.
    stage: int = 0
    span: Span | None = None

    @property
    def info(self) -> OpInfo:
        return OPS[self.op]

    @property
    def result_model(self) -> str:
        """The model whose version this pass leaves: a new one it produces, or its subject."""
        field = self.info.produces
        return str(getattr(self.params, field)) if field else self.subject

    @model_validator(mode="after")
    def _teacher_matches_op(self) -> PassBase:
        if isinstance(self.params, TrainingParams):  # a gradual prune may have a teacher or not
            if self.op == "distill" and self.params.distill is None:
                raise ValueError("a `distill` pass needs `params.distill` (its teacher)")
            if self.op == "train" and self.params.distill is not None:
                raise ValueError("a `train` pass has no teacher: its op is `distill`")
        return self


def _class_name(op: str) -> str:
    return "".join(part.capitalize() for part in op.replace(".", "_").split("_")) + "Pass"


PASS_MODELS: dict[str, type[PassBase]] = {
    op: create_model(
        _class_name(op),
        __base__=PassBase,
        __module__=__name__,
        op=(Literal[op], ...),
        params=(info.params, ...),
    )
    for op, info in OPS.items()
}

if TYPE_CHECKING:
    AnyPass = PassBase
else:
    AnyPass = Annotated[Union[tuple(PASS_MODELS.values())], Field(discriminator="op")]  # noqa: UP007


def make_pass(op: str, **fields: Any) -> PassBase:
    """Build the pass model of ``op``; ``params`` may be a dict or the op's params model."""
    return PASS_MODELS[op].model_validate({"op": op, **fields})


__all__ = [
    "OPS",
    "PASS_MODELS",
    "AnyPass",
    "Budget",
    "CalibrateParams",
    "DistillSpec",
    "EvaluateParams",
    "ExportParams",
    "FuseParams",
    "LrSchedule",
    "NMPattern",
    "OpInfo",
    "OpParams",
    "OptimizerSpec",
    "PassBase",
    "PruneChannelsGradualParams",
    "PruneChannelsParams",
    "PruneHeadsParams",
    "PruneWeightsGradualParams",
    "PruneWeightsParams",
    "QuantParams",
    "ReplaceGroupParams",
    "ReplaceParams",
    "Schedule",
    "SnapshotParams",
    "TrainingParams",
    "Warmup",
    "make_pass",
    "training_of",
]
