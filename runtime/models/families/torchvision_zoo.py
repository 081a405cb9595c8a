"""torchvision's classification constructors: ``resnet18``, ``mobilenet_v2(width_mult=0.5)``,
also spelled ``torchvision.resnet18`` or ``torchvision.models.resnet18``. ``weights=`` is
passed through; ``num_classes`` comes from the data unless the call gives it. With pretrained
weights the model is built with the weights' own head, then its classifier is re-initialised
for the data's classes (:func:`runtime.models.heads.replace_head`)."""

from __future__ import annotations

from typing import Any

from compiler.zoo import ZOO
from runtime.models.registry import (
    Family,
    ModelFn,
    Wiring,
    model_error,
    register_family,
    strip_prefix,
)


def zoo_names() -> list[str]:
    """torchvision's classification constructors, sorted (``compiler.zoo.ZOO``; a test checks
    it against ``torchvision.models.list_models``)."""
    return sorted(ZOO)


def _resolve(constructor: str) -> ModelFn | None:
    name = strip_prefix(constructor)
    if name not in ZOO:
        return None
    from torchvision import models

    try:
        return models.get_model_builder(name)
    except ValueError as exc:  # an older torchvision than the one ZOO was taken from
        raise model_error(
            f"`{name}` is not in this torchvision: {exc}", "upgrade torchvision"
        ) from exc


def _wire(fn: ModelFn, kwargs: dict[str, Any], wiring: Wiring) -> None:
    if not wiring.pretrained:
        kwargs.setdefault("num_classes", wiring.num_classes)


register_family(Family("torchvision", _resolve, _wire, zoo_names))
