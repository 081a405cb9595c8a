"""What :func:`runtime.engine.fit` does around each optimizer step besides the step itself:
record the learning rate in use, clip the gradients, keep a moving average of the weights.

- ``lr_curve``: ``(step, lr)`` of the lr a step uses, at step 0, at the first step of every
  epoch, every ``LR_EVERY``-th step, every ``ceil(steps / LR_POINTS)``-th step (about 100
  points however long the training, so that a plot of it follows the schedule) and the last.
- ``clip_grad``: the global gradient norm is clipped before the optimizer steps (after
  unscaling under fp16; the engine calls :meth:`StepExtras.clip` there).
- ``ema``: an exponential moving average of the weights and buffers (BN statistics)
  (:class:`torch.optim.swa_utils.AveragedModel`), updated after every step (after the weight
  masks hold). At the end its floating-point tensors are copied into the model, which is the
  training's result; integer counters (BN's ``num_batches_tracked``) stay the model's, and the
  masks hold on the result. A hook that gives the model new tensors restarts it.

:meth:`StepExtras.state` is their part of :class:`runtime.fit_state.LoopState`, so a resumed run
continues the curve and the average.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from runtime.fit_state import LoopState
from runtime.sparsity import WeightMasks, prunable_weights

LR_EVERY, LR_POINTS = 50, 100


class StepExtras:
    """The lr record, gradient clipping and weight average of one :func:`fit` call."""

    def __init__(
        self,
        model: nn.Module,
        clip_grad: float | None,
        ema: float | None,
        total: int,
        steps_per_epoch: int,
        start: LoopState | None = None,
    ):
        self.max_norm, self.decay = clip_grad, ema
        self.spe, self.every, self.last = steps_per_epoch, max(1, -(-total // LR_POINTS)), total - 1
        self.lr_curve: list[tuple[int, float]] = []
        self.average = self._average(model)
        if start is not None:
            self.lr_curve = [(int(s), float(lr)) for s, lr in start.lr_curve]
            if self.average is not None and start.ema is not None:
                self.average.load_state_dict(start.ema)

    def _average(self, model: nn.Module) -> AveragedModel | None:
        if self.decay is None:
            return None
        multi = get_ema_multi_avg_fn(self.decay)
        return AveragedModel(model, multi_avg_fn=multi, use_buffers=True)

    def record(self, step: int, optimizer: torch.optim.Optimizer) -> None:
        """The lr ``step`` uses (call before the optimizer steps)."""
        if (
            step % self.spe == 0
            or step % LR_EVERY == 0
            or step % self.every == 0
            or step == self.last
        ):
            self.lr_curve.append((step, float(optimizer.param_groups[0]["lr"])))

    def clip(self, model: nn.Module) -> None:
        if self.max_norm is not None:
            params = [p for p in model.parameters() if p.requires_grad]
            nn.utils.clip_grad_norm_(params, self.max_norm)

    def update(self, model: nn.Module, masks: WeightMasks | None = None) -> None:
        """After a step (and after the masks hold); the average keeps the model's zeros."""
        if self.average is not None:
            self.average.update_parameters(model)
            if masks:
                self._keep_zeros(model)

    @torch.no_grad()
    def _keep_zeros(self, model: nn.Module) -> None:
        assert self.average is not None
        pairs = zip(prunable_weights(model), prunable_weights(self.average.module), strict=True)
        for (_, weight), (_, averaged) in pairs:
            averaged.mul_(weight != 0)

    def result(self, model: nn.Module) -> nn.Module:
        """What the training's result would be now: the average under ``ema`` (once it has
        one), else the model."""
        if self.average is None or int(self.average.n_averaged) == 0:
            return model
        return self.average.module

    def restart(self, model: nn.Module) -> None:
        """The model has new tensors: the average starts again from them."""
        self.average = self._average(model)

    def state(self) -> dict[str, Any]:
        """``LoopState``'s ``lr_curve`` and ``ema``."""
        ema = self.average.state_dict() if self.average is not None else None
        return {"lr_curve": list(self.lr_curve), "ema": ema}

    @torch.no_grad()
    def finish(self, model: nn.Module, masks: WeightMasks) -> None:
        """The average into ``model`` (nothing before its first update); the masks hold."""
        if self.average is None or int(self.average.n_averaged) == 0:
            return
        averaged = self.average.module.state_dict()
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(averaged[name])
        if masks:
            masks.apply()
