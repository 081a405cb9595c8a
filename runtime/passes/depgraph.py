"""Channel-dependency graph: which channels must be pruned together, read off an fx graph.

Design (after Torch-Pruning's ``DependencyGraph``, not its code): every channel of every tensor
in the traced graph is an *atom*; ops that tie channels together (a residual ``add``, a
depthwise conv, a BatchNorm, squeeze-excitation's ``mul``, a layer-scale parameter) union atoms
in a union-find. ``cat`` concatenates atom lists (DenseNet's offsets come for free) and
``flatten`` repeats them (one conv channel -> ``H*W`` Linear features). Layers and parameters
are *endpoints* holding the atom of each of their channel slices, so the kept indices of any
endpoint are simply "the positions whose class survived".

Classes with the same set of producers (conv/linear outputs) form a :class:`Group`, pruned by
one ratio. Anything not understood *blocks* the atoms it touches (model inputs and outputs
too), and a group with one blocked class is never pruned: unsound cases become "unprunable",
never a wrong model. The endpoint graph is kept in networkx (edges = "pruning here forces
pruning there") for inspection and tests. :class:`GraphWalker` holds the per-op rules.

>>> import torch
>>> from torch import nn
>>> m = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1))
>>> g = build(m, torch.randn(1, 3, 8, 8))
>>> [grp.producers for grp in g.prunable_groups()]
[['0']]
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any, Literal

import networkx as nx
import torch
from torch import fx, nn
from torch.nn import functional as F

from recipe_lang.diagnostics import KdrError, Note, error

from .trace import example_batch, trace

EndpointKind = Literal["out", "in", "norm", "param"]


@dataclass
class Endpoint:
    """One prunable axis: a layer's out/in channels, a norm's channels, or a parameter dim."""

    target: str  # module qualified name, or parameter qualified name for kind "param"
    kind: EndpointKind
    atoms: list[int]
    dim: int = 0  # the sliced dim, for kind "param"

    @property
    def key(self) -> str:
        return f"{self.target}:{self.kind}" + (f"{self.dim}" if self.kind == "param" else "")


@dataclass
class Group:
    """Channels pruned together with one ratio: classes sharing the same producers."""

    index: int
    classes: list[int]
    producers: list[str]
    members: list[str] = field(default_factory=list)  # endpoint keys
    #: Balanced chunks (grouped convs, GroupNorm): positions into ``classes``, equal keep per chunk.
    chunks: list[list[int]] | None = None
    blocked: str | None = None

    @property
    def size(self) -> int:
        return len(self.classes)


class DependencyGraph:
    """Union-find over channel atoms, endpoints, groups, and the networkx endpoint graph."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.blocked: dict[int, str] = {}  # atom -> reason (resolved to roots in finalize)
        self.endpoints: dict[str, Endpoint] = {}
        self.partitions: list[list[list[int]]] = []  # chunks of atoms
        self.opaque: set[str] = set()  # get_attr targets used by ops we do not understand
        self.groups: list[Group] = []
        self.graph: nx.Graph = nx.Graph()
        self.roots: list[int] = []  # atom -> class root, filled by finalize()

    # -- union-find ------------------------------------------------------------------------
    def new_atoms(self, n: int, blocked: str | None = None) -> list[int]:
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        if blocked:
            for a in range(start, start + n):
                self.blocked[a] = blocked
        return list(range(start, start + n))

    def find(self, a: int) -> int:
        parent = self.parent
        root = a
        while parent[root] != root:
            root = parent[root]
        while parent[a] != root:
            parent[a], a = root, parent[a]
        return root

    def union(self, xs: list[int], ys: list[int]) -> None:
        for x, y in zip(xs, ys, strict=True):
            rx, ry = self.find(x), self.find(y)
            if rx != ry:
                self.parent[ry] = rx

    def block(self, atoms: list[int], reason: str) -> None:
        for a in atoms:
            self.blocked.setdefault(a, reason)

    def endpoint(self, target: str, kind: EndpointKind, size: int, dim: int = 0) -> Endpoint:
        """The endpoint for ``target`` (created once: a module called twice shares channels)."""
        ep = Endpoint(target, kind, [], dim)
        if ep.key not in self.endpoints:
            ep.atoms = self.new_atoms(size)
            self.endpoints[ep.key] = ep
        return self.endpoints[ep.key]

    # -- groups ----------------------------------------------------------------------------
    def finalize(self) -> None:
        """Resolve classes into groups, apply blocks and balanced-chunk constraints."""
        for t in self.opaque:  # a parameter read by an unknown op must keep its shape
            owner = t.rpartition(".")[0]
            for ep in self.endpoints.values():
                if ep.target in (t, owner):
                    self.block(ep.atoms, f"`{t}` is used by an operation kdr does not understand")
        self.roots = [self.find(a) for a in range(len(self.parent))]  # frozen from here on
        roots = self.roots
        blocked_roots: dict[int, str] = {}
        for a, why in self.blocked.items():
            blocked_roots.setdefault(roots[a], why)
        producers: dict[int, set[str]] = {}
        members: dict[int, set[str]] = {}
        for ep in self.endpoints.values():
            for r in {roots[a] for a in ep.atoms}:
                members.setdefault(r, set()).add(ep.key)
                if ep.kind == "out":
                    producers.setdefault(r, set()).add(ep.target)
        by_signature: dict[frozenset[str], Group] = {}
        self.class_group: dict[int, Group] = {}
        for ep in self.endpoints.values():
            if ep.kind != "out":
                continue
            for a in ep.atoms:
                r = roots[a]
                if r in self.class_group:
                    continue
                sig = frozenset(producers[r])
                grp = by_signature.get(sig)
                if grp is None:
                    grp = Group(len(self.groups), [], sorted(sig))
                    by_signature[sig] = grp
                    self.groups.append(grp)
                grp.classes.append(r)
                self.class_group[r] = grp
                if r in blocked_roots and grp.blocked is None:
                    grp.blocked = blocked_roots[r]
        signatures: dict[frozenset[str], int] = {}
        for keys in members.values():
            sig_keys = frozenset(keys)
            signatures[sig_keys] = signatures.get(sig_keys, 0) + 1
        for grp in self.groups:
            found: set[str] = set()
            for r in grp.classes:
                found |= members[r]
            grp.members = sorted(found)
        self._apply_partitions()
        self._build_nx(signatures)

    def _apply_partitions(self) -> None:
        per_group: dict[int, list[list[list[int]]]] = {}
        for chunks in self.partitions:
            roots = [[self.roots[a] for a in chunk] for chunk in chunks]
            grps = {self.class_group[r].index for c in roots for r in c if r in self.class_group}
            if len(grps) != 1:
                for gi in grps:
                    self.groups[gi].blocked = "balanced channel groups span several groups"
                continue
            grp = self.groups[grps.pop()]
            pos = {r: i for i, r in enumerate(grp.classes)}
            flat = [r for chunk in roots for r in chunk]
            if len(set(flat)) != len(flat) or set(flat) != set(grp.classes):
                grp.blocked = "grouped layer channels are not all coupled the same way"
                continue
            per_group.setdefault(grp.index, []).append([[pos[r] for r in c] for c in roots])
        for gi, parts in per_group.items():
            parts.sort(key=len, reverse=True)  # finest first
            finest = parts[0]
            where = {p: i for i, chunk in enumerate(finest) for p in chunk}
            for coarse in parts[1:]:
                if any(len({where[p] for p in c}) * len(finest[0]) != len(c) for c in coarse):
                    self.groups[gi].blocked = "incompatible grouped layers in one channel group"
            self.groups[gi].chunks = finest

    def _build_nx(self, signatures: dict[frozenset[str], int]) -> None:
        """Endpoints sharing a channel class are joined; ``channels`` counts shared classes."""
        for ep in self.endpoints.values():
            self.graph.add_node(ep.key, target=ep.target, kind=ep.kind, size=len(ep.atoms))
        for keys, count in signatures.items():
            ordered = sorted(keys)
            for i, a in enumerate(ordered):
                for b in ordered[i + 1 :]:
                    if self.graph.has_edge(a, b):
                        self.graph.edges[a, b]["channels"] += count
                    else:
                        self.graph.add_edge(a, b, channels=count)

    def prunable_groups(self) -> list[Group]:
        return [g for g in self.groups if g.blocked is None]

    def coupled(self, key: str) -> set[str]:
        """Endpoint keys sharing at least one channel with ``key``: pruning it prunes them."""
        return set(self.graph.neighbors(key))

    def keep_indices(self, pruned: set[int]) -> dict[str, list[int]]:
        """Kept positions per endpoint key, for the set of pruned class roots."""
        out: dict[str, list[int]] = {}
        for key, ep in self.endpoints.items():
            keep = [i for i, a in enumerate(ep.atoms) if self.roots[a] not in pruned]
            if len(keep) != len(ep.atoms):
                out[key] = keep
        return out


_CONVS = {nn.Conv1d, nn.Conv2d, nn.Conv3d}
_NORMS = {nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm}
_NORMS |= {nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d}
#: Modules that act on each channel independently and keep the channel dim where it is.
_PASS_MODULES = {
    nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.Sigmoid, nn.Tanh,
    nn.LeakyReLU, nn.ELU, nn.SELU, nn.Mish, nn.Hardtanh, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
    nn.Dropout3d, nn.AlphaDropout, nn.Identity, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
    nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
    nn.Upsample, nn.UpsamplingNearest2d, nn.UpsamplingBilinear2d,
}  # fmt: skip
_PASS_FUNCS: set[Any] = {
    F.relu, F.relu6, F.gelu, F.silu, F.hardswish, F.hardsigmoid, F.sigmoid, F.tanh, F.leaky_relu,
    F.elu, F.selu, F.mish, F.hardtanh, F.dropout, F.dropout1d, F.dropout2d, F.dropout3d,
    F.alpha_dropout, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d,
    F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.avg_pool1d, F.avg_pool2d, F.avg_pool3d,
    F.max_pool1d, F.max_pool2d, F.max_pool3d, F.interpolate, torch.relu, torch.sigmoid,
    torch.tanh, torch.clone, operator.neg,
}  # fmt: skip
_PASS_METHODS = {"relu", "relu_", "sigmoid", "sigmoid_", "tanh", "contiguous", "clone", "float",
                 "to", "detach", "neg"}  # fmt: skip
_BINARY_FUNCS: set[Any] = {
    operator.add, operator.iadd, operator.mul, operator.imul, operator.sub, operator.isub,
    operator.truediv, operator.itruediv, torch.add, torch.mul, torch.sub, torch.div,
}  # fmt: skip
_BINARY_METHODS = {"add", "add_", "mul", "mul_", "sub", "sub_", "div", "div_"}
_REDUCE_METHODS = {"mean", "sum", "amax", "amin"}
_REDUCE_FUNCS: set[Any] = {torch.mean, torch.sum, torch.amax, torch.amin}
_META_ATTRS = {"ndim", "dtype", "device", "is_cuda", "requires_grad", "layout"}


@dataclass
class Info:
    """The tracked channel dim of a tensor and the atom of each channel along it."""

    dim: int
    atoms: list[int]


def _chunks(atoms: list[int], n: int) -> list[list[int]]:
    size = len(atoms) // n
    return [atoms[k * size : (k + 1) * size] for k in range(n)]


def _prod(xs: Any) -> int:
    return int(math.prod(int(x) for x in xs))


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
                if inp in self.size_of and not (
                    node.target is operator.getitem and node.args[0] is inp
                ):  # a whole size tuple used elsewhere: it may carry the channel count
                    self.block_channels(self.size_of[inp], f"`{node.name}` reads a shape")

    def size_read(self, node: fx.Node, src: Any, dim: Any) -> Info | None:
        """``x.size()`` / ``x.shape`` / ``x.size(d)``: harmless unless it reads the channel count.

        A channel count read in Python (``B, G, P, D = x.shape``) can reshape *another* tensor
        (MaxViT's attention), so it pins ``x``'s channels; batch and spatial reads are free.
        """
        i, nd = self._get(src), self._ndim(src)
        if i is None or nd is None:
            return None
        if dim is None:
            self.size_of[node] = src
        elif not isinstance(dim, int) or dim % nd == i.dim:
            self.block_channels(src, f"`{node.name}` reads the channel count")
        return None

    def size_item(self, node: fx.Node, sizes: fx.Node, index: Any) -> Info | None:
        src = self.size_of[sizes]
        i, nd = self._get(src), self._ndim(src)
        if i is None or nd is None:
            return None
        if isinstance(index, int):
            hit = index % nd == i.dim
        else:
            hit = not isinstance(index, slice) or i.dim in range(nd)[index]
        if hit:
            self.block_channels(src, f"`{node.name}` reads the channel count")
        return None

    def block_channels(self, src: fx.Node, reason: str) -> None:
        i = self.info.get(src)
        if i is not None:
            self.dg.block(i.atoms, reason)

    # -- helpers ---------------------------------------------------------------------------
    def _get(self, n: Any) -> Info | None:
        return self.info.get(n) if isinstance(n, fx.Node) else None

    def _ndim(self, n: Any) -> int | None:
        shape = self.shapes.get(n) if isinstance(n, fx.Node) else None
        return None if shape is None else len(shape)

    def block_inputs(self, node: fx.Node, reason: str, keep: Any = None) -> None:
        for inp in node.all_input_nodes:
            i = self.info.get(inp)
            if i is not None and inp is not keep:
                self.dg.block(i.atoms, reason)

    def unknown(self, node: fx.Node) -> Info | None:
        """Block every channel flowing into an op we do not understand; its output is untracked."""
        self.block_inputs(node, f"`{node.name}` ({node.op} {_name(node.target)}) is not understood")
        return None

    def consume(self, src: Any, atoms: list[int], dim: int | None, why: str) -> None:
        """A layer reads ``atoms`` from ``src`` along ``dim``: couple them or block both."""
        i = self._get(src)
        if i is not None and dim is not None and i.dim == dim and len(i.atoms) == len(atoms):
            self.dg.union(i.atoms, atoms)
            return
        if i is not None:
            self.dg.block(i.atoms, why)
        self.dg.block(atoms, why)

    # -- dispatch --------------------------------------------------------------------------
    def visit(self, node: fx.Node) -> Info | None:
        dg = self.dg
        args: Any = node.args
        kw: Any = node.kwargs
        if node.op == "placeholder":
            shape = self.shapes.get(node)
            if shape is not None and len(shape) >= 2:
                return Info(1, dg.new_atoms(int(shape[1]), "model input"))
            return None
        if node.op == "get_attr":
            return None
        if node.op == "output":
            self.block_inputs(node, "model output (classifier outputs are never pruned)")
            return None
        if node.op == "call_module":
            return self.visit_module(node, self.modules[str(node.target)])
        target = node.target
        if node.op == "call_method":
            name = str(target)
            if name == "size":
                return self.size_read(node, args[0], _arg(node, 1, "dim"))
            if name == "dim":
                return None
            if name in _PASS_METHODS:
                return self.passthrough(node)
            if name in _BINARY_METHODS:
                return self.binary(node, args[0], args[1] if len(args) > 1 else kw.get("other"))
            if name in _REDUCE_METHODS:
                return self.reduce(node, _arg(node, 1, "dim"), bool(_arg(node, 2, "keepdim")))
            if name == "flatten":
                return self.flatten(
                    node, _arg(node, 1, "start_dim", 0), _arg(node, 2, "end_dim", -1)
                )
            if name in ("view", "reshape"):
                shape = (
                    args[1] if len(args) == 2 and isinstance(args[1], (list, tuple)) else args[1:]
                )
                return self.reshape(node, list(shape))
            if name in ("squeeze", "unsqueeze"):
                return self.reshape(node, None)
            if name == "permute":
                dims = (
                    args[1] if len(args) == 2 and isinstance(args[1], (list, tuple)) else args[1:]
                )
                return self.permute(node, list(dims))
            if name in ("transpose", "swapaxes"):
                return self.transpose(node, args[1], args[2])
            return self.unknown(node)
        if target is getattr and args[1] == "shape":
            return self.size_read(node, args[0], None)
        if target is getattr and args[1] in _META_ATTRS:
            return None
        if target is operator.getitem and args[0] in self.size_of:
            return self.size_item(node, args[0], args[1])
        if target in _PASS_FUNCS or _is_stochastic_depth(target):
            return self.passthrough(node)
        if target in _BINARY_FUNCS:
            return self.binary(node, _arg(node, 0, "input"), _arg(node, 1, "other"))
        if target in _REDUCE_FUNCS:
            return self.reduce(node, _arg(node, 1, "dim"), bool(_arg(node, 2, "keepdim")))
        if target is torch.flatten:
            return self.flatten(node, _arg(node, 1, "start_dim", 0), _arg(node, 2, "end_dim", -1))
        if target is torch.reshape:
            return self.reshape(node, list(_arg(node, 1, "shape")))
        if target in (torch.squeeze, torch.unsqueeze):
            return self.reshape(node, None)
        if target is torch.permute:
            return self.permute(node, list(_arg(node, 1, "dims")))
        if target in (torch.transpose, torch.swapaxes):
            return self.transpose(node, args[1], args[2])
        if target in (torch.cat, torch.concat, torch.concatenate):
            return self.cat(node, list(_arg(node, 0, "tensors")), _arg(node, 1, "dim", 0))
        if target is F.layer_norm:
            return self.functional_layer_norm(node)
        return self.unknown(node)

    def visit_module(self, node: fx.Node, m: nn.Module) -> Info | None:
        src: Any = node.args[0] if node.args else None
        t, name = type(m), str(node.target)
        if t in _CONVS and isinstance(m, nn.modules.conv._ConvNd):
            ep_in = self.dg.endpoint(name, "in", m.in_channels)
            ep_out = self.dg.endpoint(name, "out", m.out_channels)
            self.consume(src, ep_in.atoms, 1, f"input of conv `{name}` not tracked")
            if m.groups > 1 and m.in_channels == m.out_channels:
                self.dg.union(ep_in.atoms, ep_out.atoms)
                if m.groups != m.in_channels:  # grouped, not depthwise: equal keep per group
                    self.dg.partitions.append(_chunks(ep_out.atoms, m.groups))
            elif m.groups > 1:
                self.dg.block(ep_in.atoms + ep_out.atoms, f"grouped conv `{name}` with in != out")
            self.block_inputs(node, f"extra input of `{name}`", keep=src)
            return Info(1, ep_out.atoms)
        if t is nn.Linear and isinstance(m, nn.Linear):
            nd = self._ndim(src)
            ep_in = self.dg.endpoint(name, "in", m.in_features)
            ep_out = self.dg.endpoint(name, "out", m.out_features)
            last = None if nd is None else nd - 1
            self.consume(src, ep_in.atoms, last, f"input of linear `{name}` not channel-last")
            return None if last is None else Info(last, ep_out.atoms)
        if t in _NORMS or t is nn.GroupNorm:
            feats: Any = m.num_channels if isinstance(m, nn.GroupNorm) else m.num_features
            num = int(feats)
            ep = self.dg.endpoint(name, "norm", num)
            self.consume(src, ep.atoms, 1, f"input of norm `{name}` not tracked")
            if isinstance(m, nn.GroupNorm) and 1 < m.num_groups < num:
                self.dg.partitions.append(_chunks(ep.atoms, m.num_groups))
            return Info(1, ep.atoms)
        if t is nn.LayerNorm and isinstance(m, nn.LayerNorm):
            owner = name if m.elementwise_affine else None
            return self.layer_norm(node, src, tuple(m.normalized_shape), owner)
        if t in _PASS_MODULES or (isinstance(m, nn.PReLU) and m.num_parameters == 1):
            return self.passthrough(node)
        if t is nn.Flatten and isinstance(m, nn.Flatten):
            return self.flatten(node, m.start_dim, m.end_dim)
        return self.unknown(node)

    # -- op rules --------------------------------------------------------------------------
    def passthrough(self, node: fx.Node) -> Info | None:
        src: Any = node.args[0]
        self.block_inputs(node, f"extra input of `{node.name}`", keep=src)
        i, nd = self._get(src), self._ndim(src)
        if i is None or nd != self._ndim(node):
            return self.unknown(node) if i is not None else None
        return Info(i.dim, i.atoms)

    def binary(self, node: fx.Node, a: Any, b: Any) -> Info | None:
        """Element-wise op with broadcasting: residual adds, SE scales, layer-scale params."""
        nd = self._ndim(node)
        if nd is None:
            return self.unknown(node)
        carriers: list[tuple[int, Info]] = []
        for x in (a, b):
            i, xd = self._get(x), self._ndim(x)
            if i is not None and xd is not None:
                carriers.append((i.dim + nd - xd, i))
        if not carriers:
            return None
        dims = {d for d, _ in carriers}
        atoms = carriers[0][1].atoms
        if len(dims) != 1 or any(len(i.atoms) != len(atoms) for _, i in carriers):
            return self.unknown(node)
        d, size = dims.pop(), len(atoms)
        for _, i in carriers[1:]:
            self.dg.union(atoms, i.atoms)
        for x in (a, b):
            if not isinstance(x, fx.Node) or self._get(x) is not None:
                continue
            shape = self._attr_shape(x) if x.op == "get_attr" else self.shapes.get(x)
            if shape is None:
                continue  # a Python number
            xdim = d - (nd - len(shape))
            if xdim < 0 or shape[xdim] == 1 or size == 1:
                self.handled.add(x)
            elif shape[xdim] == size and x.op == "get_attr":
                self.handled.add(x)
                self.dg.union(atoms, self.dg.endpoint(str(x.target), "param", size, xdim).atoms)
            else:
                self.dg.block(atoms, f"`{node.name}` mixes channels with an untracked tensor")
        return Info(d, atoms)

    def _attr_shape(self, node: fx.Node) -> torch.Size | None:
        value: torch.Tensor
        try:
            value = self.gm.get_parameter(str(node.target))
        except AttributeError:
            try:
                value = self.gm.get_buffer(str(node.target))
            except AttributeError:
                return None
        return value.shape

    def reduce(self, node: fx.Node, dims: Any, keepdim: bool) -> Info | None:
        i, nd = self._get(node.args[0]), self._ndim(node.args[0])
        if i is None or nd is None:
            return None
        if dims is None or (isinstance(dims, (list, tuple)) and not dims):
            return self.unknown(node)
        dl = [int(d) % nd for d in (dims if isinstance(dims, (list, tuple)) else [dims])]
        if i.dim in dl:
            return self.unknown(node)
        return Info(i.dim if keepdim else i.dim - sum(d < i.dim for d in dl), i.atoms)

    def flatten(self, node: fx.Node, start: int, end: int) -> Info | None:
        src: Any = node.args[0]
        i, shape = self._get(src), self.shapes.get(src)
        if i is None or shape is None:
            return None
        start, end = start % len(shape), end % len(shape)
        if i.dim < start:
            return Info(i.dim, i.atoms)
        if i.dim > end:
            return Info(i.dim - (end - start), i.atoms)
        size, inner = len(i.atoms), _prod(shape[i.dim + 1 : end + 1])
        outer = _prod(shape[start : i.dim])
        return Info(start, [i.atoms[(k // inner) % size] for k in range(outer * size * inner)])

    def reshape(self, node: fx.Node, shape_args: list[Any] | None) -> Info | None:
        """view/reshape/squeeze: channel dim kept, or merged with the dims right after it.

        The requested size at the channel position must be ``-1``: a constant or a count read
        from some tensor in Python would be stale once channels are removed.
        """
        src: Any = node.args[0]
        i, sout = self._get(src), self.shapes.get(node)
        sin = self.shapes.get(src) if isinstance(src, fx.Node) else None
        if i is None or sin is None or sout is None:
            return None
        d, size = i.dim, len(i.atoms)
        pre = _prod(sin[:d])
        for j in range(len(sout)):
            if _prod(sout[:j]) != pre:
                continue
            if shape_args is not None and (len(shape_args) != len(sout) or shape_args[j] != -1):
                break  # a constant or computed channel count may be stale after pruning
            for k in range(d + 1, len(sin) + 1):
                inner = _prod(sin[d + 1 : k])
                if sout[j] == size * inner:
                    return Info(j, [a for a in i.atoms for _ in range(inner)])
        return self.unknown(node)

    def permute(self, node: fx.Node, dims: list[int]) -> Info | None:
        i, nd = self._get(node.args[0]), self._ndim(node.args[0])
        if i is None or nd is None:
            return None
        return Info([int(x) % nd for x in dims].index(i.dim), i.atoms)

    def transpose(self, node: fx.Node, d0: int, d1: int) -> Info | None:
        i, nd = self._get(node.args[0]), self._ndim(node.args[0])
        if i is None or nd is None:
            return None
        swap = {d0 % nd: d1 % nd, d1 % nd: d0 % nd}
        return Info(swap.get(i.dim, i.dim), i.atoms)

    def cat(self, node: fx.Node, tensors: list[Any], dim: int) -> Info | None:
        nd = self._ndim(node)
        infos = [self._get(t) for t in tensors]
        if nd is None or all(i is None for i in infos):
            return None
        dim = dim % nd
        if any(i is not None and i.dim == dim for i in infos):  # concatenating channels
            atoms: list[int] = []
            for t, i in zip(tensors, infos, strict=True):
                if i is not None and i.dim == dim:
                    atoms += i.atoms
                else:
                    if i is not None:
                        self.dg.block(i.atoms, f"`{node.name}` mixes channel dims")
                    shape = self.shapes.get(t)
                    n = int(shape[dim]) if shape is not None else 0
                    atoms += self.dg.new_atoms(n, f"untracked input of `{node.name}`")
            return Info(dim, atoms)
        known = [i for i in infos if i is not None]
        if len(known) != len(infos) or len({(i.dim, len(i.atoms)) for i in known}) != 1:
            return self.unknown(node)
        for i in known[1:]:
            self.dg.union(known[0].atoms, i.atoms)
        return Info(known[0].dim, known[0].atoms)

    def layer_norm(
        self, node: fx.Node, src: Any, normalized: tuple[int, ...], owner: str | None
    ) -> Info | None:
        i, nd = self._get(src), self._ndim(src)
        if i is None or nd is None:
            return None
        if i.dim < nd - len(normalized):
            return Info(i.dim, i.atoms)  # normalises other dims only
        if owner is not None and len(normalized) == 1 and i.dim == nd - 1:
            ep = self.dg.endpoint(owner, "norm", normalized[0])
            self.dg.union(i.atoms, ep.atoms)
            return Info(i.dim, ep.atoms)
        return self.unknown(node)

    def functional_layer_norm(self, node: fx.Node) -> Info | None:
        """``F.layer_norm`` with a LayerNorm subclass's own parameters (ConvNeXt's LayerNorm2d)."""
        weight, bias = _arg(node, 2, "weight"), _arg(node, 3, "bias")
        normalized = tuple(_arg(node, 1, "normalized_shape"))
        owner = None
        if isinstance(weight, fx.Node) and weight.op == "get_attr":
            cand = str(weight.target).rpartition(".")[0]
            mod = self.modules.get(cand)
            bias_ok = bias is None or (
                isinstance(bias, fx.Node) and str(bias.target) == f"{cand}.bias"
            )
            if isinstance(mod, nn.LayerNorm) and str(weight.target) == f"{cand}.weight" and bias_ok:
                owner = cand
                self.handled |= {weight} | ({bias} if isinstance(bias, fx.Node) else set())
        return self.layer_norm(node, node.args[0], normalized, owner)


def _arg(node: fx.Node, pos: int, name: str, default: Any = None) -> Any:
    if len(node.args) > pos:
        return node.args[pos]
    return node.kwargs.get(name, default)


def _name(target: Any) -> str:
    return str(getattr(target, "__name__", target))


def _is_stochastic_depth(target: Any) -> bool:
    """torchvision's fx-wrapped ``stochastic_depth``: per-sample noise, channel-independent."""
    return _name(target) == "stochastic_depth" and str(
        getattr(target, "__module__", "")
    ).startswith("torchvision")


def record_shapes(gm: fx.GraphModule, x: torch.Tensor) -> dict[fx.Node, torch.Size | None]:
    """Run ``gm`` once, remembering every node's tensor shape (None for non-tensors)."""
    shapes: dict[fx.Node, torch.Size | None] = {}

    class Recorder(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            result = super().run_node(n)
            shapes[n] = result.shape if isinstance(result, torch.Tensor) else None
            return result

    # Train-mode BatchNorm updates running stats: snapshot and restore the buffers.
    saved = {name: b.clone() for name, b in gm.named_buffers()}
    try:
        with torch.no_grad():
            Recorder(gm).run(x)
    except Exception as exc:  # the model rejects the example batch in this mode
        mode = "training" if gm.training else "eval"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KdrError(
            error(
                "KDR500",
                f"cannot analyse the model's graph in {mode} mode: running the example batch "
                f"{tuple(x.shape)} failed after node `{list(shapes)[-1].name if shapes else '?'}`"
                f": {reason}",
                None,
                Note(
                    kind="help",
                    message="use example inputs the model accepts in both modes (auxiliary "
                    "heads often need larger images), or scope the failing module out",
                ),
            )
        ) from exc
    finally:
        with torch.no_grad():
            for name, b in gm.named_buffers():
                b.copy_(saved[name])
    return shapes


def build(
    model: nn.Module, example_inputs: torch.Tensor, leaf_modules: tuple[str, ...] = ()
) -> DependencyGraph:
    """Trace ``model`` in train and eval mode and build its :class:`DependencyGraph`.

    Both modes are analysed because their graphs can differ (GoogLeNet's auxiliary heads run
    only in training); constraints from both are merged so the pruned model works in either.
    """

    dg = DependencyGraph()
    was_training = model.training
    seen: list[list[tuple[str, str]]] = []
    try:
        for training in (False, True):
            model.train(training)
            gm = trace(model, leaf_modules)
            gm.train(training)
            signature = [(n.op, _name(n.target)) for n in gm.graph.nodes]
            if signature in seen:
                continue  # same ops in both modes: one walk (and one forward) is enough
            seen.append(signature)
            x = example_batch(example_inputs) if training else example_inputs
            GraphWalker(gm, dg, record_shapes(gm, x), model).run()
    finally:
        model.train(was_training)
    owners: dict[int, set[str]] = {}
    for ep in dg.endpoints.values():
        if ep.kind != "param":
            for p in model.get_submodule(ep.target).parameters(recurse=False):
                owners.setdefault(id(p), set()).add(ep.target)
    for names in owners.values():
        if len(names) > 1:  # tied weights: slicing one module would desynchronise the other
            for ep in dg.endpoints.values():
                if ep.target in names:
                    dg.block(ep.atoms, f"parameters shared by {sorted(names)}")
    dg.finalize()
    return dg
