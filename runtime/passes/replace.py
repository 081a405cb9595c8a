"""Cheap convolutions: swap KxK convolutions for depthwise-separable, Ghost or grouped blocks.

The passes ``replace.depthwise_separable``, ``replace.ghost`` and ``replace.group`` take
``ReplaceParams(include=[globs], exclude=[globs])`` (``ReplaceGroupParams`` adds ``groups``;
globs match module qualified names
or their ancestors, as in :mod:`runtime.passes.scopes`: ``except layer4`` keeps all of it)
and replace every *eligible* convolution: a plain ``nn.Conv2d`` with ``groups == 1`` and a
kernel larger than 1x1. Each block keeps the
convolution's stride, padding, dilation and padding mode, so output shapes do not change, and
replaces the convolution only: a BatchNorm that followed it stays where it was.

The stem (the first convolution the input reaches) is kept unless an ``include`` glob other
than the catch-all ``*`` names it: it sees only 1-3 input channels, so a depthwise split saves
nothing there and costs accuracy (MobileNet and GhostNet keep a full stem too).

Replacement works by module surgery (``setattr`` on the parent), not fx, so models that fx
cannot trace can still be slimmed; the blocks use only traceable ops, so a traceable model
stays traceable. The record lists what was replaced by name; :func:`replay_replace` rebuilds
the same blocks on a freshly built model so a checkpoint's state dict loads into it.

>>> from torch import nn
>>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 16, 3, padding=1))
>>> out = replace_convs(net, "depthwise_separable", stem="0")
>>> sorted(out.record["replaced"]), type(out.module[1]).__name__
(['1'], 'DepthwiseSeparableConv')
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from compiler.ops import ReplaceGroupParams, ReplaceParams
from compiler.vocab import REPLACEMENTS
from recipe_lang.diagnostics import KdrError, Note, error
from runtime.passes.base import PassContext, PassResult, register_pass
from runtime.passes.scopes import matches

KINDS = REPLACEMENTS


def _conv_kwargs(conv: nn.Conv2d) -> dict[str, Any]:
    """The geometry every block must keep so the output shape is unchanged."""
    return {
        "stride": conv.stride,
        "padding": conv.padding,
        "dilation": conv.dilation,
        "padding_mode": conv.padding_mode,
    }


def _kernel(conv: nn.Conv2d) -> tuple[int, int]:
    kh, kw = conv.kernel_size
    return kh, kw


class DepthwiseSeparableConv(nn.Module):
    """Depthwise KxK (the original geometry) -> BatchNorm -> pointwise 1x1 (MobileNet).

    The BatchNorm between the two keeps the depthwise output well scaled while training; the
    pointwise conv carries the original bias, if any.
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        cin, cout = conv.in_channels, conv.out_channels
        self.depthwise = nn.Conv2d(
            cin, cin, _kernel(conv), groups=cin, bias=False, **_conv_kwargs(conv)
        )
        self.bn = nn.BatchNorm2d(cin)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=conv.bias is not None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.bn(self.depthwise(x)))


class GhostConv(nn.Module):
    """GhostNet's Ghost module (ratio 2): a primary conv makes ``ceil(out/2)`` channels, a cheap
    3x3 depthwise conv derives as many "ghost" channels from them; both are concatenated and
    sliced to ``out`` channels.

    Unlike GhostNet's block it has no ReLU inside: it replaces one linear convolution, and the
    activation that followed that convolution still follows the block.
    """

    ratio = 2

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.out_channels = conv.out_channels
        init = math.ceil(conv.out_channels / self.ratio)
        self.primary = nn.Conv2d(
            conv.in_channels,
            init,
            _kernel(conv),
            bias=conv.bias is not None,
            **_conv_kwargs(conv),
        )
        self.primary_bn = nn.BatchNorm2d(init)
        cheap = init * (self.ratio - 1)
        self.cheap = nn.Conv2d(init, cheap, 3, padding=1, groups=init, bias=False)
        self.cheap_bn = nn.BatchNorm2d(cheap)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.primary_bn(self.primary(x))
        out = torch.cat([y, self.cheap_bn(self.cheap(y))], dim=1)
        return out[:, : self.out_channels]


def grouped_conv(conv: nn.Conv2d, groups: int) -> nn.Conv2d:
    """The same convolution with ``groups`` groups, initialised from the original's block
    diagonal (the weights each group keeps), so the swap starts close to the original."""
    new = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        _kernel(conv),
        groups=groups,
        bias=conv.bias is not None,
        **_conv_kwargs(conv),
    )
    with torch.no_grad():
        cin_g, cout_g = conv.in_channels // groups, conv.out_channels // groups
        for g in range(groups):
            rows = slice(g * cout_g, (g + 1) * cout_g)
            new.weight[rows] = conv.weight[rows, g * cin_g : (g + 1) * cin_g]
        if conv.bias is not None and new.bias is not None:
            new.bias.copy_(conv.bias)
    return new.to(conv.weight.device, conv.weight.dtype)


def build_block(conv: nn.Conv2d, kind: str, groups: int = 2) -> nn.Module:
    """The cheap block of ``kind`` that stands in for ``conv``."""
    if kind == "depthwise_separable":
        block: nn.Module = DepthwiseSeparableConv(conv)
    elif kind == "ghost":
        block = GhostConv(conv)
    elif kind == "group":
        return grouped_conv(conv, groups)
    else:
        raise ValueError(f"unknown replacement kind {kind!r}; expected one of {KINDS}")
    return block.to(conv.weight.device, conv.weight.dtype)


def is_eligible(module: nn.Module) -> bool:
    """A plain 2-D convolution with one group and a kernel larger than 1x1."""
    return (
        type(module) is nn.Conv2d and module.groups == 1 and any(k > 1 for k in module.kernel_size)
    )


def find_stem(module: nn.Module, example_inputs: torch.Tensor | None) -> str | None:
    """Name of the first convolution that runs on the input.

    Found by running one sample with forward hooks (works for any model, traceable or not);
    without an input, the first convolution in registration order.
    """
    names = {id(m): n for n, m in module.named_modules() if isinstance(m, nn.Conv2d)}
    if example_inputs is None:
        return next(iter(names.values()), None)
    order: list[str] = []
    hooks = [
        m.register_forward_pre_hook(lambda mod, _args: order.append(names[id(mod)]))
        for m in module.modules()
        if id(m) in names
    ]
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad():
            module(example_inputs[:1])
    finally:
        module.train(was_training)
        for h in hooks:
            h.remove()
    return order[0] if order else None


def _set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, attr = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, attr, new)


def _params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def replace_convs(
    module: nn.Module,
    kind: str,
    *,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    groups: int = 2,
    stem: str | None = None,
) -> PassResult:
    """Replace eligible convolutions in a copy of ``module`` with ``kind`` blocks."""
    if kind == "group" and groups < 2:
        raise KdrError(
            error(
                "KDR103",
                f"`group({groups})` needs at least 2 groups",
                None,
                Note(kind="help", message="write e.g. `replace convs with group(4)`"),
            )
        )
    model = copy.deepcopy(module)
    before = _params(model)
    explicit_stem = bool(stem and include and matches(stem, [g for g in include if g != "*"]))
    replaced: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for name, conv in list(model.named_modules()):
        if not is_eligible(conv) or not name:
            continue
        assert isinstance(conv, nn.Conv2d)  # for mypy: is_eligible checked the type
        if include is not None and not matches(name, include):
            continue
        if exclude and matches(name, exclude):
            continue
        if name == stem and not explicit_stem:
            skipped[name] = "stem (name it in `in ...` to replace it)"
            continue
        if kind == "group" and (conv.in_channels % groups or conv.out_channels % groups):
            channels = f"{conv.in_channels}->{conv.out_channels}"
            skipped[name] = f"{channels} channels not divisible by {groups}"
            continue
        _set_submodule(model, name, build_block(conv, kind, groups))
        replaced[name] = {"kind": kind, "groups": groups}
    return PassResult(
        module=model,
        modified=bool(replaced),
        record={"kind": kind, "groups": groups, "replaced": replaced},
        info={
            "replaced": len(replaced),
            "skipped": skipped,
            "params_before": before,
            "params_after": _params(model),
        },
    )


def replay_replace(module: nn.Module, record: dict[str, Any]) -> nn.Module:
    """Rebuild the recorded blocks on a fresh model (in place); weights come from a state dict."""
    for name, spec in record.get("replaced", {}).items():
        try:
            conv = module.get_submodule(name)
        except AttributeError:
            conv = None
        if not isinstance(conv, nn.Conv2d):
            raise KdrError(
                error(
                    "KDR504",
                    f"cannot replay `replace`: the model has no convolution `{name}`",
                    None,
                    Note(kind="help", message="the checkpoint was written for another model"),
                )
            )
        _set_submodule(module, name, build_block(conv, spec["kind"], spec.get("groups", 2)))
    return module


def _make_pass(kind: str) -> None:
    def run(
        module: nn.Module, params: ReplaceParams | ReplaceGroupParams, ctx: PassContext
    ) -> PassResult:
        return replace_convs(
            module,
            kind,
            include=params.include or None,
            exclude=params.exclude or None,
            groups=params.groups if isinstance(params, ReplaceGroupParams) else 2,
            stem=find_stem(module, ctx.example_inputs),
        )

    run.__name__ = run.__qualname__ = f"replace_{kind}"
    register_pass(f"replace.{kind}", replay=replay_replace)(run)


for _kind in KINDS:
    _make_pass(_kind)
