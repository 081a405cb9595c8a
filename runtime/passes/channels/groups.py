"""Coupled channel sets: classes of atoms that share their producers form one :class:`Group`.

After the walk, every atom belongs to a union-find class; classes with the same set of
producers (conv/linear outputs) form a group, pruned with one ratio. A group with one blocked
class is never pruned. Grouped convolutions and GroupNorm add *partitions* (balanced chunks):
each chunk must keep the same number of channels, or the layer would no longer split evenly.

These are plain functions over the graph's data so that :mod:`.graph` can call them without
this module knowing the graph's class.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import networkx as nx

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


def resolve_groups(
    endpoints: Iterable[Endpoint], roots: list[int], blocked: dict[int, str]
) -> tuple[list[Group], dict[int, Group], dict[frozenset[str], int]]:
    """Groups by producer signature, the group of each class root, and the member signatures
    (sets of endpoint keys sharing a class, with how many classes share each)."""
    endpoints = list(endpoints)
    blocked_roots: dict[int, str] = {}
    for a, why in blocked.items():
        blocked_roots.setdefault(roots[a], why)
    producers: dict[int, set[str]] = {}
    members: dict[int, set[str]] = {}
    for ep in endpoints:
        for r in {roots[a] for a in ep.atoms}:
            members.setdefault(r, set()).add(ep.key)
            if ep.kind == "out":
                producers.setdefault(r, set()).add(ep.target)
    groups: list[Group] = []
    by_signature: dict[frozenset[str], Group] = {}
    class_group: dict[int, Group] = {}
    for ep in endpoints:
        if ep.kind != "out":
            continue
        for a in ep.atoms:
            r = roots[a]
            if r in class_group:
                continue
            sig = frozenset(producers[r])
            grp = by_signature.get(sig)
            if grp is None:
                grp = Group(len(groups), [], sorted(sig))
                by_signature[sig] = grp
                groups.append(grp)
            grp.classes.append(r)
            class_group[r] = grp
            if r in blocked_roots and grp.blocked is None:
                grp.blocked = blocked_roots[r]
    signatures: dict[frozenset[str], int] = {}
    for keys in members.values():
        sig_keys = frozenset(keys)
        signatures[sig_keys] = signatures.get(sig_keys, 0) + 1
    for grp in groups:
        found: set[str] = set()
        for r in grp.classes:
            found |= members[r]
        grp.members = sorted(found)
    return groups, class_group, signatures


def _distinct(chunk_roots: list[list[int]]) -> list[list[int]]:
    """Chunks holding the same classes keep the same count by themselves: one of them stays
    (EdgeNeXt's heads, two to a chunk piece whose pieces are coupled position by position)."""
    out: list[list[int]] = []
    for c in chunk_roots:
        if len(set(c)) != len(c) or all(sorted(c) != sorted(o) for o in out):
            out.append(c)
    return out


def apply_partitions(
    groups: list[Group],
    class_group: dict[int, Group],
    roots: list[int],
    partitions: list[list[list[int]]],
) -> None:
    """Turn each partition of atoms into balanced chunks of its group (or block the group)."""
    per_group: dict[int, list[list[list[int]]]] = {}
    for chunks in partitions:
        chunk_roots = [[roots[a] for a in chunk] for chunk in chunks]
        grps = {class_group[r].index for c in chunk_roots for r in c if r in class_group}
        if len(grps) != 1:
            for gi in grps:
                groups[gi].blocked = "balanced channel groups span several groups"
            continue
        grp = groups[grps.pop()]
        chunk_roots = _distinct(chunk_roots)
        if all(sorted(c) == sorted(chunk_roots[0]) and len(set(c)) == len(c) for c in chunk_roots):
            continue  # every chunk holds the same classes (GLU's a * b): balanced by itself
        pos = {r: i for i, r in enumerate(grp.classes)}
        flat = [r for chunk in chunk_roots for r in chunk]
        if len(set(flat)) != len(flat) or set(flat) != set(grp.classes):
            grp.blocked = "grouped layer channels are not all coupled the same way"
            continue
        per_group.setdefault(grp.index, []).append([[pos[r] for r in c] for c in chunk_roots])
    for gi, parts in per_group.items():
        parts.sort(key=len, reverse=True)  # finest first
        finest = parts[0]
        where = {p: i for i, chunk in enumerate(finest) for p in chunk}
        for coarse in parts[1:]:
            if any(len({where[p] for p in c}) * len(finest[0]) != len(c) for c in coarse):
                groups[gi].blocked = "incompatible grouped layers in one channel group"
        groups[gi].chunks = finest


def endpoint_graph(
    endpoints: Iterable[Endpoint], signatures: dict[frozenset[str], int]
) -> nx.Graph:
    """Endpoints sharing a channel class are joined; ``channels`` counts shared classes."""
    graph = nx.Graph()
    for ep in endpoints:
        graph.add_node(ep.key, target=ep.target, kind=ep.kind, size=len(ep.atoms))
    for keys, count in signatures.items():
        ordered = sorted(keys)
        for i, a in enumerate(ordered):
            for b in ordered[i + 1 :]:
                if graph.has_edge(a, b):
                    graph.edges[a, b]["channels"] += count
                else:
                    graph.add_edge(a, b, channels=count)
    return graph
