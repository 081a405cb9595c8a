"""One rule for reading a model's forward output as logits: :func:`logits_of`.

kdr's training, distillation, validation, evaluation, preflight and export all consume the
logits of a forward. Models from other libraries do not all return a tensor: Hugging Face
models return a ``ModelOutput`` (a dict with ``logits``), some torchvision and timm models a
tuple (``inception_v3`` and ``googlenet`` with auxiliary heads in training mode), a user's
factory maybe a dict. Every consumer goes through this one function, so the rule is the same
everywhere:

- a tensor is the logits;
- a mapping (``ModelOutput``, dict) gives its ``"logits"`` entry;
- a tuple or list gives its first element (read by the same rule);
- anything else is a KDR501 diagnostic (the outputs cannot be compared with the data's classes).

>>> import torch
>>> logits_of({"logits": torch.zeros(2, 3), "hidden": None}).shape
torch.Size([2, 3])
>>> logits_of((torch.zeros(2, 3), torch.zeros(2, 3))).shape
torch.Size([2, 3])
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from recipe_lang.diagnostics import KdrError, Note, error


def logits_of(output: Any) -> torch.Tensor:
    """The logits in a forward's ``output`` (see the module docstring for the rule)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, Mapping):
        if "logits" in output:
            return logits_of(output["logits"])
        return _unreadable(f"a mapping without `logits` (keys: {', '.join(map(str, output))})")
    if isinstance(output, (tuple, list)) and output:
        return logits_of(output[0])
    return _unreadable(type(output).__name__)


def _unreadable(what: str) -> torch.Tensor:
    raise KdrError(
        error(
            "KDR501",
            f"a model's forward returned {what}: kdr cannot read logits from it",
            None,
            Note(
                kind="help",
                message="a model must return logits (N, classes): a tensor, a dict or "
                "ModelOutput with `logits`, or a tuple whose first item is the logits; wrap "
                "the model in a factory that returns them (see docs/factories.md)",
            ),
        )
    )


class LogitsOnly(nn.Module):
    """``model`` with a forward that returns :func:`logits_of` its output: what exporters
    (ONNX, TorchScript, torch.export) and a file's consumers expect from a classifier."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return logits_of(self.model(x))
