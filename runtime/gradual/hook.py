"""The fit hook of a gradual prune: cut to the schedule's level at every update point.

The :class:`~compiler.ops.Schedule` gives ``(step, level)`` points: step 0 (the ``from``
level, nothing when it is 0%), then every period up to the target, reached at the last point
before the end so the last period trains at the target. At each point the hook cuts (new
zeros, or smaller tensors and the optimizer following them), measures what the model now is,
and asks the engine to checkpoint the loop (``kdr run --resume`` then restarts from the last
cut, not from the stage's start).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from compiler.ops import PruneChannelsGradualParams, PruneWeightsGradualParams
from recipe_lang.diagnostics import KdrError, Note, error
from runtime.fit_state import Change, LoopState
from runtime.gradual.channels import ChannelRamp
from runtime.gradual.weights import WeightRamp
from runtime.metrics import sparsity
from runtime.passes.channels.importance import Batches

GradualParams = PruneWeightsGradualParams | PruneChannelsGradualParams


def schedule_points(
    params: GradualParams, total_steps: int, steps_per_epoch: int
) -> list[tuple[int, float]]:
    """The update points; KDR106 when the frequency leaves nothing to ramp."""
    target = params.cut.ratio
    assert target is not None  # the params model: a gradual cut has a ratio
    points = params.schedule.points(target, total_steps, steps_per_epoch)
    if len(points) < 2:
        period = params.schedule.period(steps_per_epoch)
        raise KdrError(
            error(
                "KDR106",
                f"the gradual prune updates every {period} steps but trains for {total_steps} "
                f"steps ({steps_per_epoch} per epoch): nothing to ramp",
                None,
                Note(
                    kind="help",
                    message="update more often (`every N steps` with N below the duration) "
                    "or train longer (`over N epochs`)",
                ),
            )
        )
    return points


class GradualPrune:
    """A :class:`~runtime.fit_state.FitHook` that ramps sparsity on the schedule's points."""

    def __init__(
        self,
        model: nn.Module,
        params: GradualParams,
        points: list[tuple[int, float]],
        *,
        example: torch.Tensor,
        seed: int,
        batches: Callable[[int], Batches] | None = None,
        on_record: Callable[[dict[str, Any]], None] | None = None,
        save: Callable[[LoopState, dict[str, Any]], None] | None = None,
    ):
        self.params, self.points = params, dict(points)
        self.batches, self.on_record, self.save = batches, on_record, save
        self.ramp: WeightRamp | ChannelRamp
        if isinstance(params, PruneWeightsGradualParams):
            self.ramp = WeightRamp(model, params.cut, seed)
        else:
            self.ramp = ChannelRamp(model, example, params.cut)
        self.done: list[int] = []
        #: One entry per update point: step, level asked, what the model measured after.
        self.updates: list[dict[str, Any]] = []

    def before_step(self, step: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> Change:
        level = self.points.get(step)
        if level is None or step in self.done:
            return ""
        self.done.append(step)
        change: Change = ""
        if level > 0:
            if isinstance(self.ramp, WeightRamp):
                self.ramp.apply(model, level)
                change = "weights"
            else:
                batches = self.batches(step) if self.batches is not None else None
                record, _ = self.ramp.apply(model, level, optimizer, batches)
                if self.on_record is not None:
                    self.on_record(record)
                change = "structure"
        self.updates.append(
            {
                "step": step,
                "level": level,
                "sparsity": sparsity(model),
                "params": sum(p.numel() for p in model.parameters()),
            }
        )
        return change

    def after_backward(self, step: int, model: nn.Module) -> None:
        if isinstance(self.ramp, WeightRamp):
            self.ramp.accumulate(model)

    def checkpoint(self, state: LoopState) -> None:
        if self.save is not None:
            self.save(state, self.state_dict())

    def state_dict(self) -> dict[str, Any]:
        return {
            "done": list(self.done),
            "updates": list(self.updates),
            "ramp": self.ramp.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.done = [int(s) for s in state["done"]]
        self.updates = list(state["updates"])
        self.ramp.load_state_dict(state["ramp"])


__all__ = ["GradualPrune", "schedule_points"]
