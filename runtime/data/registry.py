"""The one registry of data sources: recipe name -> builder, filled by ``@register_source``.

The names are the compiler's (``compiler.zoo.DATASETS``, torch-free, so that ``kdr check``
knows them): registering a name the compiler does not know fails at import, and a test checks
that every compiler name has a builder. ``"pkg.mod:fn"`` factories are not registered by name
(see :mod:`runtime.data.sources.factory`).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from compiler.zoo import DATASETS
from runtime.data.bundle import DataBundle
from runtime.data.errors import data_error

#: Options every source accepts (a factory's are taken out of its keyword arguments).
COMMON_OPTIONS = (
    "batch_size",
    "image_size",
    "augment",
    "workers",
    "limit",
    "eval_limit",
    "val",
)

Builder = Callable[..., DataBundle]
B = TypeVar("B", bound=Builder)


@dataclass(frozen=True)
class DataSource:
    """A registered source: its builder, and whether the builder takes the run's ``seed``."""

    name: str
    build: Builder
    seeded: bool = False


SOURCES: dict[str, DataSource] = {}


def register_source(name: str, *, seeded: bool = False) -> Callable[[B], B]:
    """Register ``fn`` as the builder of ``data = name(...)``; ``name`` must be a compiler name."""

    def register(fn: B) -> B:
        if name not in DATASETS:
            raise ValueError(f"data source `{name}` is not in compiler.zoo.DATASETS")
        if name in SOURCES:
            raise ValueError(f"data source `{name}` is registered twice")
        SOURCES[name] = DataSource(name, fn, seeded)
        return fn

    return register


def data_names() -> list[str]:
    """The registered source names, sorted."""
    return sorted(SOURCES)


def lookup(name: str) -> DataSource:
    """The source called ``name``, or a KDR504 that suggests the closest name."""
    source = SOURCES.get(name)
    if source is None:
        close = difflib.get_close_matches(name, data_names(), n=1)
        hint = f"did you mean `{close[0]}`?" if close else f"known: {', '.join(data_names())}"
        raise data_error(f"unknown dataset `{name}`", hint)
    return source


def signature_help(fn: Callable[..., Any], name: str | None = None) -> str:
    """``it accepts name(signature)``, for a builder that rejected its arguments."""
    try:
        return f"it accepts {name or getattr(fn, '__name__', 'fn')}{inspect.signature(fn)}"
    except (TypeError, ValueError):
        return "check its arguments"
