"""fuse.bn traces in eval mode: a model whose train-mode graph differs still folds exactly."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import fx, nn

from runtime.passes.base import PassContext, run_pass
from runtime.passes.fuse import count_nodes, fuse_bn


class DropNet(nn.Module):
    """Conv+BN, then a functional dropout reading ``self.training`` (as timm's classifiers do):
    fx bakes the flag in, so a train-mode trace keeps dropout on in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x))).mean((2, 3))
        return self.fc(F.dropout(x, 0.5, self.training))


class Gate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 1)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x)) if x.mean() > 0 else x


def _ctx() -> PassContext:
    torch.manual_seed(0)
    return PassContext(example_inputs=torch.randn(2, 3, 16, 16))


def test_train_mode_model_folds_with_eval_semantics() -> None:
    model = DropNet().train()
    fx.symbolic_trace(model)  # traceable: the difference is the baked-in flag, not an error
    result = run_pass("fuse.bn", model, {}, _ctx())  # allclose in eval mode is checked
    assert result.record["fused"] == [["conv", "bn"]]
    assert result.module.training  # handed back in the caller's mode
    assert nn.BatchNorm2d not in count_nodes(result.module)


def test_blocks_kept_whole_keep_their_pairs_unfused() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), Gate()).eval()
    result = fuse_bn(model)
    assert result.record["fused"] == [["0", "1"]]
    assert [k["module"] for k in result.info["kept_whole"]] == ["2"]
    x = torch.randn(2, 3, 8, 8)
    assert torch.allclose(result.module(x), model(x), atol=1e-5)


@pytest.mark.slow
def test_timm_efficientnet_b0_in_train_mode() -> None:
    timm = pytest.importorskip("timm")
    model = timm.create_model("efficientnet_b0", pretrained=False, num_classes=10).train()
    torch.manual_seed(0)
    ctx = PassContext(example_inputs=torch.randn(2, 3, 32, 32))
    result = run_pass("fuse.bn", model, {}, ctx)  # was KDR999: outputs changed (max abs diff 10)
    assert result.module.training
