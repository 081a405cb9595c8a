"""``model m = "pkg.mod:fn"(...)``: a user's constructor, imported with importlib. It receives
``num_classes`` and ``in_channels`` only if its signature names them."""

from __future__ import annotations

import importlib
from typing import Any

from runtime.models.registry import Family, ModelFn, Wiring, accepts, model_error, register_family


def _resolve(constructor: str) -> ModelFn | None:
    if ":" not in constructor:
        return None
    module_name, _, fn_name = constructor.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise model_error(
            f"cannot import model factory module `{module_name}`: {exc}",
            'a factory is written "pkg.mod:fn"; put the module next to the recipe or on PYTHONPATH',
        ) from exc
    fn = getattr(module, fn_name, None)
    if not callable(fn):
        raise model_error(
            f"model factory `{constructor}`: `{module_name}` has no callable `{fn_name}`",
            "check the function name after the colon",
        )
    return fn


def _wire(fn: ModelFn, kwargs: dict[str, Any], wiring: Wiring) -> None:
    if accepts(fn, "num_classes") and not wiring.pretrained:
        kwargs.setdefault("num_classes", wiring.num_classes)
    if accepts(fn, "in_channels"):
        kwargs["in_channels"] = wiring.in_channels


register_family(Family("factory", _resolve, _wire))
