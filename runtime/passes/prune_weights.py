"""``prune.weights``: unstructured magnitude sparsity written into the weights.

The smallest-magnitude entries of every Conv/Linear weight in scope are set to zero, either
per layer (``local``: each layer loses ``ratio`` of its entries) or with one threshold over all
of them (``global``). The zeros are written into the tensors; no ``torch.nn.utils.prune``
parametrization, ``weight_orig`` or mask buffer is left behind, so the state dict keeps its
keys and replay is the identity (the checkpoint carries the zeros). Recovery training that
must keep the zeros is the training stage's business, not this pass's.

Sparse weights do not run faster on dense kernels; what they buy is a smaller *compressed*
checkpoint. ``info["compressed_size_bytes"]`` is the length of the zlib-compressed (level 1)
``torch.save`` serialisation of the state dict, beside ``dense_size_bytes`` uncompressed.

>>> import torch
>>> from torch import nn
>>> m = nn.Linear(10, 10)
>>> info = prune_weights_model(m, 0.5)
>>> int((m.weight == 0).sum())
50
"""

from __future__ import annotations

import io
import math
import zlib
from typing import Any

import torch
from torch import nn

from compiler.ops import PruneWeightsParams
from compiler.vocab import RANKINGS
from recipe_lang.diagnostics import KdrError, Note, error

from .base import PassContext, PassResult, register_pass
from .scopes import Scope

_PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


def _targets(model: nn.Module, scope: Scope) -> list[tuple[str, torch.Tensor]]:
    return [
        (name, m.weight)
        for name, m in model.named_modules()
        if isinstance(m, _PRUNABLE) and isinstance(m.weight, torch.Tensor) and scope.selects(name)
    ]


def serialized_sizes(model: nn.Module) -> tuple[int, int]:
    """(dense, zlib level-1 compressed) byte sizes of ``torch.save(model.state_dict())``."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    data = buf.getvalue()
    return len(data), len(zlib.compress(data, 1))


def _n_zero(ratio: float, n: int) -> int:
    return min(math.floor(ratio * n + 0.5), n)


@torch.no_grad()
def prune_weights_model(
    model: nn.Module, ratio: float, ranking: str = "local", scope: Scope | None = None
) -> dict[str, Any]:
    """Zero the smallest weights of ``model`` in place; return measurements."""
    if not isinstance(ratio, (int, float)) or not 0.0 <= float(ratio) < 1.0:
        raise KdrError(
            error(
                "KDR502",
                f"weight sparsity must be in [0, 1), got {ratio!r}",
                None,
                Note(kind="help", message="write e.g. `prune 80% weights`"),
            )
        )
    if ranking not in RANKINGS:
        raise KdrError(
            error(
                "KDR502",
                f"unknown ranking `{ranking}`",
                None,
                Note(kind="help", message=f"use one of {', '.join(RANKINGS)}"),
            )
        )
    targets = _targets(model, scope or Scope())
    if not targets:
        raise KdrError(
            error(
                "KDR502",
                "nothing to prune: no Conv/Linear weight is in scope",
                None,
                Note(kind="help", message="check the `in` / `except` scopes of this prune"),
            )
        )
    if ranking == "global":
        flat = torch.cat([w.detach().abs().reshape(-1) for _, w in targets])
        k = _n_zero(ratio, flat.numel())
        idx = torch.argsort(flat, stable=True)[:k]
        mask = torch.ones_like(flat, dtype=torch.bool)
        mask[idx] = False
        offset = 0
        for _, w in targets:
            n = w.numel()
            w.mul_(mask[offset : offset + n].reshape(w.shape).to(w.dtype))
            offset += n
    else:
        for _, w in targets:
            flat = w.detach().abs().reshape(-1)
            idx = torch.argsort(flat, stable=True)[: _n_zero(ratio, flat.numel())]
            w.view(-1)[idx] = 0
    zeros = sum(int((w == 0).sum()) for _, w in targets)
    total = sum(w.numel() for _, w in targets)
    all_params = sum(p.numel() for p in model.parameters())
    all_zeros = sum(int((p == 0).sum()) for p in model.parameters())
    dense, compressed = serialized_sizes(model)
    return {
        "ratio": float(ratio),
        "ranking": ranking,
        "layers": len(targets),
        "sparsity": zeros / total,
        "model_sparsity": all_zeros / all_params if all_params else 0.0,
        "dense_size_bytes": dense,
        "compressed_size_bytes": compressed,
        "compressed_size_method": "zlib level 1 of torch.save(state_dict)",
    }


def replay_weights(model: nn.Module, record: dict[str, Any]) -> nn.Module:
    """Nothing structural to rebuild: the zeros travel inside the checkpoint's weights."""
    return model


@register_pass("prune.weights", replay=replay_weights)
def prune_weights(module: nn.Module, params: PruneWeightsParams, ctx: PassContext) -> PassResult:
    """The plan op: zero ``params.ratio`` of the weights in scope, ranked by ``params.ranking``."""
    info = prune_weights_model(module, params.ratio, params.ranking, Scope.of(params))
    record = {"ratio": info["ratio"], "ranking": params.ranking, "structural": False}
    return PassResult(module, modified=info["sparsity"] > 0, record=record, info=info)
