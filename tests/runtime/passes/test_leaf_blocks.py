"""Untraceable blocks are kept whole: trace_with_leaves, the channel graph, the prune, preflight."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

from recipe_lang.diagnostics import KdrError
from runtime.passes.channels.build import build
from runtime.passes.channels.prune import prune_model
from runtime.passes.channels.surgery import apply_record
from runtime.passes.trace import trace, trace_with_leaves
from runtime.run.preflight import _check_traceable


class Gate(nn.Module):
    """Branches on its input's values: torch.fx cannot trace it."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) if x.mean() > 0 else x


class TrainGate(nn.Module):
    """Untraceable in train mode only."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.mean() > 0:
            return x * 2
        return x


class Wrapper(nn.Module):
    """Uses its (kept whole) gate's output in control flow: untraceable once the gate is a leaf."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.gate = Gate(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.gate(x)
        return y if y.max() > 1 else -y


class Net(nn.Module):
    def __init__(self, mid: nn.Module | None = None, tail: nn.Module | None = None) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.gate = mid if mid is not None else Gate(8)
        self.body = nn.Conv2d(8, 16, 3, padding=1)
        self.body_bn = nn.BatchNorm2d(16)
        self.tail = tail if tail is not None else Gate(16)
        self.last = nn.Conv2d(16, 12, 1)
        self.head = nn.Linear(12, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gate(torch.relu(self.bn(self.stem(x))))
        x = self.tail(torch.relu(self.body_bn(self.body(x))))
        return self.head(torch.relu(self.last(x)).mean((2, 3)))


class Root(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        return x if x.mean() > 0 else -x


def _targets(gm: torch.fx.GraphModule) -> list[str]:
    return [str(n.target) for n in gm.graph.nodes if n.op == "call_module"]


def test_every_untraceable_block_is_kept_whole_and_the_graph_runs() -> None:
    net = Net().eval()
    gm, kept = trace_with_leaves(net)
    assert [k["module"] for k in kept] == ["gate", "tail"]
    assert {k["type"] for k in kept} == {"Gate"}
    assert all(k["reason"].startswith("TraceError: ") for k in kept)
    assert all("x.mean() > 0" in k["at"] for k in kept)
    targets = _targets(gm)
    assert "gate" in targets and "tail" in targets and "gate.conv" not in targets
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(gm(x), net(x))


def test_block_failing_around_a_kept_block_replaces_it() -> None:
    gm, kept = trace_with_leaves(Net(mid=Wrapper(8)))
    assert [k["module"] for k in kept] == ["gate", "tail"]  # not gate.gate: inside a leaf
    assert kept[0]["type"] == "Wrapper"
    assert "gate" in _targets(gm) and "gate.gate" not in _targets(gm)


def test_root_failure_is_still_kdr500_and_strict_trace_unchanged() -> None:
    with pytest.raises(KdrError) as info:
        trace_with_leaves(Root())
    diag = info.value.diagnostics[0]
    assert diag.code == "KDR500" and "top-level" in diag.message
    assert "submodule" in diag.notes[0].message
    with pytest.raises(KdrError) as strict:
        trace(Net())
    assert "`gate`" in strict.value.diagnostics[0].message


def test_a_block_untraceable_in_one_mode_is_kept_whole_in_both() -> None:
    dg = build(Net(mid=nn.Identity(), tail=TrainGate()), torch.randn(1, 3, 8, 8))
    assert [k["module"] for k in dg.kept_whole] == ["tail"]
    # body's output flows into the kept-whole block: blocked, and named for it.
    body = next(g for g in dg.groups if g.producers == ["body"])
    assert body.blocked is not None and "`tail` (TrainGate) is kept whole" in body.blocked
    stem = next(g for g in dg.groups if g.producers == ["stem"])
    assert stem.blocked is None  # traced in both modes: prunable


def test_prune_around_kept_blocks_and_replay() -> None:
    torch.manual_seed(0)
    net = Net().eval()
    fresh = copy.deepcopy(net)
    x = torch.randn(2, 3, 8, 8)
    record, info = prune_model(net, x, 0.5)
    assert [k["module"] for k in info["kept_whole"]] == ["gate", "tail"]
    # stem/gate (8) and body/tail (16) touch a kept block; `last` (12) is pruned.
    assert net.stem.out_channels == 8 and net.body.out_channels == 16
    assert net.last.out_channels == 6 and net.head.in_features == 6
    assert net(x).shape == (2, 5)
    net.train()(x)  # train mode runs too
    apply_record(fresh, record)
    fresh.load_state_dict(net.state_dict())
    assert torch.allclose(fresh.eval()(x), net.eval()(x))


def _plan(op: str, params: Any) -> Any:
    p = SimpleNamespace(
        op=op, params=params, subject="student", info=SimpleNamespace(traced=True), span=None
    )
    return SimpleNamespace(passes=[p])


def test_preflight_fails_only_at_the_root_for_passes_that_keep_blocks_whole() -> None:
    from compiler.ops import FuseParams, PruneChannelsParams, QuantParams

    prune = PruneChannelsParams(ratio=0.5)
    gated = SimpleNamespace(models={"student": Net()})
    root = SimpleNamespace(models={"student": Root()})
    assert _check_traceable(_plan("prune.channels", prune), gated) == []  # type: ignore[arg-type]
    assert _check_traceable(_plan("fuse.bn", FuseParams()), gated) == []  # type: ignore[arg-type]
    quant = _check_traceable(_plan("quant.prepare", QuantParams()), gated)  # type: ignore[arg-type]
    assert [d.code for d in quant] == ["KDR500"] and "`gate`" in quant[0].message
    bad = _check_traceable(_plan("prune.channels", prune), root)  # type: ignore[arg-type]
    assert [d.code for d in bad] == ["KDR500"] and "top-level" in bad[0].message


@pytest.mark.parametrize(
    ("name", "kept_type", "count"),
    [
        # Conv2dSame (5 of them) is no longer kept whole: a registered leaf, pruned as a Conv2d
        pytest.param("tf_efficientnetv2_b0", "Conv2dSame", 0, marks=pytest.mark.slow),
        ("mobilevit_xxs", "MobileVitBlock", 3),
        ("efficientvit_b0", "LiteMLA", 4),
    ],
)
def test_timm_models_that_were_kdr500_trace_with_blocks_kept_whole(
    name: str, kept_type: str, count: int
) -> None:
    timm = pytest.importorskip("timm")
    model = timm.create_model(name, pretrained=False, num_classes=10).eval()
    gm, kept = trace_with_leaves(model)
    assert [k["type"] for k in kept] == [kept_type] * count
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(gm(x), model(x))


@pytest.mark.slow
def test_timm_efficientvit_prunes_around_its_attention() -> None:
    timm = pytest.importorskip("timm")
    model = timm.create_model("efficientvit_b0", pretrained=False, num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    _, info = prune_model(model, x, 0.5)
    # LiteMLA's `v.device.type != 'meta'` is answered from the example (concrete_trace.py)
    assert info["kept_whole"] == []
    assert info["params_after"] < 0.35 * info["params_before"]
    assert model(x).shape == (1, 10)
