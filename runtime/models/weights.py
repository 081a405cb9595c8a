"""Load saved weights into a built model: a plain state dict or a kdr checkpoint, never
pickled code (``weights_only`` always)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from recipe_lang.diagnostics import KdrError, Note, error
from runtime.models.registry import model_error


def _state_dict_of(obj: Any, path: str) -> Mapping[str, Any]:
    if isinstance(obj, Mapping) and obj.get("format") == "kdr-checkpoint":
        obj = obj.get("state_dict")
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(k, str) for k in obj):
        raise model_error(
            f"`{path}` holds no state dict",
            "give a file written by `torch.save(model.state_dict(), path)` or a kdr checkpoint",
        )
    if all(k.startswith("module.") for k in obj):  # saved from DistributedDataParallel
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a plain state dict or a kdr checkpoint into ``model`` (``weights_only`` always)."""
    from runtime.checkpoint import load_checkpoint

    path = str(path)
    if not Path(path).expanduser().is_file():
        raise model_error(f"weights file `{path}` does not exist", "check the path after `from`")
    state = _state_dict_of(load_checkpoint(Path(path).expanduser(), require_kdr=False), path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own
        and isinstance(v, torch.Tensor)
        and isinstance(own[k], torch.Tensor)
        and v.shape != own[k].shape
    ]
    problems = [
        *(f"shape mismatch: {s}" for s in shapes[:5]),
        *(f"missing: {k}" for k in missing[:5]),
        *(f"unexpected: {k}" for k in unexpected[:5]),
    ]
    if problems:
        raise KdrError(
            error(
                "KDR504",
                f"weights in `{path}` do not fit the model: {problems[0]}",
                None,
                *(Note(message=p) for p in problems[1:8]),
                Note(kind="help", message="were they saved from the same constructor and data?"),
            )
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise model_error(f"weights in `{path}` do not load: {exc}", "check the model") from exc
    return model
