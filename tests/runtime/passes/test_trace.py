"""trace(): fx tracing with leaves, and KDR500 naming the failing module and operation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from recipe_lang.diagnostics import KdrError
from runtime.passes.trace import trace


class Gate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent control flow: untraceable
            return self.conv(x)
        return x


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3)
        self.blocks = nn.Sequential(nn.ReLU(), Gate())
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x))
        return self.head(x.mean((2, 3)))


def test_trace_plain_model_gives_graph() -> None:
    gm = trace(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()))
    ops = [n.op for n in gm.graph.nodes]
    assert ops == ["placeholder", "call_module", "call_module", "output"]


def test_trace_failure_names_innermost_module_and_operation() -> None:
    with pytest.raises(KdrError) as info:
        trace(Net())
    diag = info.value.diagnostics[0]
    assert diag.code == "KDR500"
    assert "`blocks.1`" in diag.message and "Gate" in diag.message
    assert "if x.sum() > 0" in diag.message
    assert diag.notes[0].kind == "help"
    assert "except blocks.1" in diag.notes[0].message


def test_leaf_glob_makes_untraceable_module_opaque() -> None:
    net = Net()
    gm = trace(net, leaf_modules=["blocks.1"])
    targets = [n.target for n in gm.graph.nodes if n.op == "call_module"]
    assert "blocks.1" in targets and "blocks.1.conv" not in targets
    x = torch.randn(1, 3, 8, 8)
    assert torch.allclose(gm(x), net(x))


def test_top_level_failure_has_help() -> None:
    class Top(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x if x.max() > 1 else -x

    with pytest.raises(KdrError) as info:
        trace(Top())
    diag = info.value.diagnostics[0]
    assert diag.code == "KDR500" and "top-level" in diag.message
