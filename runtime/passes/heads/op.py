"""``prune.heads``: the plan op that removes whole attention heads (:mod:`.prune`).

The record is ``{"heads": {module_path: kept_head_indices}}``; :func:`replay_heads` applies it
to a freshly built model (converting ``nn.MultiheadAttention`` to its prunable stand-in as the
pass did), so a checkpoint of the pruned model loads after replay.

>>> from runtime.passes.base import PASSES
>>> PASSES["prune.heads"].replay is replay_heads
True
"""

from __future__ import annotations

from typing import Any

from torch import nn

from compiler.ops import PruneHeadsParams

from ..base import PassContext, PassResult, register_pass
from ..scopes import Scope
from .prune import apply_heads, prune_heads_of

#: Seed of the ``random`` criterion (the plan carries none; the dry run must cut the same).
SEED = 0


def replay_heads(model: nn.Module, record: dict[str, Any]) -> nn.Module:
    return apply_heads(model, record)


@register_pass("prune.heads", replay=replay_heads)
def prune_heads(module: nn.Module, params: PruneHeadsParams, ctx: PassContext) -> PassResult:
    """Prune ``params.ratio`` of the attention heads in scope."""
    record, info = prune_heads_of(
        module,
        params.ratio,
        params.criterion,
        params.ranking,
        Scope.of(params),
        ctx.batches,
        SEED,
    )
    modified = info["heads_after"] < info["heads_before"]
    return PassResult(module, modified=modified, record=record, info=info)


__all__ = ["prune_heads", "replay_heads"]
