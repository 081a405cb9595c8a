"""Every vocabulary of the compiler in one table: option words, defaults and stage traits.

Each closed set of words is a ``Literal`` type; the tuples the checks and the "did you mean"
notes list are derived from it with ``get_args``, and the plan's params models
(:mod:`compiler.ops`) use the same ``Literal`` s, so a word added here is accepted by the
compiler, spelled out in the plan schema and validated on the runtime's side at once.

:class:`StageTraits` says what a stage kind does to its subject; each lowering module declares
its own (``compiler/lower/<kind>.py``: ``TRAITS``) and :data:`compiler.lower.kinds.STAGES` is the
one table the state tracker and the rules read instead of keeping their own sets of stage names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

# ---- option words ------------------------------------------------------------------------------
Granularity = Literal["channels", "weights", "heads"]
Ranking = Literal["local", "global"]
ChannelCriterion = Literal["l1", "l2", "random", "taylor", "fpgm"]
WeightCriterion = Literal["l1", "l2", "random", "movement"]
#: How whole attention heads are ranked (a head's q/k/v rows and out-projection columns).
HeadCriterion = Literal["l1", "l2", "random", "taylor"]
#: Criteria that need training to score (only inside a gradual stage).
TrainingCriterion = Literal["movement"]
#: How a gradual prune ramps its sparsity from ``from X%`` to the target.
Curve = Literal["cubic", "linear", "exponential"]
BudgetUnit = Literal["params", "macs"]
Replacement = Literal["depthwise_separable", "ghost", "group"]
Precision = Literal["int8"]
QuantMode = Literal["static", "dynamic", "qat"]
QuantGranularity = Literal["per_channel", "per_tensor"]
ExportFormat = Literal["onnx", "torchscript", "pt2", "checkpoint"]
TrainVerb = Literal["train", "finetune"]
Modifier = Literal[
    "distill",
    "label_smoothing",
    "mixup",
    "cutmix",
    "lr",
    "optimizer",
    "schedule",
    "warmup",
    "weight_decay",
    "clip_grad",
    "ema",
    "keep",
]
OptimizerName = Literal["sgd", "adamw"]
#: Learning-rate schedules, stepped every batch (``runtime/optim.py``).
ScheduleName = Literal[
    "onecycle", "cosine", "constant", "step", "multistep", "linear", "poly", "cosine_restarts"
]
#: What ``keep best by X`` compares on the validation split.
KeepBestBy = Literal["accuracy", "loss"]
DurationUnit = Literal["epochs", "steps"]

GRANULARITIES: tuple[str, ...] = get_args(Granularity)
RANKINGS: tuple[str, ...] = get_args(Ranking)
CRITERIA: tuple[str, ...] = get_args(ChannelCriterion)
WEIGHT_CRITERIA: tuple[str, ...] = get_args(WeightCriterion)
HEAD_CRITERIA: tuple[str, ...] = get_args(HeadCriterion)
TRAINING_CRITERIA: tuple[str, ...] = get_args(TrainingCriterion)
CURVES: tuple[str, ...] = get_args(Curve)
BUDGET_UNITS: tuple[str, ...] = get_args(BudgetUnit)
REPLACEMENTS: tuple[str, ...] = get_args(Replacement)
QUANT_PRECISIONS: tuple[str, ...] = get_args(Precision)
QUANT_MODES: tuple[str, ...] = get_args(QuantMode)
QUANT_GRANULARITIES: tuple[str, ...] = get_args(QuantGranularity)
EXPORT_FORMATS: tuple[str, ...] = get_args(ExportFormat)
MODIFIERS: tuple[str, ...] = get_args(Modifier)
OPTIMIZERS: tuple[str, ...] = get_args(OptimizerName)
SCHEDULES: tuple[str, ...] = get_args(ScheduleName)
KEEP_BEST_BY: tuple[str, ...] = get_args(KeepBestBy)

#: The bare words of ``prune`` and ``quantize`` stages, and the slot each one fills.
PRUNE_WORDS: dict[str, str] = {
    **{w: "granularity" for w in GRANULARITIES},
    **{w: "ranking" for w in RANKINGS},
}
QUANT_WORDS: dict[str, str] = {
    **{w: "mode" for w in QUANT_MODES},
    **{w: "granularity" for w in QUANT_GRANULARITIES},
}
#: Duration words as written -> the unit they count.
DURATION_UNITS: dict[str, str] = {
    "epoch": "epochs",
    "epochs": "epochs",
    "step": "steps",
    "steps": "steps",
}

# ---- defaults ----------------------------------------------------------------------------------
#: Epochs of a ``distill`` stage that gives no duration (the one-liner form).
DEFAULT_DISTILL_EPOCHS = 3
DEFAULT_TEMPERATURE = 4.0
DEFAULT_ALPHA = 0.9
DEFAULT_CALIBRATION_BATCHES = 32
#: The sparsity curve of a gradual prune that names none (Zhu & Gupta 2017).
DEFAULT_CURVE = "cubic"
#: The most stage occurrences a recipe may unroll to. ``repeat`` sizes are computed before
#: anything is unrolled, so ``repeat 1000000 { ... }`` is refused at once, not after the work.
MAX_STEPS = 20_000


# ---- stage traits ------------------------------------------------------------------------------
@dataclass(frozen=True)
class StageTraits:
    """What a stage kind does to its subject model."""

    #: It changes the subject's weights or structure (everything else only reads it).
    mutates: bool
    #: A graph transformation (structure changes; KDR300/KDR303 track these).
    graph: bool = False
    #: It may act on a model already converted to int8 (KDR200 lets it through).
    after_int8: bool = False
    #: It may act on a snapshot or an ensemble (a frozen copy, an average of models).
    on_frozen: bool = False
    #: It makes a new model from its subject (a snapshot), named by its ``name`` param.
    copies: bool = False


__all__ = [
    "BUDGET_UNITS",
    "CRITERIA",
    "CURVES",
    "DEFAULT_ALPHA",
    "DEFAULT_CALIBRATION_BATCHES",
    "DEFAULT_CURVE",
    "DEFAULT_DISTILL_EPOCHS",
    "DEFAULT_TEMPERATURE",
    "DURATION_UNITS",
    "EXPORT_FORMATS",
    "HEAD_CRITERIA",
    "MAX_STEPS",
    "MODIFIERS",
    "PRUNE_WORDS",
    "QUANT_PRECISIONS",
    "QUANT_WORDS",
    "REPLACEMENTS",
    "TRAINING_CRITERIA",
    "WEIGHT_CRITERIA",
    "StageTraits",
]
