"""Model resolution: torchvision constructors, the built-in ``convnet`` family, factories.

:func:`build_model` turns a recipe's ``model NAME = CALL`` into an ``nn.Module``:

- a torchvision classification constructor (``resnet18``, ``mobilenet_v2(width_mult=0.5)``,
  also spelled ``torchvision.resnet18`` or ``torchvision.models.resnet18``); ``weights=`` is
  passed through (``weights="DEFAULT"``). ``num_classes`` comes from the data unless the call
  gives it or asks for pretrained weights (their head is kept; the compiler checks classes);
- ``convnet(width=16, depth=3)``: a small CNN for small images (see :class:`ConvNet`);
- a factory ``"pkg.mod:fn"(...)``, imported with importlib; it receives ``num_classes`` and
  ``in_channels`` only if its signature names them.

**Channel adaptation.** When the data has a different number of channels than the model's
stem (the first ``Conv2d``), e.g. 1-channel MNIST into ``resnet18``, that convolution is
replaced by one taking ``in_channels`` inputs. With pretrained weights, the new filters are the
sum of the old ones over their input channels, divided by ``in_channels`` and repeated: for a
grayscale image replicated to RGB the output is unchanged.

Every failure (unknown constructor, rejected arguments, factory import errors, weights that
do not load) is a ``KDR504`` diagnostic.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from recipe_lang.diagnostics import KdrError, Note, error

BUILTIN_FAMILIES = ("convnet",)


def _kdr504(message: str, help_text: str) -> KdrError:
    return KdrError(error("KDR504", message, None, Note(kind="help", message=help_text)))


class ConvNet(nn.Sequential):
    """``depth`` blocks of conv3x3-BN-ReLU-maxpool (widths ``width * 2**i``), global average
    pooling and a linear head. Plain modules, no control flow: fx-traceable and prunable."""

    def __init__(
        self, width: int = 16, depth: int = 3, *, in_channels: int = 3, num_classes: int = 10
    ) -> None:
        if width < 1 or depth < 1:
            raise ValueError(f"width and depth must be >= 1, got width={width} depth={depth}")
        layers: list[nn.Module] = []
        channels = in_channels
        for i in range(depth):
            out = width * 2**i
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
            ]
            if i < depth - 1:
                layers.append(nn.MaxPool2d(2))
            channels = out
        super().__init__(
            nn.Sequential(*layers),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(channels, num_classes),
        )


def convnet(
    width: int = 16, depth: int = 3, *, in_channels: int = 3, num_classes: int = 10
) -> ConvNet:
    """The built-in small CNN family (see :class:`ConvNet`)."""
    return ConvNet(width, depth, in_channels=in_channels, num_classes=num_classes)


class Ensemble(nn.Module):
    """A teacher that averages its members' logits."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.members[0](x)
        for member in self.members[1:]:
            out = out + member(x)
        return out / len(self.members)


def zoo_names() -> list[str]:
    """torchvision's classification constructors, sorted."""
    from torchvision import models

    return sorted(models.list_models(module=models))


def _strip_prefix(constructor: str) -> str:
    for prefix in ("torchvision.models.", "torchvision."):
        if constructor.startswith(prefix):
            return constructor[len(prefix) :]
    return constructor


def _accepts(fn: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _resolve(constructor: str) -> tuple[Callable[..., Any], str]:
    """The callable and its kind (``builtin``, ``torchvision`` or ``factory``)."""
    if ":" in constructor:
        module_name, _, fn_name = constructor.partition(":")
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise _kdr504(
                f"cannot import model factory module `{module_name}`: {exc}",
                'a factory is written "pkg.mod:fn" and must be importable (check PYTHONPATH)',
            ) from exc
        fn = getattr(module, fn_name, None)
        if not callable(fn):
            raise _kdr504(
                f"model factory `{constructor}`: `{module_name}` has no callable `{fn_name}`",
                "check the function name after the colon",
            )
        return fn, "factory"
    name = _strip_prefix(constructor)
    if name == "convnet":
        return convnet, "builtin"
    zoo = zoo_names()
    if name in zoo:
        from torchvision import models

        return models.get_model_builder(name), "torchvision"
    close = difflib.get_close_matches(name, [*BUILTIN_FAMILIES, *zoo], n=1)
    hint = (
        f"did you mean `{close[0]}`?"
        if close
        else 'use a torchvision classification constructor, `convnet`, or "pkg.mod:fn"'
    )
    raise _kdr504(f"unknown model constructor `{constructor}`", hint)


def build_model(
    constructor: str,
    args: list[Any],
    kwargs: dict[str, Any],
    *,
    in_channels: int,
    num_classes: int,
) -> nn.Module:
    """Build ``constructor(*args, **kwargs)`` for data of ``in_channels`` and ``num_classes``."""
    fn, kind = _resolve(constructor)
    kwargs = dict(kwargs)
    in_channels = int(kwargs.pop("in_channels", in_channels))
    pretrained = kwargs.get("weights") is not None
    if kind == "builtin":
        kwargs["in_channels"] = in_channels
        kwargs.setdefault("num_classes", num_classes)
    elif kind == "torchvision":
        if not pretrained:
            kwargs.setdefault("num_classes", num_classes)
    else:
        if _accepts(fn, "num_classes") and not pretrained:
            kwargs.setdefault("num_classes", num_classes)
        if _accepts(fn, "in_channels"):
            kwargs["in_channels"] = in_channels
    try:
        model = fn(*args, **kwargs)
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise _kdr504(f"`{constructor}` rejects its arguments: {exc}", _signature_help(fn)) from exc
    except (OSError, RuntimeError) as exc:
        raise _kdr504(
            f"`{constructor}` failed to build: {exc}",
            'pretrained weights cannot be fetched offline: give `from "path"` instead'
            if pretrained
            else "check the constructor's arguments",
        ) from exc
    if not isinstance(model, nn.Module):
        raise _kdr504(
            f"`{constructor}` returned {type(model).__name__}, not an nn.Module",
            "a model factory must return a torch.nn.Module",
        )
    adapt_input_channels(model, in_channels, pretrained=pretrained)
    return model


def _signature_help(fn: Callable[..., Any]) -> str:
    try:
        return f"it accepts {getattr(fn, '__name__', 'fn')}{inspect.signature(fn)}"
    except (TypeError, ValueError):
        return "check the constructor's arguments"


def adapt_input_channels(model: nn.Module, in_channels: int, *, pretrained: bool) -> bool:
    """Replace the stem ``Conv2d`` if it expects other than ``in_channels`` inputs (see the
    module docstring). Returns whether it did."""
    for name, module in model.named_modules():
        if not isinstance(module, nn.Conv2d):
            continue
        if module.in_channels == in_channels or module.groups != 1:
            return False
        conv: Any = module  # torch types the tuples loosely
        new = nn.Conv2d(
            in_channels,
            conv.out_channels,
            conv.kernel_size,
            stride=conv.stride,
            padding=conv.padding,
            dilation=conv.dilation,
            bias=conv.bias is not None,
            padding_mode=conv.padding_mode,
        )
        if pretrained:
            with torch.no_grad():
                summed = module.weight.sum(dim=1, keepdim=True) / in_channels
                new.weight.copy_(summed.expand(-1, in_channels, -1, -1))
                if module.bias is not None and new.bias is not None:
                    new.bias.copy_(module.bias)
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, new)
        return True
    return False


def _state_dict_of(obj: Any, path: str) -> Mapping[str, Any]:
    if isinstance(obj, Mapping) and obj.get("format") == "kdr-checkpoint":
        obj = obj.get("state_dict")
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(k, str) for k in obj):
        raise _kdr504(
            f"`{path}` holds no state dict",
            "give a file written by `torch.save(model.state_dict(), path)` or a kdr checkpoint",
        )
    if all(k.startswith("module.") for k in obj):  # saved from DistributedDataParallel
        obj = {k[len("module.") :]: v for k, v in obj.items()}
    return obj


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a plain state dict or a kdr checkpoint into ``model`` (``weights_only`` always)."""
    from runtime.checkpoint import load_checkpoint

    path = str(path)
    if not Path(path).expanduser().is_file():
        raise _kdr504(f"weights file `{path}` does not exist", "check the path after `from`")
    state = _state_dict_of(load_checkpoint(Path(path).expanduser(), require_kdr=False), path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own
        and isinstance(v, torch.Tensor)
        and isinstance(own[k], torch.Tensor)
        and v.shape != own[k].shape
    ]
    problems = [
        *(f"shape mismatch: {s}" for s in shapes[:5]),
        *(f"missing: {k}" for k in missing[:5]),
        *(f"unexpected: {k}" for k in unexpected[:5]),
    ]
    if problems:
        raise KdrError(
            error(
                "KDR504",
                f"weights in `{path}` do not fit the model: {problems[0]}",
                None,
                *(Note(message=p) for p in problems[1:8]),
                Note(kind="help", message="were they saved from the same constructor and data?"),
            )
        )
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise _kdr504(f"weights in `{path}` do not load: {exc}", "check the model") from exc
    return model
