"""Head widths that a model keeps as an attribute and passes as a constant to a reshape.

PVT-v2's attention splits its key/value projection with
``kv.reshape(B, -1, 2, self.num_heads, self.head_dim)``: the head width is a constant in the
traced graph, stale once the head width is pruned, so :func:`.rules_heads.split_heads` only
accepts it when the module running the reshape is a family listed here (its ``forward`` read by
hand: the attribute is the reshape's last size and has no other use). The split then couples
the heads as for a ``-1``, and :func:`fix_head_dims` rewrites the attribute from the pruned
layers after every cut and replay (called by :func:`.attr_dims.fix_attributes`). Keyed by type
name, so nothing here imports the libraries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ..trace import type_name


def _fix_pvt_v2(m: Any) -> None:
    m.head_dim = int(m.q.out_features) // int(m.num_heads)  # q's heads are cut like kv's


#: type name -> (the head width its forward passes, how to rewrite it from the layers).
HEAD_DIMS: dict[str, tuple[Callable[[Any], object], Callable[[Any], None]]] = {
    "timm.models.pvt_v2.Attention": (lambda m: m.head_dim, _fix_pvt_v2),
}


def backed_head_dim(module: nn.Module | None, value: object) -> bool:
    """Whether ``value``, the last size of a reshape run by ``module``'s forward, is the
    family's head-width attribute (which :func:`fix_head_dims` keeps true)."""
    entry = HEAD_DIMS.get(type_name(type(module))) if module is not None else None
    return entry is not None and isinstance(value, int) and entry[0](module) == value


def fix_head_dims(m: nn.Module) -> None:
    """After surgery: reset ``m``'s head-width attribute, if its family has one."""
    entry = HEAD_DIMS.get(type_name(type(m)))
    if entry is not None:
        entry[1](m)


__all__ = ["HEAD_DIMS", "backed_head_dim", "fix_head_dims"]
