"""What a :func:`runtime.engine.fit` call did: :class:`FitStats`, the figures a stage's report
entry shows of its training (loss and lr curves, validation curve, the kept epoch, speed)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch


@dataclass
class FitStats:
    """What a :func:`fit` call did: loss curve summary, steps, wall time, throughput."""

    steps: int
    epochs: float
    samples: int
    wall_s: float
    samples_per_s: float
    loss_first: float
    loss_last: float
    loss_mean: float
    #: Mean loss over (at most) 50 equal chunks of the run, in order.
    loss_curve: list[float]
    lr_final: float
    teacher_cached: bool
    #: ``(step, lr)`` of the lr used at some steps (``runtime/step_extras.py`` says which).
    lr_curve: list[tuple[int, float]] = field(default_factory=list)
    #: The last step (from 0) of each ``loss_curve`` chunk.
    loss_steps: list[int] = field(default_factory=list)
    #: Per epoch on the validation split (when the data has one): ``{"epoch", "accuracy",
    #: "loss"}``.
    val_curve: list[dict[str, float]] = field(default_factory=list)
    #: The epoch (1-based) whose weights ``keep_best`` kept.
    best_epoch: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """The ``train`` fields of a stage's report entry (the curves as ``[step, value]``)."""
        out: dict[str, Any] = {
            "loss_first": self.loss_first,
            "loss_last": self.loss_last,
            "steps": self.steps,
            "samples_per_s": self.samples_per_s,
            "lr_curve": [[int(s), float(lr)] for s, lr in self.lr_curve],
            "loss_curve": [[s, v] for s, v in zip(self.loss_steps, self.loss_curve, strict=True)],
        }
        if self.val_curve:
            out["val_curve"] = list(self.val_curve)
        if self.best_epoch is not None:
            out["best_epoch"] = self.best_epoch
        return out


def stats_of(
    losses: torch.Tensor,
    steps: int,
    samples: int,
    wall: float,
    spe: int,
    optimizer: torch.optim.Optimizer,
    cached: bool,
) -> FitStats:
    parts = losses.chunk(min(50, max(steps, 1))) if steps else ()
    chunks = [c.mean().item() for c in parts]
    ends = torch.tensor([len(c) for c in parts], dtype=torch.long).cumsum(0) - 1
    return FitStats(
        steps=steps,
        epochs=steps / spe,
        samples=samples,
        wall_s=wall,
        samples_per_s=samples / wall if wall > 0 else 0.0,
        loss_first=float(losses[0]) if steps else math.nan,
        loss_last=float(losses[-1]) if steps else math.nan,
        loss_mean=float(losses.mean()) if steps else math.nan,
        loss_curve=chunks,
        loss_steps=ends.tolist(),
        lr_final=float(optimizer.param_groups[0]["lr"]),
        teacher_cached=cached,
    )
