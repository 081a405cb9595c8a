"""``prune.weights``: unstructured magnitude sparsity written into the weights.

The smallest-magnitude entries of every Conv/Linear weight in scope are set to zero, either
per layer (``local``: each layer loses ``ratio`` of its still non-zero entries) or with one
threshold over all of them (``global``); ``by random`` picks them at random (seeded). A second
prune removes ``ratio`` of what remains, so ``repeat 2 { prune 30% weights ... }`` ends at
1 - 0.7² = 51% sparsity. The zeros are written into the tensors; no ``torch.nn.utils.prune``
parametrization, ``weight_orig`` or mask buffer is left behind, so the state dict keeps its
keys and replay is the identity (the checkpoint carries the zeros). Later training keeps
the zeros through :mod:`runtime.sparsity` (the training engine re-applies the zero
pattern after every optimizer step).

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
from runtime.sparsity import prunable_weights

from .base import PassContext, PassResult, register_pass
from .scopes import Scope


def _targets(model: nn.Module, scope: Scope) -> list[tuple[str, torch.Tensor]]:
    return [(name, w) for name, w in prunable_weights(model) if scope.selects(name)]


def serialized_sizes(model: nn.Module) -> tuple[int, int]:
    """(dense, zlib level-1 compressed) byte sizes of ``torch.save(model.state_dict())``."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    data = buf.getvalue()
    return len(data), len(zlib.compress(data, 1))


def _n_zero(ratio: float, n: int) -> int:
    return min(math.floor(ratio * n + 0.5), n)


def entry_scores(w: torch.Tensor, criterion: str, generator: torch.Generator) -> torch.Tensor:
    """The score of every entry of ``w`` for ``l1``/``l2``/``random``; lower scores go first. Entries already zero score -1, so a prune removes ``ratio`` of
    the entries that are still non-zero (inside ``repeat``, each prune compounds)."""
    if criterion == "random":
        scores = torch.rand(w.shape, generator=generator)
    else:  # l1 and l2 rank single entries alike: by magnitude
        scores = w.detach().abs().float()
    return torch.where(w == 0, torch.full_like(scores, -1.0), scores)


def _n_new_zeros(ratio: float, scores: torch.Tensor) -> int:
    """How many of the lowest scores to zero: the zeros already there, plus ``ratio`` of the
    entries still non-zero."""
    zeros = int((scores < 0).sum())
    return zeros + _n_zero(ratio, scores.numel() - zeros)


@torch.no_grad()
def prune_weights_model(
    model: nn.Module,
    ratio: float,
    ranking: str = "local",
    scope: Scope | None = None,
    criterion: str = "l1",
    seed: int = 0,
) -> dict[str, Any]:
    """Zero ``ratio`` of the still non-zero weights of ``model`` in place (smallest magnitude
    first, or at random with ``criterion="random"``); return measurements."""
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
    generator = torch.Generator().manual_seed(seed)
    scored = [(w, entry_scores(w, criterion, generator)) for _, w in targets]
    if ranking == "global":
        flat = torch.cat([sc.reshape(-1) for _, sc in scored])
        k = _n_new_zeros(ratio, flat)
        idx = torch.argsort(flat, stable=True)[:k]
        keep = torch.ones_like(flat, dtype=torch.bool)
        keep[idx] = False
        offset = 0
        for w, _ in scored:
            n = w.numel()
            w.mul_(keep[offset : offset + n].reshape(w.shape).to(w.dtype))
            offset += n
    else:
        for w, sc in scored:
            flat = sc.reshape(-1)
            w.view(-1)[torch.argsort(flat, stable=True)[: _n_new_zeros(ratio, flat)]] = 0
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
    assert params.ratio is not None  # N:M patterns: see below
    info = prune_weights_model(
        module, params.ratio, params.ranking, Scope.of(params), params.criterion
    )
    record = {"ratio": info["ratio"], "ranking": params.ranking, "structural": False}
    return PassResult(module, modified=info["sparsity"] > 0, record=record, info=info)
