"""The params of every plan op: one frozen pydantic model per op (see :mod:`compiler.ops`).

Each model is closed (unknown fields are an error) and immutable; the compiler builds them, the
plan JSON is validated against them when read back, and the runtime's handlers receive them
typed. :class:`Schedule` also holds the arithmetic of a gradual prune's ramp, so the compiler's
checks (KDR106) and the runtime's cuts use the same update points.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from compiler.optim_params import LrSchedule, OptimizerSpec, Warmup
from compiler.param_types import Count, NonNegative, OpParams, Positive, Ratio
from compiler.vocab import (
    BudgetUnit,
    ChannelCriterion,
    Curve,
    ExportFormat,
    KeepBestBy,
    Precision,
    QuantGranularity,
    QuantMode,
    Ranking,
    TrainVerb,
    WeightCriterion,
)


# ---- training ----------------------------------------------------------------------------------
class DistillSpec(OpParams):
    """Knowledge distillation inside a training pass (Hinton): the teacher and its loss mix."""

    teacher: str
    temperature: Positive = 4.0
    alpha: Annotated[float, Field(ge=0, le=1)] = 0.9


class TrainingParams(OpParams):
    """A training pass: ``train``/``finetune``, ``distill``, or a stage's recovery/QAT clause.

    ``optimizer``, ``schedule`` and ``warmup`` left ``None`` take the recipe's settings
    (``set optimizer``, ``set schedule``); given, they apply to this training only.
    """

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
    #: ``with optimizer sgd(...)``: this training's optimizer instead of ``set optimizer``.
    optimizer: OptimizerSpec | None = None
    #: ``with schedule multistep(...)``: this training's schedule instead of ``set schedule``.
    schedule: LrSchedule | None = None
    #: ``with warmup 2 epochs``: overrides the schedule's own warmup.
    warmup: Warmup | None = None
    #: ``with weight_decay X``: overrides the optimizer's weight decay.
    weight_decay: NonNegative | None = None
    #: ``with clip_grad X``: the global gradient norm is clipped to X before every step.
    clip_grad: Positive | None = None
    #: ``with ema 0.999``: an exponential moving average of the weights (this decay) is the
    #: training's result.
    ema: Annotated[float, Field(gt=0, lt=1)] | None = None
    #: ``with keep best [by accuracy|loss]``: the weights of the best epoch on the validation
    #: split are the training's result.
    keep_best: KeepBestBy | None = None

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


def default_ranking(unstructured: bool) -> Ranking:
    """``global`` for unstructured weight pruning, ``local`` for channels and N:M patterns.

    Single weights are ranked across layers by default (global magnitude pruning, the strong
    baseline of Blalock et al. 2020): P% of every layer would cut a 1-channel stem or a small
    classifier as deep as the widest layer. Channels and N:M groups rank within their layer.
    """
    return "global" if unstructured else "local"


class PruneWeightsParams(_Scoped):
    """Unstructured sparsity: ``ratio`` of the entries still non-zero (a second prune removes
    ``ratio`` of what remains), or an N:M ``pattern``."""

    ratio: Ratio | None = None
    pattern: NMPattern | None = None
    #: ``movement`` scores need training: only inside a gradual stage.
    criterion: WeightCriterion = "l1"
    ranking: Ranking = "global"

    @model_validator(mode="before")
    @classmethod
    def _pattern_ranks_locally(cls, data: object) -> object:
        if isinstance(data, dict) and "ranking" not in data and data.get("pattern") is not None:
            return {**data, "ranking": default_ranking(unstructured=False)}
        return data

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
