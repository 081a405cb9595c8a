"""Params, MACs, size, latency and sparsity on known nets, torchvision and int8 models."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from runtime.data import build_data
from runtime.metrics import (
    count_macs,
    count_params,
    latency_ms,
    measure,
    serialized_size,
    sparsity,
)
from runtime.models import build_model


@pytest.fixture
def helpers(monkeypatch: pytest.MonkeyPatch) -> Any:
    """tests/runtime/kdr_test_factory.py, imported whatever pytest's import mode."""
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    return importlib.import_module("kdr_test_factory")


def _known() -> nn.Module:
    # conv 3->8 k3 pad1 on 8x8 (bias), depthwise 8->8 k3 groups 8 stride 2 (no bias),
    # global pool, linear 8->5
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8, bias=False),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    )


def test_known_net_params_and_macs() -> None:
    model = _known()
    assert count_params(model) == (3 * 8 * 9 + 8) + (8 * 1 * 9) + (8 * 5 + 5)
    conv1 = 8 * 8 * 8 * (3 * 9)  # C_out * H * W * C_in * k * k
    conv2 = 8 * 4 * 4 * (1 * 9)  # depthwise: C_in / groups = 1
    fc = 5 * 8
    assert count_macs(model, (3, 8, 8)) == conv1 + conv2 + fc
    assert count_macs(model, (4, 3, 8, 8)) == conv1 + conv2 + fc  # per sample


def test_resnet18_macs_at_224() -> None:
    import torchvision

    macs = count_macs(torchvision.models.resnet18(), (3, 224, 224))
    assert macs == pytest.approx(1.82e9, rel=0.01)


def test_metrics_work_on_int8_models(helpers: Any) -> None:
    float_model, int8 = helpers.quantized_convnet()
    import torch.ao.nn.quantized as nnq

    assert any(isinstance(m, nnq.Conv2d) for m in int8.modules())
    assert any(isinstance(m, nnq.Linear) for m in int8.modules())
    # the same layers, with BN folded into the convolutions' (new) biases
    bn = sum(
        m.weight.numel() + m.bias.numel()
        for m in float_model.modules()
        if isinstance(m, nn.BatchNorm2d)
    )
    assert count_params(int8) == count_params(float_model) - bn // 2
    assert count_macs(int8, (1, 28, 28)) == count_macs(float_model, (1, 28, 28)) > 0
    assert serialized_size(int8) < 0.6 * serialized_size(float_model)  # zip overhead on tiny nets
    assert latency_ms(int8, (1, 28, 28), batch=2, warmup=1, repeats=3) > 0
    assert 0.0 <= sparsity(int8) < 0.2


def test_sparsity_counts_zero_weights() -> None:
    model = _known()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight[: m.weight.shape[0] // 2] = 0
    zeros = 4 * 27 + 4 * 9 + 2 * 8  # first half of the rows of each layer
    assert sparsity(model) == pytest.approx(zeros / (216 + 72 + 40))


def test_measure_reports_every_stable_field() -> None:
    data = build_data("mnist10k", [], {"limit": 64, "eval_limit": 64}, seed=0)
    model = build_model("convnet", [], {"width": 4}, in_channels=1, num_classes=10)
    figures = measure(model, data, warmup=1, repeats=2)
    for key in ("accuracy", "params", "macs", "size_bytes", "latency_ms_b1", "latency_ms_b32"):
        assert key in figures
    assert 0.0 <= figures["accuracy"] <= 1.0
    assert figures["params"] == count_params(model)
    assert figures["latency_ms_b32"] > 0 and figures["size_bytes"] > 0
