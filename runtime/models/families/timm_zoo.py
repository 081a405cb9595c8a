"""``timm.<name>(...)``: any of timm's models (``pip install 'kdr[timm]'``).

``model student = timm.vit_tiny_patch16_224()`` is ``timm.create_model("vit_tiny_patch16_224",
pretrained=False, num_classes=<data>, in_chans=<data>)``. The compiler accepts any ``timm.``
name without importing timm (it cannot know timm's list); the name is checked here against
``timm.is_model``, with a "did you mean" from ``timm.list_models()``. A pretrained tag
(``timm.vit_tiny_patch16_224.augreg_in21k``) is kept.

Wiring from the data, unless the call gives it:

- ``num_classes`` and ``in_chans`` (timm fits a pretrained head and stem to them itself);
- ``img_size`` for models whose input size is fixed by their shapes (ViTs, Swin, Mixers: timm's
  ``pretrained_cfg.fixed_input_size``), so ``timm.vit_tiny_patch16_224()`` builds for 32x32
  images (2x2 patches of 16);
- ``pretrained`` is False unless the call says ``pretrained=true`` (kdr never downloads on its
  own; offline, a pretrained call is a KDR504).
"""

from __future__ import annotations

import difflib
from typing import Any

from torch import nn

from runtime.models.registry import (
    Family,
    ModelFn,
    Wiring,
    model_error,
    optional_library,
    register_family,
)

PREFIX = "timm."


class TimmBuilder:
    """``timm.create_model(name, **kwargs)`` for one model name (keyword arguments only)."""

    def __init__(self, name: str, fixed_input_size: bool) -> None:
        self.name = name
        self.__name__ = PREFIX + name
        #: timm's ``pretrained_cfg.fixed_input_size``: the model's shapes depend on ``img_size``.
        self.fixed_input_size = fixed_input_size
        self.kdr_help = (
            f"`{PREFIX}{name}` takes timm.create_model's keyword arguments (num_classes, "
            "in_chans, pretrained, drop_rate, img_size for ViTs, ...)"
        )

    def __call__(self, *args: Any, **kwargs: Any) -> nn.Module:
        if args:
            raise TypeError("timm models take keyword arguments only, e.g. `drop_rate=0.1`")
        import timm

        model: nn.Module = timm.create_model(self.name, **kwargs)
        return model


def _resolve(constructor: str) -> ModelFn | None:
    if not constructor.startswith(PREFIX):
        return None
    name = constructor[len(PREFIX) :]
    timm = optional_library("timm", "timm")
    from timm.models import get_pretrained_cfg, split_model_name_tag

    arch, _ = split_model_name_tag(name)
    if not timm.is_model(arch):
        close = difflib.get_close_matches(arch, timm.list_models(), n=3)
        hint = (
            "did you mean " + ", ".join(f"`{PREFIX}{c}`" for c in close) + "?"
            if close
            else "`timm.list_models()` lists timm's models"
        )
        raise model_error(f"timm has no model `{name}` ({constructor})", hint)
    cfg = get_pretrained_cfg(name) or get_pretrained_cfg(arch)
    return TimmBuilder(name, bool(cfg is not None and cfg.fixed_input_size))


def _wire(fn: ModelFn, kwargs: dict[str, Any], wiring: Wiring) -> None:
    kwargs.setdefault("pretrained", False)
    kwargs.setdefault("num_classes", wiring.num_classes)
    kwargs.setdefault("in_chans", wiring.in_channels)
    fixed = isinstance(fn, TimmBuilder) and fn.fixed_input_size
    if fixed and wiring.image_size is not None:
        kwargs.setdefault("img_size", wiring.image_size)


register_family(Family("timm", _resolve, _wire))
