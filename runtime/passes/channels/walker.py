"""The walker: visits an fx graph in order and applies each node's rule from :mod:`.op_rules`.

It owns what every rule shares: the :class:`~.graph.DependencyGraph` being filled, the shapes
recorded by :func:`.shapes.record_shapes`, the :class:`~.op_rules.Info` of each node seen so
far, and the helpers rules use to couple (:meth:`GraphWalker.consume`) or block
(:meth:`GraphWalker.unknown`, :meth:`GraphWalker.block_inputs`) channels. Model inputs and
outputs are blocked here, as is any ``get_attr`` parameter used by an op no rule claimed, and
any shape read that could carry a channel count into Python.

A channel count read in Python (``B, N, C = x.shape``) is not blocked at the read: it becomes
a :class:`Sym` (``x``'s atoms, times a fraction that ``C // heads`` updates), which a reshape
may *tie* to the dim it sizes (:meth:`GraphWalker.tie`). Any other use of the symbol (a
``torch.zeros(B, C)``, a ``C ** -0.5``) escapes, and blocks ``x``'s channels then.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from ..trace import type_name
from .graph import DependencyGraph
from .op_rules import (
    METHOD_RULES,
    MODULE_RULES,
    Info,
    function_rule_for,
    target_name,
)


@dataclass
class Sym:
    """A Python int that counts channels: ``len(atoms) * num // den``, read from ``src``.

    ``num`` and ``den`` are kept exact (``C // 3`` only when 3 divides ``C``), so the value
    after pruning follows from how many of ``atoms`` survive."""

    src: fx.Node
    atoms: list[int]
    num: int = 1
    den: int = 1

    @property
    def value(self) -> int:
        return len(self.atoms) * self.num // self.den


class GraphWalker:
    """Visits an fx graph in order, propagating channel atoms and recording couplings."""

    def __init__(
        self,
        gm: fx.GraphModule,
        dg: DependencyGraph,
        shapes: dict[fx.Node, Any],
        root: nn.Module | None = None,
    ) -> None:
        self.gm, self.dg, self.shapes = gm, dg, shapes
        self.info: dict[fx.Node, Info | None] = {}
        self.handled: set[fx.Node] = set()
        self.size_of: dict[fx.Node, fx.Node] = {}  # size-tuple node -> tensor it describes
        #: Int-valued nodes that count some tensor's channels (see :class:`Sym`).
        self.syms: dict[fx.Node, Sym] = {}
        #: Tuple-valued nodes (``split``, ``chunk``): the channels of each piece, for getitem.
        self.pieces: dict[fx.Node, list[Info | None]] = {}
        #: Views of a parameter with one non-1 dim (``gamma.reshape(1, -1, 1, 1)``): the
        #: parameter's name, that dim in the view and in the parameter, so arithmetic can
        #: slice the parameter itself.
        self.param_views: dict[fx.Node, tuple[str, int, int]] = {}
        # The traced model's own modules: a GraphModule replaces the owners of get_attr-only
        # parameters (ConvNeXt's LayerNorm2d) with plain Modules, losing their types.
        self.modules = dict((root if root is not None else gm).named_modules())

    def run(self) -> None:
        for node in self.gm.graph.nodes:
            self.handled = set()
            out = self.visit(node)
            shape = self.shapes.get(node)
            if out is not None and (
                shape is None or out.dim >= len(shape) or shape[out.dim] != len(out.atoms)
            ):
                self.dg.block(out.atoms, f"lost track of channels at `{node.name}`")
                out = None
            self.info[node] = out
            for inp in node.all_input_nodes:
                if inp.op == "get_attr" and inp not in self.handled:
                    self.dg.opaque.add(str(inp.target))
                if inp in self.param_views and inp not in self.handled:
                    self.dg.opaque.add(self.param_views[inp][0])
                if inp in self.pieces and not (
                    node.target is operator.getitem and node.args[0] is inp
                ):  # the tuple itself escapes: its pieces keep their sizes
                    for piece in self.pieces[inp]:
                        if piece is not None:
                            self.dg.block(piece.atoms, f"`{node.name}` reads a tuple of pieces")
                if inp in self.size_of and not (
                    node.target is operator.getitem and node.args[0] is inp
                ):  # a whole size tuple used elsewhere: it may carry the channel count
                    self.block_count(self.size_of[inp], f"`{node.name}` reads a shape")
                if inp in self.syms and inp not in self.handled:
                    self.escape(node, inp)

    # -- dispatch --------------------------------------------------------------------------
    def visit(self, node: fx.Node) -> Info | None:
        if node.op == "placeholder":
            shape = self.shapes.get(node)
            if shape is not None and len(shape) >= 2:
                return Info(1, self.dg.new_atoms(int(shape[1]), "model input"))
            return None
        if node.op == "get_attr":
            return None
        if node.op == "output":
            self.block_inputs(node, "model output (classifier outputs are never pruned)")
            return None
        if node.op == "call_module":
            m = self.modules[str(node.target)]
            module_rule = MODULE_RULES.get(type(m)) or MODULE_RULES.get(type_name(type(m)))
            return module_rule(self, node, m) if module_rule else self.unknown(node)
        if node.op == "call_method":
            rule = METHOD_RULES.get(str(node.target))
        else:
            rule = function_rule_for(node.target)
        return rule(self, node) if rule else self.unknown(node)

    # -- what rules share ------------------------------------------------------------------
    def get(self, n: Any) -> Info | None:
        """The tracked channels of ``n`` (None for constants and untracked tensors)."""
        return self.info.get(n) if isinstance(n, fx.Node) else None

    def ndim(self, n: Any) -> int | None:
        shape = self.shapes.get(n) if isinstance(n, fx.Node) else None
        return None if shape is None else len(shape)

    def attr_shape(self, node: fx.Node) -> torch.Size | None:
        """Shape of the parameter or buffer a ``get_attr`` node reads."""
        value: torch.Tensor
        try:
            value = self.gm.get_parameter(str(node.target))
        except AttributeError:
            try:
                value = self.gm.get_buffer(str(node.target))
            except AttributeError:
                return None
        return value.shape

    def param_of(self, node: Any) -> tuple[str, Any, int, int] | None:
        """``(parameter name, shape, view dim, parameter dim)`` when ``node`` reads a
        parameter or a view of one; the dims are -1 for a plain ``get_attr`` (any dim of it
        may be the channel one)."""
        if not isinstance(node, fx.Node):
            return None
        if node.op == "get_attr":
            shape = self.attr_shape(node)
            return None if shape is None else (str(node.target), shape, -1, -1)
        view, shape = self.param_views.get(node), self.shapes.get(node)
        return None if view is None or shape is None else (view[0], shape, view[1], view[2])

    def block_inputs(self, node: fx.Node, reason: str, keep: Any = None) -> None:
        for inp in node.all_input_nodes:
            i = self.info.get(inp)
            if i is not None and inp is not keep:
                self.dg.block(i.atoms, reason)

    def block_channels(self, src: fx.Node, reason: str) -> None:
        i = self.info.get(src)
        if i is not None:
            self.dg.block(i.atoms, reason)

    def unknown(self, node: fx.Node) -> Info | None:
        """Block every channel flowing into an op we do not understand; its output is untracked."""
        why = f"`{node.name}` ({node.op} {target_name(node.target)}) is not understood"
        self.block_inputs(node, why)
        return None

    def consume(self, src: Any, atoms: list[int], dim: int | None, why: str) -> None:
        """A layer reads ``atoms`` from ``src`` along ``dim``: couple them or block both."""
        i = self.get(src)
        if i is not None and dim is not None and i.dim == dim and len(i.atoms) == len(atoms):
            self.dg.union(i.atoms, atoms)
            return
        if i is not None:
            self.dg.block(i.atoms, why)
        self.dg.block(atoms, why)

    # -- shape reads -----------------------------------------------------------------------
    def size_read(self, node: fx.Node, src: Any, dim: Any) -> Info | None:
        """``x.size()`` / ``x.shape`` / ``x.size(d)``: harmless unless it reads the channel count.

        A channel count read in Python (``B, G, P, D = x.shape``) can reshape *another* tensor
        (MaxViT's attention): it becomes a :class:`Sym`, blocked wherever it escapes; batch
        and spatial reads are free. So are those of a parameter's view (PiT's ``cls_tokens``,
        ``cls_token.expand(B, -1, -1)``, read for its token count).
        """
        if dim is not None:
            return self._count_read(node, src, dim)
        if self._tracked_dim(src) is not None:
            self.size_of[node] = src
        return None

    def size_item(self, node: fx.Node, sizes: fx.Node, index: Any) -> Info | None:
        """One entry of a size tuple; ``B, C, H, W = x.shape`` with ``C`` unused reads nothing."""
        if not node.users:
            return None
        return self._count_read(node, self.size_of[sizes], index)

    def _tracked_dim(self, src: Any) -> int | None:
        """The dim of ``src`` whose size pruning changes: its tracked one, or that of the
        parameter it views (claimed: reading a view's shape is no use of the parameter)."""
        i = self.get(src)
        if i is not None:
            return i.dim
        if isinstance(src, fx.Node) and src in self.param_views:
            self.handled.add(src)
            return self.param_views[src][1]
        return None

    def _count_read(self, node: fx.Node, src: Any, index: Any) -> Info | None:
        """``node`` reads ``src``'s shape at ``index`` (an int, a slice, or a computed value):
        the channel count read alone becomes a :class:`Sym`; in a slice, or computed, or of
        a parameter's view, it pins the channels."""
        d, nd = self._tracked_dim(src), self.ndim(src)
        if d is None or nd is None:
            return None
        if isinstance(index, int) and not isinstance(index, bool):
            hit = index % nd == d
        else:
            hit = not isinstance(index, slice) or d in range(nd)[index]
        i = self.get(src)
        if hit and i is not None and isinstance(index, int):
            self.syms[node] = Sym(src, i.atoms)
        elif hit:
            self.block_count(src, f"`{node.name}` reads the channel count")
        return None

    def block_count(self, src: fx.Node, reason: str) -> None:
        """Pin the channel count of ``src``, a tracked tensor or a parameter's view."""
        if src in self.param_views and self.get(src) is None:
            self.dg.opaque.add(self.param_views[src][0])
        self.block_channels(src, reason)

    def sym(self, n: Any) -> Sym | None:
        """The :class:`Sym` ``n`` is, if it counts channels."""
        return self.syms.get(n) if isinstance(n, fx.Node) else None

    def tie(self, n: Any, atoms: list[int]) -> bool:
        """Size a dim holding ``atoms`` by the symbol ``n``, if that stays true after pruning.

        The symbol's atoms are cut into ``den`` chunks, each coupled with ``atoms`` position by
        position: each chunk then keeps what ``atoms`` keeps, so ``C // den`` stays the dim's
        width. This couples by index where only the count must match (sound, stronger than
        needed). False (nothing coupled, ``n`` unclaimed) for any other symbol."""
        s = self.sym(n)
        if s is None or s.num != 1 or not atoms or len(s.atoms) != s.den * len(atoms):
            return False
        for c in range(s.den):
            self.dg.union(atoms, s.atoms[c * len(atoms) : (c + 1) * len(atoms)])
        self.handled.add(n)
        return True

    def escape(self, node: fx.Node, n: fx.Node) -> None:
        """The symbol ``n`` flows where no rule tied it: its source's count must not change."""
        s = self.syms[n]
        why = f"`{node.name}` uses the channel count of `{s.src.name}` (`{n.name}`)"
        self.dg.block(s.atoms, why)


__all__ = ["GraphWalker", "Sym"]
