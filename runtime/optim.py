"""Optimizers and learning-rate schedules of the training engine, by name.

Defaults: AdamW with ``lr=5e-3, weight_decay=5e-4``; ``sgd`` with ``lr=0.05, momentum=0.9,
weight_decay=5e-4, nesterov=True``. Schedules (stepped every batch): ``onecycle``, ``cosine``,
``constant``, ``step`` (``step_size`` in epochs, ``gamma``). torch.optim and
torch.optim.lr_scheduler do the work; this module maps the recipe's words to them.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import torch
from torch import nn

from compiler import zoo
from recipe_lang.diagnostics import KdrError, Note, error


class TrainConfig(Protocol):
    """What the optimizer and the schedule read of :class:`runtime.engine.TrainConfig`."""

    optimizer: str
    optimizer_kwargs: dict[str, Any]
    lr: float | None
    schedule: str
    schedule_kwargs: dict[str, Any]


OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "adamw": {"lr": 5e-3, "weight_decay": 5e-4},
    "sgd": {"lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "nesterov": True},
}
SCHEDULES = zoo.SCHEDULES  #: the names the compiler accepts (one list)


def option_error(message: str, help_text: str) -> KdrError:
    return KdrError(error("KDR103", message, None, Note(kind="help", message=help_text)))


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    name = cfg.optimizer.lower()
    if name not in OPTIMIZER_DEFAULTS:
        raise option_error(f"unknown optimizer `{cfg.optimizer}`", "use `sgd(...)` or `adamw(...)`")
    kwargs = {**OPTIMIZER_DEFAULTS[name], **cfg.optimizer_kwargs}
    if cfg.lr is not None:
        kwargs["lr"] = cfg.lr
    if name == "sgd" and not kwargs.get("momentum"):
        kwargs["nesterov"] = False
    params = [p for p in model.parameters() if p.requires_grad]
    cls = torch.optim.AdamW if name == "adamw" else torch.optim.SGD
    try:
        return cls(params, **kwargs)
    except (TypeError, ValueError) as exc:
        raise option_error(
            f"optimizer `{name}` rejects its arguments: {exc}",
            f"defaults: {OPTIMIZER_DEFAULTS[name]}",
        ) from exc


def make_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, total_steps: int, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """A per-batch learning-rate schedule (``None`` for ``constant``)."""
    name, kw = cfg.schedule.lower(), cfg.schedule_kwargs
    if name == "constant":
        return None
    if name == "onecycle":
        if total_steps < 3:  # too short to warm up and anneal
            return None
        max_lr = [g["lr"] for g in optimizer.param_groups]
        pct = max(float(kw.get("pct_start", 0.25)), 2.0 / total_steps)
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lr, total_steps=total_steps, pct_start=min(pct, 0.9)
        )
    if name == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: 0.5 * (1.0 + math.cos(math.pi * min(s, total_steps) / total_steps))
        )
    if name == "step":
        step_size = int(kw.get("step_size", 1)) * steps_per_epoch
        return torch.optim.lr_scheduler.StepLR(
            optimizer, max(step_size, 1), float(kw.get("gamma", 0.1))
        )
    raise option_error(f"unknown schedule `{cfg.schedule}`", f"use one of {', '.join(SCHEDULES)}")
