"""What every structured prune shares: how many units a ratio removes, the KDR502 it raises, and
the gradients a ``taylor`` score is read from (channels, heads).

>>> n_prune(0.5, 3), n_prune(0.99, 4)
(2, 3)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.nn import functional as F

from recipe_lang.diagnostics import KdrError, Note, error
from runtime.models.outputs import logits_of

#: ``() -> iterable of (inputs, labels)``: the run's training batches, drawn on demand.
Batches = Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]]


def kdr502(message: str, help_text: str) -> KdrError:
    return KdrError(error("KDR502", message, None, Note(kind="help", message=help_text)))


def n_prune(ratio: float, n: int) -> int:
    """Units to remove of ``n``: the exact ratio, rounded half up, never emptying (<= n - 1)."""
    return max(0, min(math.floor(ratio * n + 0.5), n - 1))


def taylor_gradients(model: nn.Module, batches: Batches | None, what: str = "prune") -> None:
    """Gradients of the task loss on one labelled batch, in eval mode (BatchNorm statistics must
    not move during the estimate): ``|w * grad|`` is then the taylor score. ``what`` names the
    stage in the KDR502 raised when the run has no data."""
    if batches is None:
        raise kdr502(
            f"`{what} by taylor` needs a batch of labelled data, and none is available here",
            "use `by l1` (data-free), or give the run a dataset",
        )
    x, y = next(iter(batches()))
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    try:
        F.cross_entropy(logits_of(model(x)), y).backward()
    finally:
        model.train(was_training)


__all__ = ["Batches", "kdr502", "n_prune", "taylor_gradients"]
