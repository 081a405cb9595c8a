"""How a training optimizes: the optimizer, the learning-rate schedule and its warmup.

``set optimizer`` / ``set schedule`` give a recipe's defaults (the plan's settings hold them as
plain dicts of these fields); a training's ``with optimizer ...`` / ``with schedule ...`` /
``with warmup ...`` override them for that training only (:class:`compiler.params.TrainingParams`).
"""

from __future__ import annotations

import itertools
from typing import Annotated

from pydantic import Field, model_validator

from compiler.param_types import Count, Fraction, NonNegative, OpParams, Positive
from compiler.vocab import OptimizerName, ScheduleName


class Warmup(OpParams):
    """Linear warmup: the lr rises from 0 to the schedule's value over the first ``epochs`` or
    ``steps`` of a training, then the schedule runs over what is left."""

    epochs: Count | None = None
    steps: Count | None = None

    @model_validator(mode="after")
    def _one_length(self) -> Warmup:
        if (self.epochs is None) == (self.steps is None):
            raise ValueError("give exactly one of `epochs` and `steps`")
        return self


#: The arguments each optimizer takes (``None`` in :class:`OptimizerSpec`: its default).
OPTIMIZER_ARGS: dict[str, tuple[str, ...]] = {
    "sgd": ("lr", "weight_decay", "momentum", "nesterov"),
    "adamw": ("lr", "weight_decay", "beta1", "beta2"),
}


class OptimizerSpec(OpParams):
    """``set optimizer = sgd(lr=0.05, momentum=0.9)`` or ``with optimizer adamw(lr=1e-3)``."""

    name: OptimizerName
    lr: Positive | None = None
    weight_decay: NonNegative | None = None
    momentum: Fraction | None = None
    nesterov: bool | None = None
    beta1: Fraction | None = None
    beta2: Fraction | None = None

    @model_validator(mode="after")
    def _args_of_its_kind(self) -> OptimizerSpec:
        given = {k for k in type(self).model_fields if k != "name" and getattr(self, k) is not None}
        extra = given - set(OPTIMIZER_ARGS[self.name])
        if extra:
            raise ValueError(f"`{self.name}` takes no {', '.join(sorted(extra))}")
        return self


#: The arguments each schedule takes. Lengths (``step_size``, ``milestones``, ``period``) count
#: epochs, or steps when the training's duration is in steps.
SCHEDULE_ARGS: dict[str, tuple[str, ...]] = {
    "onecycle": (),
    "cosine": (),
    "constant": (),
    "step": ("step_size", "gamma"),
    "multistep": ("milestones", "gamma"),
    "linear": ("end",),
    "poly": ("power",),
    "cosine_restarts": ("period", "mult"),
}


class LrSchedule(OpParams):
    """A learning-rate schedule by name, its arguments, and an optional warmup before it.

    ``step(step_size, gamma)``: x gamma every step_size; ``multistep(milestones, gamma)``: x gamma
    at each milestone; ``linear(end)``: straight from the peak to ``end`` x peak; ``poly(power)``:
    peak x (1 - t/T)^power; ``cosine_restarts(period, mult)``: cosine annealing restarted after
    ``period``, each period ``mult`` times the last (SGDR).
    """

    name: ScheduleName
    step_size: Count | None = None
    gamma: Annotated[float, Field(gt=0, le=1)] | None = None
    milestones: list[Count] | None = None
    end: Fraction | None = None
    power: Positive | None = None
    period: Count | None = None
    mult: Count | None = None
    warmup: Warmup | None = None

    @model_validator(mode="after")
    def _args_of_its_kind(self) -> LrSchedule:
        given = {
            k
            for k in type(self).model_fields
            if k not in ("name", "warmup") and getattr(self, k) is not None
        }
        extra = given - set(SCHEDULE_ARGS[self.name])
        if extra:
            raise ValueError(f"schedule `{self.name}` takes no {', '.join(sorted(extra))}")
        m = self.milestones
        if m is not None and (not m or any(a >= b for a, b in itertools.pairwise(m))):
            raise ValueError("milestones must be a non-empty, strictly increasing list")
        return self
