"""Which modules a pruning pass may touch: ``in SCOPES`` / ``except SCOPES`` as fnmatch globs.

A glob matches a module (or parameter) qualified name *or any of its ancestors*, so
``except layer4`` protects ``layer4.0.conv1`` too, and ``in features.*`` selects everything
under ``features``. fnmatch's ``*`` also crosses dots, which is what users expect of paths.

>>> Scope(include=["layer*"], exclude=["layer4"]).selects("layer3.0.conv1")
True
>>> Scope(include=["layer*"], exclude=["layer4"]).protects("layer4.1.bn2")
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Protocol


class _ScopedParams(Protocol):
    """Params with scopes (``PruneChannelsParams``, ``PruneWeightsParams``, ``ReplaceParams``)."""

    @property
    def include(self) -> list[str]: ...
    @property
    def exclude(self) -> list[str]: ...


def ancestors(name: str) -> list[str]:
    """``a.b.c`` -> ``["a", "a.b", "a.b.c"]`` (the root module is ``""``)."""
    parts = name.split(".") if name else []
    return [".".join(parts[: i + 1]) for i in range(len(parts))] or [""]


def matches(name: str, globs: Iterable[str]) -> bool:
    """True when ``name`` or one of its ancestors matches one of ``globs``."""
    globs = list(globs)
    return any(fnmatchcase(prefix, g) for prefix in ancestors(name) for g in globs)


@dataclass(frozen=True)
class Scope:
    """``include`` (default: everything) selects; ``exclude`` protects and wins over include."""

    include: Sequence[str] = field(default_factory=tuple)
    exclude: Sequence[str] = field(default_factory=tuple)

    def selects(self, name: str) -> bool:
        return (not self.include or matches(name, self.include)) and not self.protects(name)

    def protects(self, name: str) -> bool:
        return bool(self.exclude) and matches(name, self.exclude)

    @staticmethod
    def of(params: _ScopedParams) -> Scope:
        """The scope of a pass's params (``include`` / ``exclude`` globs, validated)."""
        return Scope(include=tuple(params.include), exclude=tuple(params.exclude))
