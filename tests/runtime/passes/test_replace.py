"""Cheap-convolution passes: shapes kept, params reduced, geometry, scopes, stem, replay."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import fx, nn

from runtime.passes.base import PassContext, replay_pass, run_pass
from runtime.passes.replace import DepthwiseSeparableConv, GhostConv, find_stem, is_eligible


def small_convnet() -> nn.Sequential:
    def block(cin: int, cout: int, stride: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    return nn.Sequential(
        *block(3, 16, 2),
        *block(16, 32, 2),
        *block(32, 32, 1),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(128, 10),
    )


MODELS = {
    "resnet18": lambda: torchvision.models.resnet18(weights=None, num_classes=10),
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(weights=None, num_classes=10),
    "small_convnet": small_convnet,
}
#: mobilenet_v2's only full KxK conv is its stem (the rest are depthwise or 1x1), so the
#: stem must be scoped in for anything to be replaced there.
SCOPES = {"resnet18": {}, "mobilenet_v2": {"include": ["features.0"]}, "small_convnet": {}}
OPS = ["replace.depthwise_separable", "replace.ghost", "replace.group"]


def groups(op: str, g: int = 2) -> dict[str, int]:
    """``groups`` is a param of ``replace.group`` only (``ReplaceGroupParams``)."""
    return {"groups": g} if op == "replace.group" else {}


def ctx() -> PassContext:
    torch.manual_seed(0)
    return PassContext(example_inputs=torch.randn(2, 3, 32, 32))


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("op", OPS)
def test_replacement_keeps_shapes_and_reduces_params(name, op):
    model = MODELS[name]().eval()
    result = run_pass(op, model, {**SCOPES[name], **groups(op)}, ctx())  # run_pass checks shape
    if (name, op) == ("mobilenet_v2", "replace.group"):  # its stem is 3 -> 32: no G divides both
        assert not result.modified and "not divisible" in result.info["skipped"]["features.0.0"]
        return
    assert result.modified
    assert result.info["replaced"] == len(result.record["replaced"]) > 0
    assert result.info["params_after"] == params(result.module) < params(model)
    remaining = [n for n, m in result.module.named_modules() if is_eligible(m)]
    assert all(n not in result.record["replaced"] for n in remaining)
    fx.symbolic_trace(result.module)  # a traceable model stays traceable


def test_blocks_of_each_kind():
    model = small_convnet()
    ds = run_pass("replace.depthwise_separable", model, {}, ctx()).module
    ghost = run_pass("replace.ghost", model, {}, ctx()).module
    group = run_pass("replace.group", model, {"groups": 4}, ctx()).module
    ds3, ghost3, group3 = (m.get_submodule("3") for m in (ds, ghost, group))
    assert isinstance(ds3, DepthwiseSeparableConv) and ds3.depthwise.groups == 16
    assert isinstance(ghost3, GhostConv) and ghost3.primary.out_channels == 16
    assert isinstance(group3, nn.Conv2d) and group3.groups == 4
    # the original BatchNorm stays after the block
    assert isinstance(ds.get_submodule("4"), nn.BatchNorm2d)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("bias", [True, False])
def test_strided_dilated_conv_geometry_is_kept(op, bias):
    conv = nn.Conv2d(8, 12, 3, stride=2, padding=2, dilation=2, bias=bias)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), conv)
    result = run_pass(op, model, groups(op, 4), ctx())
    block = result.module.get_submodule("1")
    first = {
        "replace.depthwise_separable": lambda b: b.depthwise,
        "replace.ghost": lambda b: b.primary,
        "replace.group": lambda b: b,
    }[op](block)
    assert (first.stride, first.padding, first.dilation) == ((2, 2), (2, 2), (2, 2))
    assert any(m.bias is not None for m in block.modules() if isinstance(m, nn.Conv2d)) == bias
    x = torch.randn(2, 3, 17, 17)
    assert result.module(x).shape == model(x).shape == (2, 12, 9, 9)


def test_ghost_slices_odd_channel_counts():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 7, 3, padding=1))
    result = run_pass("replace.ghost", model, {}, ctx())
    ghost = result.module.get_submodule("1")
    assert isinstance(ghost, GhostConv) and ghost.primary.out_channels == 4
    assert result.module(torch.randn(1, 3, 9, 9)).shape == (1, 7, 7, 7)


def test_stem_is_kept_unless_scoped_in():
    model = MODELS["resnet18"]()
    assert find_stem(model, torch.randn(1, 3, 32, 32)) == "conv1"
    kept = run_pass("replace.depthwise_separable", model, {}, ctx())
    assert "conv1" not in kept.record["replaced"] and "conv1" in kept.info["skipped"]
    star = run_pass("replace.depthwise_separable", model, {"include": ["*"]}, ctx())
    assert "conv1" not in star.record["replaced"]  # the catch-all does not name the stem
    scoped = run_pass("replace.depthwise_separable", model, {"include": ["conv1"]}, ctx())
    assert list(scoped.record["replaced"]) == ["conv1"]


def test_stem_is_found_by_execution_order_not_registration():
    class Late(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Conv2d(8, 8, 3, padding=1)
            self.stem = nn.Conv2d(3, 8, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(self.stem(x))

    result = run_pass("replace.depthwise_separable", Late(), {}, ctx())
    assert list(result.record["replaced"]) == ["body"]


def test_include_and_exclude_scopes():
    model = MODELS["resnet18"]()
    result = run_pass(
        "replace.ghost", model, {"include": ["layer3.*", "layer4"], "exclude": ["layer4.1"]}, ctx()
    )
    names = set(result.record["replaced"])
    assert names == {
        "layer3.0.conv1",
        "layer3.0.conv2",
        "layer3.1.conv1",
        "layer3.1.conv2",
        "layer4.0.conv1",
        "layer4.0.conv2",
    }


def test_group_skips_indivisible_convs():
    model = nn.Sequential(nn.Conv2d(3, 6, 3), nn.Conv2d(6, 9, 3), nn.Conv2d(9, 12, 3))
    result = run_pass("replace.group", model, {"groups": 3, "include": ["0"]}, ctx())
    assert list(result.record["replaced"]) == ["0"]  # the stem, scoped in; 3 -> 6 divides
    result = run_pass("replace.group", model, {"groups": 2}, ctx())
    assert list(result.record["replaced"]) == []
    assert "not divisible by 2" in result.info["skipped"]["1"]


def test_grouped_conv_starts_from_the_block_diagonal():
    conv = nn.Conv2d(4, 4, 3, padding=1)
    model = nn.Sequential(nn.Conv2d(3, 4, 1), conv)
    new = run_pass("replace.group", model, {"groups": 2}, ctx()).module.get_submodule("1")
    assert isinstance(new, nn.Conv2d)
    assert torch.equal(new.weight[:2], conv.weight[:2, :2])
    assert torch.equal(new.weight[2:], conv.weight[2:, 2:])


@pytest.mark.parametrize("op", OPS)
def test_replay_then_load_state_dict_gives_the_same_outputs(op):
    torch.manual_seed(0)
    model = MODELS["resnet18"]().eval()
    result = run_pass(op, model, groups(op), ctx())
    state = result.module.state_dict()
    fresh = replay_pass(op, MODELS["resnet18"](), result.record)
    fresh.load_state_dict(state)
    fresh.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(fresh(x), result.module.eval()(x))


def test_replay_onto_the_wrong_model_is_a_diagnostic():
    from recipe_lang.diagnostics import KdrError

    record = {"replaced": {"layer1.0.conv1": {"kind": "ghost", "groups": 2}}}
    with pytest.raises(KdrError) as exc:
        replay_pass("replace.ghost", small_convnet(), record)
    assert exc.value.diagnostics[0].code == "KDR504"


def test_the_input_model_is_not_modified():
    model = small_convnet()
    run_pass("replace.depthwise_separable", model, {}, ctx())
    assert isinstance(model.get_submodule("3"), nn.Conv2d)
