"""The one registry of model families: each family resolves the constructors it owns and says
how a call receives the data's ``num_classes`` and ``in_channels``.

Families: built-ins (``@register_builtin``, names from ``compiler.zoo.BUILTIN_MODELS``),
torchvision's zoo (names from ``compiler.zoo.ZOO``), ``timm.<name>`` and ``hf.<Class>`` (optional
libraries: the compiler accepts their prefixes, ``compiler.zoo.LIBRARY_PREFIXES``, and the
family checks the name when it resolves it) and ``"pkg.mod:fn"`` factories. The compiler's
tables are torch-free, so ``kdr check`` knows every name without importing torch; a test checks
that the registered names equal them.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from compiler.zoo import BUILTIN_MODELS
from recipe_lang.diagnostics import KdrError, Note, error

ModelFn = Callable[..., nn.Module]
F = TypeVar("F", bound=ModelFn)


@dataclass(frozen=True)
class Wiring:
    """What the data and the call say about the model's ends."""

    in_channels: int
    num_classes: int
    #: The call asks for pretrained weights (``weights=...``): built with their own head, which
    #: ``build_model`` then fits to ``num_classes``.
    pretrained: bool
    #: The data's image side, for constructors whose shapes depend on it (timm ViTs' ``img_size``,
    #: Hugging Face vision configs' ``image_size``); None when unknown.
    image_size: int | None = None


@dataclass(frozen=True)
class Family:
    """A family of model constructors."""

    name: str
    #: The callable for ``constructor`` as the recipe spells it, or None if not this family's.
    resolve: Callable[[str], ModelFn | None]
    #: Put ``num_classes`` / ``in_channels`` into the call's keyword arguments.
    wire: Callable[[ModelFn, dict[str, Any], Wiring], None]
    #: The constructor names it owns, for "did you mean" (none for factories).
    names: Callable[[], Sequence[str]] = tuple
    #: One of kdr's own families (its names are ``compiler.zoo.BUILTIN_MODELS``).
    builtin: bool = False


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    if family.name in FAMILIES:
        raise ValueError(f"model family `{family.name}` is registered twice")
    if family.builtin and not set(family.names()) <= set(BUILTIN_MODELS):
        raise ValueError(f"built-in model `{family.name}` is not in compiler.zoo.BUILTIN_MODELS")
    FAMILIES[family.name] = family
    return family


def register_builtin(name: str) -> Callable[[F], F]:
    """Register ``fn`` as kdr's own constructor ``name``: it always receives ``in_channels``,
    and ``num_classes`` unless the call gives it."""

    def register(fn: F) -> F:
        def resolve(constructor: str) -> ModelFn | None:
            return fn if strip_prefix(constructor) == name else None

        register_family(Family(name, resolve, wire_builtin, lambda: (name,), builtin=True))
        return fn

    return register


def wire_builtin(fn: ModelFn, kwargs: dict[str, Any], wiring: Wiring) -> None:
    kwargs["in_channels"] = wiring.in_channels
    kwargs.setdefault("num_classes", wiring.num_classes)


def strip_prefix(constructor: str) -> str:
    """``torchvision.models.resnet18`` and ``torchvision.resnet18`` -> ``resnet18``."""
    for prefix in ("torchvision.models.", "torchvision."):
        if constructor.startswith(prefix):
            return constructor[len(prefix) :]
    return constructor


def model_names() -> list[str]:
    """Every constructor name a family owns (built-ins first), for "did you mean"."""
    ordered = sorted(FAMILIES.values(), key=lambda family: not family.builtin)
    return [name for family in ordered for name in family.names()]


def resolve(constructor: str) -> tuple[ModelFn, Family]:
    """The callable for ``constructor`` and its family, or a KDR504 that suggests a name."""
    for family in FAMILIES.values():
        fn = family.resolve(constructor)
        if fn is not None:
            return fn, family
    close = difflib.get_close_matches(strip_prefix(constructor), model_names(), n=1)
    builtins = ", ".join(f"`{name}`" for name in BUILTIN_MODELS)
    hint = (
        f"did you mean `{close[0]}`?"
        if close
        else f"use a torchvision classification constructor, {builtins}, `timm.<name>`, "
        '`hf.<ModelClass>` or "pkg.mod:fn"'
    )
    raise model_error(f"unknown model constructor `{constructor}`", hint)


def model_error(message: str, help_text: str) -> KdrError:
    """A KDR504 diagnostic: a model that cannot be built or loaded as the recipe says."""
    return KdrError(error("KDR504", message, None, Note(kind="help", message=help_text)))


def accepts(fn: Callable[..., Any], name: str) -> bool:
    """Does ``fn``'s signature name a parameter ``name``?"""
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def signature_help(fn: Callable[..., Any]) -> str:
    """What the constructor accepts: its own ``kdr_help`` text if it has one (library
    builders, whose signature says nothing), else its signature."""
    own = getattr(fn, "kdr_help", None)
    if isinstance(own, str):
        return own
    try:
        return f"it accepts {getattr(fn, '__name__', 'fn')}{inspect.signature(fn)}"
    except (TypeError, ValueError):
        return "check the constructor's arguments"


def optional_library(module: str, extra: str) -> Any:
    """Import an optional model library (timm, transformers), or a KDR504 that says which kdr
    extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise model_error(
            f"`{extra}.` models need `{module}`, which is not installed ({exc})",
            f"pip install 'kdr[{extra}]'",
        ) from exc
