"""Validation during training, and ``keep best``.

:func:`validate` measures a model on the data's validation split (``val=`` on the data call,
:mod:`runtime.data.split`): top-1 accuracy and mean cross-entropy, in eval mode (the mode is
restored). :class:`EpochValidation` is what :func:`runtime.engine.fit` runs at every epoch
boundary when the data has a validation split:

- an **epoch boundary** is the end of a step ``s`` with ``s % steps_per_epoch == 0``, and also
  the training's last step when a ``for N steps`` training ends mid-epoch (that partial epoch
  is epoch ``ceil(s / steps_per_epoch)``, and a training shorter than one epoch is validated
  once, as epoch 1);
- each boundary appends ``{"epoch", "step", "accuracy", "loss"}`` to the curve
  (``FitStats.val_curve``);
- with ``keep_best`` (``"accuracy"``: highest wins, ``"loss"``: lowest wins, ties go to the
  earlier epoch, a NaN loss never wins) it keeps a CPU copy of the best epoch's
  ``state_dict`` and :meth:`~EpochValidation.finish` loads it into the model at the end of
  the training; ``FitStats.best_epoch`` is that epoch (1-based);
- a hook that changes the model mid-training (a gradual prune's cut) makes the epochs before
  it ineligible (:meth:`~EpochValidation.model_changed`): a gradual prune keeps its best epoch
  after its last cut, at the sparsity (and shape) it was asked for;
- its state (curve, best score, epoch and weights) is plain data that
  :class:`~runtime.fit_state.LoopState` carries, so a run resumed mid-training makes the same
  choice.

The engine validates the model that will be the training's result: when the weights are
averaged (``ema``), that is the averaged model. Validation costs one forward pass over the
split per epoch, under ``torch.inference_mode``.

>>> import torch.nn as nn
>>> from runtime.data import build_data
>>> data = build_data("mnist10k", [], {"limit": 64, "val": 16, "eval_limit": 8}, seed=0)
>>> scores = validate(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), data)
>>> sorted(scores), 0.0 <= scores["accuracy"] <= 1.0
(['accuracy', 'loss'], True)
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from recipe_lang.diagnostics import KdrError, Note, error
from runtime import distributed
from runtime.data import DataBundle
from runtime.models.outputs import logits_of
from runtime.optim import option_error

#: What ``keep best`` may choose by, and whether higher is better.
KEEP_BEST = {"accuracy": True, "loss": False}


def _device_of(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


def _cpu_copy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    return copy.deepcopy(value)  # a module's extra state


def validate(model: nn.Module, data: DataBundle) -> dict[str, float]:
    """``{"accuracy", "loss"}`` of ``model`` on the validation split (top-1 in 0..1, mean
    cross-entropy), in eval mode; the mode is restored."""
    device = _device_of(model)
    was_training = model.training
    model.eval()
    correct = total = 0
    loss = 0.0
    try:
        with torch.inference_mode():
            for x, y in data.val_batches():
                out = logits_of(model(x.to(device))).float().cpu()
                correct += int((out.argmax(1) == y).sum())
                loss += float(F.cross_entropy(out, y, reduction="sum"))
                total += len(y)
    finally:
        model.train(was_training)
    if not total:
        return {"accuracy": 0.0, "loss": math.nan}
    return {"accuracy": correct / total, "loss": loss / total}


def keep_best_error(data: DataBundle) -> KdrError:
    """``keep best`` on data without a validation split (the compiler rejects it too)."""
    return KdrError(
        error(
            "KDR207",
            f"`keep best` needs a validation split, and dataset `{data.name}` has none",
            None,
            Note(
                kind="help",
                message=f"carve one out of the training data: `{data.name}(val=1000)` "
                "(the evaluation split is what the report measures, never what keep best "
                "chooses by)",
            ),
        )
    )


class EpochValidation:
    """Validation at epoch boundaries and the ``keep best`` choice (see the module docstring).

    Inactive (every method a no-op) when the data has no validation split.
    """

    def __init__(self, data: DataBundle, keep_best: str | None, steps_per_epoch: int):
        if keep_best is not None and keep_best not in KEEP_BEST:
            raise option_error(
                f"unknown `keep best by {keep_best}`", "use `keep best by accuracy` or `by loss`"
            )
        if keep_best is not None and not data.has_val:
            raise keep_best_error(data)
        self.data, self.by, self.spe = data, keep_best, max(steps_per_epoch, 1)
        self.active = data.has_val
        self.curve: list[dict[str, float]] = []
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def boundary(self, step: int, total: int) -> bool:
        """Whether the end of step ``step`` (1-based count of steps done) ends an epoch."""
        return self.active and (step % self.spe == 0 or step == total)

    def epoch_end(self, step: int, model: nn.Module) -> None:
        """Validate ``model`` (the training's would-be result) after ``step`` steps; keep its
        weights if they are the best so far."""
        if not self.active:
            return
        distributed.broadcast_buffers(model)  # every rank validates (and keeps) rank 0's
        epoch = math.ceil(step / self.spe)
        rng = torch.get_rng_state()  # a DataLoader draws its base seed from it
        scores = validate(model, self.data)
        torch.set_rng_state(rng)  # the training draws the same numbers with or without it
        self.curve.append({"epoch": epoch, "step": step, **scores})
        if self.by is None:
            return
        score = scores[self.by]
        if math.isnan(score):
            return
        if self.best_score is not None:
            higher = KEEP_BEST[self.by]
            better = score > self.best_score if higher else score < self.best_score
            if not better:
                return
        self.best_score, self.best_epoch = score, epoch
        self.best_state = {k: _cpu_copy(v) for k, v in model.state_dict().items()}

    def model_changed(self) -> None:
        """A hook changed the model: the epochs so far can no longer be the result."""
        self.best_score = self.best_epoch = self.best_state = None

    def finish(self, model: nn.Module) -> int | None:
        """Load the best epoch's weights into ``model``; the epoch (None: nothing kept)."""
        if self.by is None or self.best_state is None:
            return None
        model.load_state_dict(self.best_state)
        return self.best_epoch

    def state_dict(self) -> dict[str, Any] | None:
        """Plain data for :class:`~runtime.fit_state.LoopState` (``weights_only`` loadable);
        None when inactive."""
        if not self.active:
            return None
        return {
            "curve": [dict(entry) for entry in self.curve],
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
        }

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state is None:
            return
        self.curve = [dict(entry) for entry in state["curve"]]
        self.best_score, self.best_epoch = state["best_score"], state["best_epoch"]
        self.best_state = state["best_state"]


__all__ = ["KEEP_BEST", "EpochValidation", "keep_best_error", "validate"]
