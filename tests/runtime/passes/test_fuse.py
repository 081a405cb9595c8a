"""fuse.bn: outputs allclose in eval mode, BatchNorm nodes gone, node order kept, replay."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import fx, nn

from runtime.passes.base import PassContext, replay_pass, run_pass
from runtime.passes.fuse import count_nodes


def randomize_bn(model: nn.Module) -> nn.Module:
    """Non-trivial running statistics, so folding has something to get wrong."""
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            if m.running_mean is not None and m.running_var is not None:
                m.running_mean.normal_(0, 0.5)
                m.running_var.uniform_(0.5, 2.0)
            nn.init.normal_(m.weight, 1.0, 0.2)
            nn.init.normal_(m.bias, 0.0, 0.2)
    return model.eval()


def ctx(shape: tuple[int, ...] = (2, 3, 32, 32)) -> PassContext:
    torch.manual_seed(1)
    return PassContext(example_inputs=torch.randn(*shape))


def test_resnet18_folds_every_batchnorm():
    model = randomize_bn(torchvision.models.resnet18(weights=None, num_classes=10))
    before = count_nodes(model)
    result = run_pass("fuse.bn", model, {}, ctx())  # preserves_function: allclose is checked
    after = count_nodes(result.module)
    assert before[nn.BatchNorm2d] == 20
    assert nn.BatchNorm2d not in after
    assert after[nn.Conv2d] == before[nn.Conv2d] == 20
    assert after[nn.ReLU] == before[nn.ReLU]
    assert result.info["batchnorms_folded"] == 20
    assert all(
        conv.bias is not None for conv in result.module.modules() if isinstance(conv, nn.Conv2d)
    )
    x = torch.randn(4, 3, 48, 48)
    with torch.no_grad():
        assert torch.allclose(result.module(x), model(x), rtol=1e-4, atol=1e-4)


def test_node_order_is_kept():
    model = randomize_bn(
        nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 1))
    )
    gm = run_pass("fuse.bn", model, {}, ctx()).module
    assert isinstance(gm, fx.GraphModule)
    ops = [n.op for n in gm.graph.nodes]
    targets = [str(n.target) for n in gm.graph.nodes if n.op == "call_module"]
    assert ops == ["placeholder", "call_module", "call_module", "call_module", "output"]
    assert targets == ["0", "2", "3"]


def test_linear_batchnorm1d_folds():
    model = randomize_bn(nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.BatchNorm1d(6)))
    result = run_pass("fuse.bn", model, {}, ctx((5, 3, 2, 2)))
    assert count_nodes(result.module) == {nn.Flatten: 1, nn.Linear: 1}


def test_shared_output_and_untracked_batchnorm_are_left_alone():
    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.bn = nn.BatchNorm2d(4)
            self.conv2 = nn.Conv2d(4, 4, 1)
            self.bn2 = nn.BatchNorm2d(4, track_running_stats=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            return self.bn(y) + y + self.bn2(self.conv2(y))

    result = run_pass("fuse.bn", randomize_bn(Branchy()), {}, ctx())
    assert not result.modified
    assert count_nodes(result.module)[nn.BatchNorm2d] == 2


def test_replay_rebuilds_the_fused_structure():
    model = randomize_bn(torchvision.models.resnet18(weights=None, num_classes=10))
    result = run_pass("fuse.bn", model, {}, ctx())
    fresh = replay_pass(
        "fuse.bn", torchvision.models.resnet18(weights=None, num_classes=10), result.record
    )
    fresh.load_state_dict(result.module.state_dict())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(x), result.module(x))


@pytest.mark.parametrize("training", [True, False])
def test_training_flag_is_kept(training):
    model = randomize_bn(nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)))
    model.train(training)
    result = run_pass("fuse.bn", model, {}, ctx())
    assert result.module.get_submodule("0").training == training
