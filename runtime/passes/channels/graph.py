"""The channel-dependency graph: a union-find over channel atoms, and the layers that hold them.

Design (after Torch-Pruning's ``DependencyGraph``, not its code): every channel of every tensor
in the traced graph is an *atom*; ops that tie channels together (a residual ``add``, a
depthwise conv, a BatchNorm, squeeze-excitation's ``mul``, a layer-scale parameter) union atoms
(the op rules, :mod:`.op_rules`). Layers and parameters are *endpoints* holding the atom of each
of their channel slices, so the kept indices of any endpoint are simply "the positions whose
class survived". Anything not understood *blocks* the atoms it touches, and a group with one
blocked class is never pruned (:mod:`.groups`): unsound cases become "unprunable", never a
wrong model. The endpoint graph is kept in networkx (edges = "pruning here forces pruning
there") for inspection and tests. :func:`runtime.passes.channels.build.build` fills it from fx.

>>> dg = DependencyGraph()
>>> a, b = dg.endpoint("conv", "out", 2), dg.endpoint("bn", "norm", 2)
>>> dg.union(a.atoms, b.atoms)
>>> dg.finalize()
>>> [g.producers for g in dg.prunable_groups()], sorted(dg.coupled("conv:out"))
([['conv']], ['bn:norm'])
"""

from __future__ import annotations

import networkx as nx

from .groups import (
    Endpoint,
    EndpointKind,
    Group,
    apply_partitions,
    endpoint_graph,
    resolve_groups,
)


class DependencyGraph:
    """Union-find over channel atoms, endpoints, groups, and the networkx endpoint graph."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.blocked: dict[int, str] = {}  # atom -> reason (resolved to roots in finalize)
        self.endpoints: dict[str, Endpoint] = {}
        self.partitions: list[list[list[int]]] = []  # chunks of atoms
        self.opaque: set[str] = set()  # get_attr targets used by ops we do not understand
        self.groups: list[Group] = []
        self.class_group: dict[int, Group] = {}
        self.graph: nx.Graph = nx.Graph()
        self.roots: list[int] = []  # atom -> class root, filled by finalize()
        #: Modules fx could not trace, kept whole (see ``trace.trace_with_leaves``), by build().
        self.kept_whole: list[dict[str, str]] = []

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
        self.groups, self.class_group, signatures = resolve_groups(
            self.endpoints.values(), self.roots, self.blocked
        )
        apply_partitions(self.groups, self.class_group, self.roots, self.partitions)
        self.graph = endpoint_graph(self.endpoints.values(), signatures)

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


__all__ = ["DependencyGraph", "Endpoint", "EndpointKind", "Group"]
