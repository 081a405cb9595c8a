"""``prune.weights``: unstructured magnitude sparsity written into the weights, or an N:M pattern.

The smallest-magnitude entries of every Conv/Linear weight in scope are set to zero, either
per layer (``local``: each layer loses ``ratio`` of its still non-zero entries) or with one
threshold over all of them (``global``); ``by random`` picks them at random (seeded). A second
prune removes ``ratio`` of what remains, so ``repeat 2 { prune 30% weights ... }`` ends at
1 - 0.7² = 51% sparsity. The zeros are written into the tensors; no ``torch.nn.utils.prune``
parametrization, ``weight_orig`` or mask buffer is left behind, so the state dict keeps its
keys and replay is the identity (the checkpoint carries the zeros). Later training keeps
the zeros through :mod:`runtime.sparsity` (the training engine re-applies the zero
pattern after every optimizer step).

``prune 2:4 weights`` (``params.pattern``, any N:M with N < M): every group of ``m``
consecutive entries of a row of ``weight.reshape(out, -1)`` (the flattened input dimension)
keeps its ``n`` highest-scoring entries; entries already zero go first, so the pattern keeps
an earlier prune's zeros. Layers whose rows do not divide by ``m`` are skipped, as NVIDIA's
ASP skips them, and listed in ``info["layers_skipped"]``.

Sparse weights do not run faster on dense kernels; what they buy is a smaller *compressed*
checkpoint. ``info["compressed_size_bytes"]`` is the length of the zlib-compressed (level 1)
``torch.save`` serialisation of the state dict, beside ``dense_size_bytes`` uncompressed
(:func:`runtime.weight_stats.serialized_sizes`).

>>> import torch
>>> from torch import nn
>>> m = nn.Linear(10, 10)
>>> info = prune_weights_model(m, 0.5)
>>> int((m.weight == 0).sum())
50
>>> info = prune_nm_model(nn.Linear(8, 4), 2, 4)
>>> info["pattern"], info["sparsity"]
('2:4', 0.5)
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from compiler.ops import PruneWeightsParams
from compiler.vocab import RANKINGS, TRAINING_CRITERIA, WEIGHT_CRITERIA
from recipe_lang.diagnostics import KdrError, Note, error
from runtime.sparsity import prunable_weights
from runtime.weight_stats import COMPRESSED_SIZE_METHOD, nm_rows, serialized_sizes

from .base import PassContext, PassResult, register_pass
from .scopes import Scope

#: Criteria that score a single entry without training (``movement`` needs a gradual stage).
ONE_SHOT_CRITERIA = tuple(c for c in WEIGHT_CRITERIA if c not in TRAINING_CRITERIA)


def _kdr502(message: str, help_text: str) -> KdrError:
    return KdrError(error("KDR502", message, None, Note(kind="help", message=help_text)))


def _targets(model: nn.Module, scope: Scope, criterion: str) -> list[tuple[str, torch.Tensor]]:
    if criterion not in ONE_SHOT_CRITERIA:
        raise _kdr502(
            f"`by {criterion}` cannot rank weights in a one-shot prune",
            f"use one of {', '.join(ONE_SHOT_CRITERIA)}, or prune `gradually` over a training",
        )
    targets = [(name, w) for name, w in prunable_weights(model) if scope.selects(name)]
    if not targets:
        raise _kdr502(
            "nothing to prune: no Conv/Linear weight is in scope",
            "check the `in` / `except` scopes of this prune",
        )
    return targets


def _measured(model: nn.Module, pruned: list[tuple[str, torch.Tensor]]) -> dict[str, Any]:
    """Sparsity of the pruned layers and of the whole model, and its serialized sizes."""
    zeros = sum(int((w == 0).sum()) for _, w in pruned)
    total = sum(w.numel() for _, w in pruned)
    all_params = sum(p.numel() for p in model.parameters())
    all_zeros = sum(int((p == 0).sum()) for p in model.parameters())
    dense, compressed = serialized_sizes(model)
    return {
        "layers": len(pruned),
        "sparsity": zeros / total if total else 0.0,
        "model_sparsity": all_zeros / all_params if all_params else 0.0,
        "dense_size_bytes": dense,
        "compressed_size_bytes": compressed,
        "compressed_size_method": COMPRESSED_SIZE_METHOD,
    }


def _n_zero(ratio: float, n: int) -> int:
    return min(math.floor(ratio * n + 0.5), n)


def entry_scores(w: torch.Tensor, criterion: str, generator: torch.Generator) -> torch.Tensor:
    """The score of every entry of ``w`` for ``l1``/``l2``/``random``; lower scores go first.
    Entries already zero score -1, so a prune removes ``ratio`` of the entries that are still
    non-zero (inside ``repeat``, each prune compounds) and an N:M pattern keeps old zeros."""
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
        raise _kdr502(
            f"weight sparsity must be in [0, 1), got {ratio!r}", "write e.g. `prune 80% weights`"
        )
    if ranking not in RANKINGS:
        raise _kdr502(f"unknown ranking `{ranking}`", f"use one of {', '.join(RANKINGS)}")
    targets = _targets(model, scope or Scope(), criterion)
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
    return {"ratio": float(ratio), "ranking": ranking, **_measured(model, targets)}


@torch.no_grad()
def prune_nm_model(
    model: nn.Module,
    n: int,
    m: int,
    scope: Scope | None = None,
    criterion: str = "l1",
    seed: int = 0,
) -> dict[str, Any]:
    """Keep the ``n`` highest-scoring entries of every group of ``m`` consecutive entries of
    each row of every Conv/Linear weight in scope (in place); return measurements, with the
    layers whose rows do not divide by ``m`` in ``layers_skipped`` (name: reason)."""
    if not 0 < n < m:
        raise _kdr502(f"an N:M pattern needs 0 < N < M, got {n}:{m}", "write e.g. `prune 2:4`")
    targets = _targets(model, scope or Scope(), criterion)
    generator = torch.Generator().manual_seed(seed)
    pruned: list[tuple[str, torch.Tensor]] = []
    skipped: dict[str, str] = {}
    for name, w in targets:
        groups = nm_rows(entry_scores(w, criterion, generator), m)
        if groups is None:
            row = w[0].numel()
            skipped[name] = f"its rows have {row} entries, not a multiple of {m}"
            continue
        lowest = torch.argsort(groups, dim=-1, stable=True)[..., : m - n]
        drop = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, lowest, True)
        w.masked_fill_(drop.reshape(w.shape).to(w.device), 0)
        pruned.append((name, w))
    if not pruned:
        raise _kdr502(
            f"no layer in scope fits the {n}:{m} pattern: "
            + "; ".join(f"`{k}`: {v}" for k, v in list(skipped.items())[:3])
            + ("; ..." if len(skipped) > 3 else ""),
            f"N:M groups run along a row of the weight (in_features, or in_channels / groups "
            f"x kernel size): scope in layers whose rows divide by {m}, or prune `P% weights`",
        )
    info = {"pattern": f"{n}:{m}", "criterion": criterion, **_measured(model, pruned)}
    info["layers_skipped"] = skipped
    return info


def replay_weights(model: nn.Module, record: dict[str, Any]) -> nn.Module:
    """Nothing structural to rebuild: the zeros travel inside the checkpoint's weights."""
    return model


@register_pass("prune.weights", replay=replay_weights)
def prune_weights(module: nn.Module, params: PruneWeightsParams, ctx: PassContext) -> PassResult:
    """The plan op: zero ``params.ratio`` of the weights in scope, ranked by ``params.ranking``,
    or keep ``params.pattern`` (N:M) in every group."""
    scope = Scope.of(params)
    if params.pattern is not None:
        n, m = params.pattern.n, params.pattern.m
        info = prune_nm_model(module, n, m, scope, params.criterion)
        record: dict[str, Any] = {"pattern": info["pattern"], "structural": False}
    else:
        assert params.ratio is not None  # PruneWeightsParams: exactly one of ratio and pattern
        info = prune_weights_model(module, params.ratio, params.ranking, scope, params.criterion)
        record = {"ratio": info["ratio"], "ranking": params.ranking, "structural": False}
    return PassResult(module, modified=info["sparsity"] > 0, record=record, info=info)
