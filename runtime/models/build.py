""":func:`build_model`: a recipe's ``model NAME = CALL`` -> an ``nn.Module``, through the
family registry, with the stem fitted to the data's channels."""

from __future__ import annotations

from typing import Any

from torch import nn

import runtime.models.families  # noqa: F401  (registers the families)
from runtime.models.heads import adapt_input_channels, replace_head
from runtime.models.registry import Wiring, model_error, resolve, signature_help


def build_model(
    constructor: str,
    args: list[Any],
    kwargs: dict[str, Any],
    *,
    in_channels: int,
    num_classes: int,
    image_size: int | None = None,
) -> nn.Module:
    """Build ``constructor(*args, **kwargs)`` for data of ``in_channels`` and ``num_classes``
    (and ``image_size``, for the constructors whose shapes depend on it)."""
    fn, family = resolve(constructor)
    kwargs = dict(kwargs)
    in_channels = int(kwargs.pop("in_channels", in_channels))
    pretrained = kwargs.get("weights") is not None
    if pretrained:  # built with the weights' own head, then given the data's classes
        num_classes = int(kwargs.pop("num_classes", num_classes))
    downloads = pretrained or kwargs.get("pretrained") is True  # timm's own flag
    family.wire(fn, kwargs, Wiring(in_channels, num_classes, pretrained, image_size))
    try:
        model = fn(*args, **kwargs)
    except (TypeError, ValueError, KeyError, AttributeError, AssertionError) as exc:
        raise model_error(
            f"`{constructor}` rejects its arguments: {exc}", signature_help(fn)
        ) from exc
    except (OSError, RuntimeError) as exc:
        raise model_error(
            f"`{constructor}` failed to build: {exc}",
            'pretrained weights cannot be fetched offline: give `from "path"` instead'
            if downloads
            else "check the constructor's arguments",
        ) from exc
    if not isinstance(model, nn.Module):
        raise model_error(
            f"`{constructor}` returned {type(model).__name__}, not an nn.Module",
            "a model factory must return a torch.nn.Module",
        )
    adapt_input_channels(model, in_channels, pretrained=pretrained)
    if pretrained:
        note = replace_head(model, num_classes)
        if note is not None:
            # reported with the model's input measurement
            object.__setattr__(model, "kdr_notes", [note])
    return model
