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

from compiler.vocab import (
    BudgetUnit,
    ChannelCriterion,
    Curve,
    ExportFormat,
    Precision,
    QuantGranularity,
    QuantMode,
    Ranking,
    TrainVerb,
    WeightCriterion,
)
from recipe_lang.diagnostics import Span

Ratio = Annotated[float, Field(gt=0, lt=1)]
Positive = Annotated[float, Field(gt=0)]
Count = Annotated[int, Field(ge=1)]


class OpParams(BaseModel):
    """Base of every op's params: closed (unknown fields are an error) and immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- training ----------------------------------------------------------------------------------
class DistillSpec(OpParams):
    """Knowledge distillation inside a training pass (Hinton): the teacher and its loss mix."""

    teacher: str
    temperature: Positive = 4.0
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.9


class TrainingParams(OpParams):
    """A training pass: ``train``/``finetune``, ``distill``, or a stage's recovery/QAT clause."""

    epochs: Count | None = None
    steps: Count | None = None
    lr: Positive | None = None
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0
    mixup: Positive | None = None
    cutmix: Positive | None = None
    distill: DistillSpec | None = None
    verb: TrainVerb = "train"
    #: The recovery training of a ``prune ... with ... for N`` stage.
    recovery: bool = False
    #: The training of a ``quantize int8 qat`` stage (the model carries fake-quant modules).
    qat: bool = False

    @model_validator(mode="after")
    def _one_duration(self) -> TrainingParams:
        if (self.epochs is None) == (self.steps is None):
            raise ValueError("give exactly one of `epochs` and `steps`")
        return self


# ---- graph passes ------------------------------------------------------------------------------
class Budget(OpParams):
    """``prune to 2.5M params`` (``value``) or ``prune to 40% macs`` (``fraction`` of the model
    as it enters the pass)."""

    unit: BudgetUnit
    value: Count | None = None
    fraction: Ratio | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Budget:
        if (self.value is None) == (self.fraction is None):
            raise ValueError("give exactly one of `value` and `fraction`")
        return self


class _Scoped(OpParams):
    #: Glob patterns on module qualified names (empty ``include``: the whole model).
    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)


class PruneChannelsParams(_Scoped):
    ratio: Ratio | None = None
    budget: Budget | None = None
    criterion: ChannelCriterion = "l1"
    ranking: Ranking = "local"

    @model_validator(mode="after")
    def _ratio_or_budget(self) -> PruneChannelsParams:
        if (self.ratio is None) == (self.budget is None):
            raise ValueError("give exactly one of `ratio` and `budget`")
        return self


class NMPattern(OpParams):
    """``prune 2:4 weights``: every group of ``m`` consecutive entries along a layer's flattened
    input dimension (a row of ``weight.reshape(out, -1)``) keeps its ``n`` largest."""

    n: Count
    m: Annotated[int, Field(ge=2)]

    @model_validator(mode="after")
    def _n_below_m(self) -> NMPattern:
        if self.n >= self.m:
            raise ValueError("N:M sparsity needs N < M")
        return self

    def __str__(self) -> str:
        return f"{self.n}:{self.m}"


class PruneWeightsParams(_Scoped):
    """Unstructured sparsity: ``ratio`` of the entries still non-zero (a second prune removes
    ``ratio`` of what remains), or an N:M ``pattern``."""

    ratio: Ratio | None = None
    pattern: NMPattern | None = None
    #: ``movement`` scores need training: only inside a gradual stage.
    criterion: WeightCriterion = "l1"
    ranking: Ranking = "local"

    @model_validator(mode="after")
    def _ratio_or_pattern(self) -> PruneWeightsParams:
        if (self.ratio is None) == (self.pattern is None):
            raise ValueError("give exactly one of `ratio` and `pattern`")
        if self.pattern is not None and self.ranking != "local":
            raise ValueError("an N:M pattern is kept per group: its ranking is `local`")
        return self


class ReplaceParams(_Scoped):
    pass


class ReplaceGroupParams(_Scoped):
    groups: Annotated[int, Field(ge=2)] = 2


class FuseParams(OpParams):
    pass


class QuantParams(OpParams):
    precision: Precision = "int8"
    mode: QuantMode = "static"
    granularity: QuantGranularity = "per_channel"


class CalibrateParams(OpParams):
    batches: Count = 32


# ---- gradual pruning (training passes that prune as they go) ------------------------------------
class Schedule(OpParams):
    """How a gradual prune ramps: from ``start`` (share of the entries or channels the model
    had when the stage began) to the cut's ``ratio`` on ``curve``, updating every
    ``every_steps`` or ``every_epochs`` (neither: once per epoch). The target is reached at the
    last update point before the end of the training, which then recovers at the target."""

    start: Annotated[float, Field(ge=0, lt=1)] = 0.0
    every_steps: Count | None = None
    every_epochs: Count | None = None
    curve: Curve = "cubic"

    @model_validator(mode="after")
    def _one_frequency(self) -> Schedule:
        if self.every_steps is not None and self.every_epochs is not None:
            raise ValueError("give at most one of `every_steps` and `every_epochs`")
        return self

    def period(self, steps_per_epoch: int) -> int:
        """Steps between two updates."""
        if self.every_steps is not None:
            return self.every_steps
        return (self.every_epochs or 1) * max(steps_per_epoch, 1)

    def level(self, target: float, f: float) -> float:
        """The sparsity at fraction ``f`` (0..1) of the ramp.

        ``cubic`` (Zhu & Gupta 2017): ``s = t + (s0 - t)(1 - f)^3``, fast first, slow last;
        ``linear``: ``s0 + (t - s0) f``; ``exponential``: the remaining density shrinks by
        the same factor at every update, ``1 - (1 - s0)((1 - t) / (1 - s0))^f``.
        """
        s0 = self.start
        if f <= 0.0 or f >= 1.0:
            return s0 if f <= 0.0 else target
        if self.curve == "linear":
            return s0 + (target - s0) * f
        if self.curve == "exponential":
            return 1.0 - (1.0 - s0) * ((1.0 - target) / (1.0 - s0)) ** f
        return target + (s0 - target) * (1.0 - f) ** 3

    def points(
        self, target: float, total_steps: int, steps_per_epoch: int
    ) -> list[tuple[int, float]]:
        """``(step, sparsity)`` of every update: at steps ``0, P, 2P, ...`` below
        ``total_steps``, from the start value to the target at the last one. Fewer than two
        points means the frequency does not fit the duration (nothing to ramp)."""
        period = self.period(steps_per_epoch)
        steps = list(range(0, total_steps, period))
        if len(steps) < 2:
            return [(0, target)] if steps else []
        last = len(steps) - 1
        return [(s, self.level(target, i / last)) for i, s in enumerate(steps)]


class _Gradual(OpParams):
    schedule: Schedule
    #: The training the sparsity ramps during (its duration, modifiers and teacher).
    training: TrainingParams

    def _check_ramp(self, ratio: float | None) -> None:
        if ratio is None:
            raise ValueError("a gradual prune needs a target `ratio` (no budget, no N:M)")
        if ratio <= self.schedule.start:
            raise ValueError("the target sparsity must be above the schedule's start")


class PruneWeightsGradualParams(_Gradual):
    """``prune M P% weights gradually over N epochs ...``: one training with a sparsity ramp."""

    cut: PruneWeightsParams

    @model_validator(mode="after")
    def _ramp(self) -> PruneWeightsGradualParams:
        self._check_ramp(self.cut.ratio)
        return self


class PruneChannelsGradualParams(_Gradual):
    """``prune M P% channels gradually over N epochs ...``: channels are removed physically at
    every update, and the optimizer state follows the smaller tensors."""

    cut: PruneChannelsParams

    @model_validator(mode="after")
    def _ramp(self) -> PruneChannelsGradualParams:
        self._check_ramp(self.cut.ratio)
        return self


def training_of(params: OpParams) -> TrainingParams | None:
    """The training a pass runs (its own params, or a gradual prune's), or None."""
    if isinstance(params, TrainingParams):
        return params
    if isinstance(params, _Gradual):
        return params.training
    return None


# ---- read-only ---------------------------------------------------------------------------------
class SnapshotParams(OpParams):
    #: The name of the frozen copy.
    name: str


class EvaluateParams(OpParams):
    pass


class ExportParams(OpParams):
    format: ExportFormat
    path: Annotated[str, Field(min_length=1)]


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
        OpInfo("prune.channels.gradual", PruneChannelsGradualParams, training=True, traced=True),
        OpInfo("prune.weights.gradual", PruneWeightsGradualParams, training=True),
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
    "NMPattern",
    "OpInfo",
    "OpParams",
    "PassBase",
    "PruneChannelsGradualParams",
    "PruneChannelsParams",
    "PruneWeightsGradualParams",
    "PruneWeightsParams",
    "QuantParams",
    "ReplaceGroupParams",
    "ReplaceParams",
    "Schedule",
    "SnapshotParams",
    "TrainingParams",
    "make_pass",
    "training_of",
]
